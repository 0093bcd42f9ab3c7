"""Shared fixtures: one real fault-injecting upstream per session (cleared before each test)
and the client flavours of the behavioural suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.upstream import Upstream
from tests.flavours import FLAVOURS, Flavour

pytest_plugins = ["pytester"]  # tests/test_testing_switch.py runs pytest on the fixture


@pytest.fixture(scope="session")
def _upstream_server() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def upstream(_upstream_server: Upstream) -> Iterator[Upstream]:
    _upstream_server.clear()
    yield _upstream_server
    _upstream_server.wait_idle(timeout=5.0)
    _upstream_server.clear()


@pytest.fixture(params=FLAVOURS, ids=lambda flavour: flavour.name)
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return request.param
