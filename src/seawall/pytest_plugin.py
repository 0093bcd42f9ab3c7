"""seawall's pytest plugin: the `seawall_testing` fixture.

pytest loads it by itself wherever seawall is installed (the `pytest11` entry point `seawall`),
so no conftest is needed; `-p no:seawall` leaves it out, and with plugin autoloading off
(`PYTEST_DISABLE_PLUGIN_AUTOLOAD`) a conftest names it: `pytest_plugins = ["seawall.pytest_plugin"]`.
It imports only `seawall.testing` (no client, no OpenTelemetry) and does nothing until a test
asks for the fixture.

    def test_gives_up_at_once(seawall_testing): ...           # one attempt, no wait, no breaker

    @pytest.mark.seawall_testing(attempts=3)
    def test_retries_twice(seawall_testing): ...              # three attempts

The fixture yields `seawall.testing` (a test may call `set_testing` again) and puts the switch
back as it found it when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from . import testing


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "seawall_testing(attempts=1, cap=False): the settings of the seawall_testing fixture",
    )


@pytest.fixture
def seawall_testing(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """seawall's test switch on for this test (see `seawall.testing.set_testing`): every
    policy makes one attempt (or the marker's `attempts`), never waits, never opens a breaker."""
    marker = request.node.get_closest_marker("seawall_testing")
    settings = dict(marker.kwargs) if marker is not None else {}
    with testing.set_testing(True, **settings):
        yield testing
