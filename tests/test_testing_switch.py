"""The test switch (`seawall.testing.set_testing`, the `seawall_testing` pytest fixture): one
attempt (or N), no waiting, no breaker, and back; against the real upstream."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

import seawall
import seawall.testing
from integrations.upstream import respond, retry_after
from seawall.httpx import ResilientTransport
from seawall.testing import FakeClock

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _switch_off_around_each_test():
    assert not seawall.testing.is_testing()
    yield
    seawall.testing.set_testing(False)


def policy(clock: FakeClock | None = None, **options: object) -> seawall.Policy:
    settings: dict[str, object] = dict(
        retry=seawall.Retry(max_attempts=4, backoff=seawall.Backoff.constant(2.0)),
        breaker=seawall.CircuitBreaker(consecutive_failures=2, open_for=60),
        timeouts=seawall.Timeouts(attempt=5, total=30),
    )
    settings.update(options)
    if clock is not None:
        settings.update(clock.policy_args())
    return seawall.Policy("upstream", **settings)  # type: ignore[arg-type]


def failing(upstream, path: str = "/t") -> str:
    upstream.script(path, then=respond(503))
    return upstream.url + path


def test_one_attempt_without_waiting_in_every_flavour(flavour, upstream):
    clock = FakeClock()
    with flavour.client(policy(clock, breaker=None)) as client:
        url = failing(upstream)
        with seawall.testing.set_testing(True):
            assert client.request("GET", url).status == 503
        assert upstream.hits("/t") == 1 and clock.sleeps == []
        assert client.request("GET", upstream.url + "/other").status == 200
        upstream.clear()
        # back to the policy's own: four attempts, three waits of 2 s (on the fake clock)
        client.request("GET", failing(upstream, "/after"))
        assert upstream.hits("/after") == 4 and clock.sleeps == [2.0, 2.0, 2.0]


def test_n_attempts_and_cap(upstream):
    clock = FakeClock()
    with httpx.Client(transport=ResilientTransport(policy(clock))) as client:
        seawall.testing.set_testing(True, attempts=3)
        client.get(failing(upstream, "/three"))
        seawall.testing.set_testing(True, attempts=9, cap=True)  # at most the policy's 4
        client.get(failing(upstream, "/capped"))
        seawall.testing.set_testing(True, attempts=9)  # not capped: 9
        client.get(failing(upstream, "/nine"))
    hits = [upstream.hits(path) for path in ("/three", "/capped", "/nine")]
    assert hits == [3, 4, 9] and clock.sleeps == []


def test_a_policy_without_retry_still_makes_one_attempt(upstream):
    with (
        httpx.Client(transport=ResilientTransport(policy(retry=None))) as client,
        seawall.testing.set_testing(True, attempts=3),
    ):
        assert client.get(failing(upstream)).status_code == 503
    assert upstream.hits("/t") == 1


def test_the_retry_decisions_stay_a_post_is_not_retried(upstream):
    with (
        httpx.Client(transport=ResilientTransport(policy())) as client,
        seawall.testing.set_testing(True, attempts=3),
    ):
        assert client.post(failing(upstream, "/pay"), content=b"x").status_code == 503
        assert client.get(failing(upstream, "/get")).status_code == 503
    assert (upstream.hits("/pay"), upstream.hits("/get")) == (1, 3)


def test_retry_after_is_not_waited_for(upstream):
    clock = FakeClock()
    upstream.script("/later", retry_after(503, "30"), then=respond(200))
    with (
        httpx.Client(transport=ResilientTransport(policy(clock))) as client,
        seawall.testing.set_testing(True, attempts=2),
    ):
        assert client.get(upstream.url + "/later").status_code == 200
    assert upstream.hits("/later") == 2 and clock.sleeps == []


def test_no_breaker_opens_nor_refuses_and_none_is_told(upstream):
    tested = policy()
    breaker = tested.dependency("upstream").breaker()
    assert breaker is not None
    with httpx.Client(transport=ResilientTransport(tested)) as client:
        with seawall.testing.set_testing(True):
            for _ in range(5):
                assert client.get(failing(upstream)).status_code == 503
            assert breaker.state() is seawall.BreakerState.CLOSED
            assert breaker.counts() == (0, 0, 0)
            breaker.isolate(tested.now(), by="test")  # held open by hand: still let through
            assert client.get(upstream.url + "/ok").status_code == 200
            breaker.reset(tested.now())
        assert upstream.hits("/t") == 5
        upstream.clear()
        # switched off: two failures in a row open it
        client.get(failing(upstream))
        with pytest.raises(seawall.CircuitOpenError):
            client.get(failing(upstream))
    assert breaker.state() is seawall.BreakerState.OPEN


def test_the_context_manager_form_puts_back_what_was_there():
    assert seawall.testing.settings() is None
    with seawall.testing.set_testing(True, attempts=2):
        assert seawall.testing.is_testing()
        with seawall.testing.set_testing(True, attempts=5, cap=True):
            assert seawall.testing.settings() == seawall.overrides.Testing(5, cap=True)
        assert seawall.testing.settings() == seawall.overrides.Testing(2)
        with seawall.testing.set_testing(False):
            assert not seawall.testing.is_testing()
        assert seawall.testing.is_testing()
    assert not seawall.testing.is_testing()


def test_the_switch_is_process_wide_it_reaches_other_threads(upstream):
    import threading

    results: list[int] = []
    with httpx.Client(transport=ResilientTransport(policy())) as client:
        seawall.testing.set_testing(True)
        thread = threading.Thread(
            target=lambda: results.append(client.get(failing(upstream)).status_code)
        )
        thread.start()
        thread.join(10)
    assert results == [503] and upstream.hits("/t") == 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: seawall.testing.set_testing("yes"),
            TypeError,
            "testing must be True or False, got str 'yes'",
        ),
        (
            lambda: seawall.testing.set_testing(True, attempts=0),
            ValueError,
            "attempts must be a whole number >= 1, got 0",
        ),
        (
            lambda: seawall.testing.set_testing(True, attempts=1.5),
            TypeError,
            "attempts must be a whole number >= 1, got float 1.5",
        ),
        (
            lambda: seawall.testing.set_testing(True, cap=1),
            TypeError,
            "cap must be True or False, got int 1",
        ),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=f"^seawall.testing.set_testing: {message}"):
        call()
    assert not seawall.testing.is_testing()


def test_the_fake_clock():
    clock = FakeClock(10.0, wall=1_000.0)
    clock.sleep(1.5)
    clock.advance(0.5)
    assert (clock(), clock.wall(), clock.sleeps) == (12.0, 1_002.0, [1.5])
    assert repr(clock) == "<FakeClock now=12 sleeps=1>"


# -- under pytest: the fixture, registered by the pytest11 entry point ----------------------
TESTS = """
import time, httpx, pytest, seawall, seawall.testing
from integrations.upstream import Upstream, respond
from seawall.httpx import ResilientTransport

def hits(path):
    slow = seawall.Retry(max_attempts=4, backoff=seawall.Backoff.constant(5.0))
    with Upstream() as up, httpx.Client(transport=ResilientTransport(seawall.Policy("u", retry=slow))) as client:
        up.script(path, then=respond(503))
        started = time.monotonic()
        client.get(up.url + path)
        assert time.monotonic() - started < 3
        return up.hits(path)

def test_one_attempt(seawall_testing):
    assert seawall_testing.is_testing() and hits("/a") == 1

@pytest.mark.seawall_testing(attempts=3)
def test_three_attempts(seawall_testing):
    assert hits("/b") == 3

def test_off_again_afterwards():
    assert not seawall.testing.is_testing()
"""


def test_the_fixture_under_pytest(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_uses_seawall=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)
    result.assert_outcomes(passed=3)
    # it is the entry point that brings the fixture: without the plugin there is none
    result = pytester.runpytest_subprocess(
        "-p", "no:seawall", "-p", "no:cacheprovider", "-q", "-k", "one_attempt", timeout=120
    )
    result.assert_outcomes(errors=1)
    assert "fixture 'seawall_testing' not found" in result.stdout.str()


def test_the_plugin_module_is_light_to_import():
    import subprocess

    code = "import sys, seawall.pytest_plugin; print(sorted(m for m in ('httpx', 'requests', 'aiohttp', 'opentelemetry') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- protected calls (seawall.protect, seawall.retrying) -----------------------------------
def test_protected_calls_and_blocks_under_the_switch():
    import asyncio

    calls: list[str] = []

    def drop(kind: str) -> None:
        calls.append(kind)
        raise ConnectionResetError("dropped")

    clock = FakeClock()
    tested = policy(clock)
    sync_call = seawall.protect(policy=tested, idempotent=True)(lambda: drop("sync"))

    async def async_body() -> None:
        drop("async")

    async_call = seawall.protect(policy=tested, idempotent=True)(async_body)
    with seawall.testing.set_testing(True, attempts=2):
        for _ in range(3):  # the breaker (two failures in a row) would open: it is not asked
            with pytest.raises(ConnectionResetError):
                sync_call()
        with pytest.raises(ConnectionResetError):
            asyncio.run(async_call())
        with pytest.raises(ConnectionResetError):
            for attempt in seawall.retrying(policy=tested, idempotent=True):
                with attempt:
                    drop("block")
    assert calls == ["sync"] * 6 + ["async"] * 2 + ["block"] * 2
    assert clock.sleeps == []
    breaker = tested.dependency("upstream").breaker()
    assert breaker is not None and breaker.state() is seawall.BreakerState.CLOSED
