"""A timeout the calling code chose wins over seawall's defaults; timeouts chosen for seawall
apply. Scaled down: `caller_first` timeouts of 50 ms stand in for seawall's 10 s defaults, an
upstream answering in 150 ms for one answering in 12 s, and a caller's 2 s for its 60 s."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import requests

import seawall
from integrations.upstream import respond
from seawall.httpx import AsyncResilientTransport, ResilientTransport

SLOW = 0.15


def get(flavour: str, policy: seawall.Policy, url: str, timeout: float | None) -> int | str:
    """One GET; the status, or the name of the exception raised. `timeout`: the caller's own
    (None: the client's default)."""
    chosen = {} if timeout is None else {"timeout": timeout}
    try:
        if flavour == "httpx":
            with httpx.Client(transport=ResilientTransport(policy), **chosen) as client:
                return client.get(url).status_code
        if flavour == "requests":
            return seawall.requests.session(policy).get(url, **chosen).status_code

        async def main() -> int:
            async with httpx.AsyncClient(
                transport=AsyncResilientTransport(policy), **chosen
            ) as client:
                return (await client.get(url)).status_code

        return asyncio.run(main())
    except (httpx.HTTPError, requests.RequestException) as error:
        return type(error).__name__


FLAVOURS = ["httpx", "httpx-async", "requests"]


def timed_out(result: int | str) -> bool:
    """Cut by seawall: its DeadlineExceeded, or the client's own read timeout error."""
    return result in ("DeadlineExceeded", "ReadTimeout")


def policy(caller_first: bool) -> seawall.Policy:
    return seawall.Policy(
        "slow",
        retry=seawall.Retry(max_attempts=2),
        telemetry=False,
        timeouts=seawall.Timeouts(attempt=0.05, total=0.1, caller_first=caller_first),
    )


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_callers_own_timeout_wins_over_seawalls_defaults(upstream, flavour):
    upstream.default = respond(200, delay=SLOW)
    assert get(flavour, policy(caller_first=True), upstream.url + "/slow", timeout=2.0) == 200
    assert upstream.hits("/slow") == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_without_a_caller_timeout_seawalls_defaults_apply(upstream, flavour):
    upstream.default = respond(200, delay=SLOW)
    assert timed_out(get(flavour, policy(caller_first=True), upstream.url + "/slow", None))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_timeouts_chosen_for_seawall_apply_whatever_the_caller_set(upstream, flavour):
    upstream.default = respond(200, delay=SLOW)
    assert timed_out(get(flavour, policy(caller_first=False), upstream.url + "/slow", 2.0))


def test_seawalls_defaults_and_an_unconfigured_file_are_caller_first():
    assert seawall.Policy().timeouts.caller_first
    from seawall.config import Router, load

    router = Router(load({}), telemetry=False)
    assert router.default.timeouts.caller_first
    configured = Router(load({"defaults": {"timeouts": {"total": "20s"}}}), telemetry=False)
    assert not configured.default.timeouts.caller_first


# -- a client that already retries ----------------------------------------------------------
def test_wrapping_a_client_that_retries_warns_once_per_client(upstream, caplog):
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry as Urllib3Retry

    upstream.default = respond(200)
    with caplog.at_level("WARNING", logger="seawall"):
        for _ in range(2):  # two clients, two warnings, however many requests each sends
            retrying = seawall.requests.ResilientAdapter(
                seawall.Policy(telemetry=False), adapter=HTTPAdapter(max_retries=Urllib3Retry(3))
            )
            session = requests.Session()
            session.mount("http://", retrying)
            for _ in range(3):
                assert session.get(upstream.url + "/twice", timeout=5).status_code == 200
        with httpx.Client(
            transport=ResilientTransport(
                seawall.Policy(telemetry=False), transport=httpx.HTTPTransport(retries=2)
            )
        ) as c:
            assert c.get(upstream.url + "/twice").status_code == 200
        seawall.requests.ResilientAdapter(seawall.Policy(telemetry=False), adapter=HTTPAdapter())
        ResilientTransport(seawall.Policy(telemetry=False), transport=httpx.HTTPTransport())
    warnings = [r.getMessage() for r in caplog.records if "retries by itself" in r.getMessage()]
    assert len(warnings) == 3, warnings  # the plain adapter and transport: none
    assert "ResilientAdapter wraps HTTPAdapter, which retries by itself (3 times)" in warnings[0]
    assert (
        "ResilientTransport wraps HTTPTransport, which retries by itself (2 times)" in warnings[2]
    )
