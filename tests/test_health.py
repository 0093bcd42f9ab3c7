"""Health probes as an input to the breaker, not an override.

Sans-I/O: the probe verdict (Hypothesis) and the breaker's "held open by health" input on a
fake clock. Then real probes against the real upstream, whose health endpoint and traffic fail
independently (probe fails, traffic fine; traffic fails, probe fine; both), for the flavours
that probe (httpx sync and async, requests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import seawall
from integrations.upstream import respond
from seawall import events as ev
from seawall.policies.breaker import Breaker, State
from seawall.policies.health import HealthCheck, HealthState

from .flavours import FLAVOURS
from .test_telemetry import Otel, otel  # noqa: F401 (the fixture)

PROBING = [f for f in FLAVOURS if f.name in ("httpx", "httpx-async", "requests", "aiohttp")]


# -- sans-I/O -------------------------------------------------------------------------------
@given(st.lists(st.booleans(), max_size=200), st.integers(1, 5), st.integers(1, 5))
def test_the_verdict_flips_only_after_enough_results_in_a_row(results, down, up):
    state = HealthState(HealthCheck("http://h/health", unhealthy_after=down, healthy_after=up))
    healthy, run_failed, run_passed = True, 0, 0
    for passed in results:
        run_passed, run_failed = (run_passed + 1, 0) if passed else (0, run_failed + 1)
        flipped = state.record(passed)
        if healthy and run_failed >= down:
            healthy = False
            assert flipped is False
        elif not healthy and run_passed >= up:
            healthy = True
            assert flipped is True
        else:
            assert flipped is None
        assert state.healthy is healthy


def test_waits_are_jittered_within_the_bounds():
    check = HealthCheck("http://h/health", interval=10.0, jitter=0.1)
    assert check.next_wait(lambda: 0.0) == pytest.approx(9.0)
    assert check.next_wait(lambda: 0.999999) == pytest.approx(11.0, abs=1e-4)


def test_bad_health_checks_are_named():
    with pytest.raises(ValueError, match="HealthCheck: url must be an http:// or https:// URL"):
        HealthCheck("localhost/health")
    with pytest.raises(ValueError, match="HealthCheck: unhealthy_after must be a whole number"):
        HealthCheck("http://h/health", unhealthy_after=0)
    with pytest.raises(TypeError, match="Policy: health must be a seawall.HealthCheck"):
        seawall.Policy(health="http://h/health")  # type: ignore[arg-type]


def test_unhealthy_holds_the_breaker_open_past_open_for_and_says_why():
    breaker = Breaker(seawall.CircuitBreaker(open_for=5))
    breaker.health_down(0.0, "probe: 3 probes failed")
    assert breaker.state(100.0) is State.OPEN
    assert breaker.acquire(100.0) is None
    assert breaker.rejection_reason() == "unhealthy"
    assert breaker.unhealthy == "probe: 3 probes failed"
    assert breaker.retry_in(100.0) == float("inf")


def test_healthy_only_half_opens_and_real_traffic_closes():
    breaker = Breaker(seawall.CircuitBreaker(open_for=5, success_threshold=1))
    breaker.health_down(0.0, "probe")
    breaker.health_up(1.0)
    assert breaker.state(1.0) is State.HALF_OPEN  # a probe of real traffic is due at once
    permit = breaker.acquire(1.0)
    assert permit is not None and breaker.acquire(1.0) is None  # one probe at a time
    breaker.record(permit, False, False, 1.0)
    assert breaker.state(1.0) is State.CLOSED


def test_a_passing_health_check_never_closes_a_breaker_that_traffic_opened():
    breaker = Breaker(seawall.CircuitBreaker(consecutive_failures=1, open_for=30))
    breaker.record(breaker.acquire(0.0), True, False, 0.0)
    breaker.health_up(1.0)
    assert breaker.state(1.0) is State.OPEN and breaker.retry_in(1.0) == pytest.approx(29.0)


# -- real probes against the real upstream --------------------------------------------------
def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def probing_policy(upstream, **breaker) -> tuple[seawall.Policy, list[ev.Event]]:
    check = HealthCheck(upstream.url + "/health", interval=0.02, jitter=0.2, timeout=1.0)
    policy = seawall.Policy(
        "up", retry=None, telemetry=False, health=check, breaker=seawall.CircuitBreaker(**breaker)
    )
    seen: list[ev.Event] = []
    policy.subscribe(seen.append, ev.HealthProbed, ev.HealthChanged, ev.CircuitRejected)
    return policy, seen


def probes(seen: list[ev.Event]) -> list[ev.HealthProbed]:
    return [e for e in seen if isinstance(e, ev.HealthProbed)]


@pytest.mark.parametrize("flavour", PROBING, ids=lambda f: f.name)
def test_probe_fails_traffic_fine_the_breaker_is_held_open_until_probes_pass_and_traffic_closes_it(
    flavour, upstream
):
    upstream.script("/health", then=respond(503))
    policy, seen = probing_policy(upstream, open_for=0.05)
    breaker = policy.dependency("up").breaker()
    with flavour.client(policy) as client:
        client.request("GET", upstream.url + "/api")  # (an async prober starts with traffic)
        wait_for(lambda: breaker.unhealthy is not None)
        time.sleep(0.1)  # well past open_for: still no probe of real traffic
        before = upstream.hits("/api")
        with pytest.raises(seawall.CircuitOpenError) as caught:
            client.request("GET", upstream.url + "/api")
        assert caught.value.reason == "unhealthy"
        assert upstream.hits("/api") == before  # traffic was fine, but it was held back
        upstream.script("/health", then=respond(200))
        wait_for(lambda: breaker.unhealthy is None)
        assert breaker.state(policy.now()) is State.HALF_OPEN  # passing probes did not close it
        assert client.request("GET", upstream.url + "/api").status == 200
        assert breaker.state(policy.now()) is State.CLOSED  # real traffic did
    changes = [(e.healthy, e.source) for e in seen if isinstance(e, ev.HealthChanged)]
    assert changes == [(False, "probe"), (True, "probe")]
    assert not any(p.passed for p in probes(seen)[:3])
    reason = next(e.reason for e in seen if isinstance(e, ev.HealthChanged) and not e.healthy)
    assert reason == "3 probes failed in a row (last: 503)"


@pytest.mark.parametrize("flavour", PROBING, ids=lambda f: f.name)
def test_traffic_fails_probe_fine_passing_probes_do_not_close_the_breaker(flavour, upstream):
    upstream.script("/api", respond(503), respond(503))
    policy, seen = probing_policy(upstream, consecutive_failures=2, open_for=30)
    breaker = policy.dependency("up").breaker()
    with flavour.client(policy) as client:
        for _ in range(2):
            client.request("GET", upstream.url + "/api")
        assert breaker.state(policy.now()) is State.OPEN
        wait_for(lambda: len([p for p in probes(seen) if p.passed]) >= 5)
        assert breaker.state(policy.now()) is State.OPEN
        with pytest.raises(seawall.CircuitOpenError) as caught:
            client.request("GET", upstream.url + "/api")
        assert caught.value.reason == "open"
    assert not any(isinstance(e, ev.HealthChanged) for e in seen)


@pytest.mark.parametrize("flavour", PROBING, ids=lambda f: f.name)
def test_both_fail_the_breaker_says_unhealthy_and_the_prober_stops_with_the_client(
    flavour, upstream
):
    upstream.script("/health", then=respond(503))
    upstream.script("/api", then=respond(503))
    policy, _ = probing_policy(upstream, consecutive_failures=1, open_for=0.05)
    breaker = policy.dependency("up").breaker()
    with flavour.client(policy) as client:
        assert client.request("GET", upstream.url + "/api").status == 503
        wait_for(lambda: breaker.unhealthy is not None)
        with pytest.raises(seawall.CircuitOpenError) as caught:
            client.request("GET", upstream.url + "/api")
        assert caught.value.reason == "unhealthy"
    probe_threads = [t for t in threading.enumerate() if t.name.startswith("seawall-probe-up")]
    hits = upstream.hits("/health")
    time.sleep(0.1)  # five intervals
    assert upstream.hits("/health") == hits  # no probe after the client closed
    assert probe_threads == []
    assert upstream.hits("/api") == 1  # probes went straight to /health, never via the policy


def test_a_manual_update_holds_it_open_with_its_reason_and_lifts_to_half_open(upstream):
    policy = seawall.Policy("up", retry=None, telemetry=False)
    changes: list[ev.HealthChanged] = []
    policy.subscribe(changes.append, ev.HealthChanged)
    with PROBING[0].client(policy) as client:
        policy.update_health(False, reason="maintenance window")
        with pytest.raises(seawall.CircuitOpenError) as caught:
            client.request("GET", upstream.url + "/api")
        assert caught.value.reason == "unhealthy"
        assert policy.dependency("up").breaker().unhealthy == "manual: maintenance window"
        policy.update_health(True)
        assert client.request("GET", upstream.url + "/api").status == 200
    assert [(c.healthy, c.source, c.reason) for c in changes] == [
        (False, "manual", "maintenance window"),
        (True, "manual", "healthy"),
    ]
    with pytest.raises(ValueError, match="update_health: dependency must name the dependency"):
        seawall.Policy(telemetry=False).update_health(False)
    with pytest.raises(TypeError, match="update_health: healthy must be a bool, got str 'no'"):
        policy.update_health("no")  # type: ignore[arg-type]


def test_probes_and_verdicts_are_counted_in_metrics(upstream, otel: Otel):  # noqa: F811
    upstream.script("/health", respond(503), respond(503), respond(503), then=respond(200))
    check = HealthCheck(upstream.url + "/health", interval=0.02, timeout=1.0)
    policy = otel.policy(health=check, breaker=seawall.CircuitBreaker())
    breaker = policy.dependency("upstream").breaker()
    changes: list[ev.HealthChanged] = []
    policy.subscribe(changes.append, ev.HealthChanged)
    with PROBING[0].client(policy):
        wait_for(lambda: len(changes) == 2)  # unhealthy after 3 fails, healthy after 2 passes
    assert breaker.state(policy.now()) is State.HALF_OPEN
    assert otel.total("seawall.health.probes", seawall_health_result="fail") == 3
    assert otel.total("seawall.health.probes", seawall_health_result="pass") >= 2
    assert otel.total("seawall.health.changes", seawall_health_state="unhealthy") == 1
    assert otel.total("seawall.health.changes", seawall_health_state="healthy") == 1


def test_the_status_snapshot_shows_why_health_holds_a_breaker_open():
    policy = seawall.Policy(
        "held",
        retry=None,
        telemetry=False,
        breaker=seawall.CircuitBreaker(adaptive=seawall.AdaptiveThreshold()),
    )
    policy.dependency("held")
    policy.update_health(False, reason="probe says no")
    breaker = seawall.status([policy])["dependencies"][0]["breakers"][0]
    assert breaker["state"] == "open"
    assert breaker["unhealthy"] == "manual: probe says no"
    assert breaker["thresholds"]["adaptive"] is True
    assert breaker["thresholds"]["failure_rate"] == 0.5


def test_an_aiohttp_session_of_the_callers_own_stops_probing_when_closed(upstream):
    """A session built with only the middleware has no seawall connector to stop the prober
    as it closes: the prober holds the session weakly and ends at its first wake after the
    close, without probing the closed session."""
    import asyncio

    import aiohttp

    import seawall.aiohttp

    upstream.script("/health", then=respond(200))
    policy, seen = probing_policy(upstream)

    async def main() -> tuple[int, int, list[str]]:
        session = aiohttp.ClientSession(middlewares=[seawall.aiohttp.middleware(policy)])
        async with session.get(upstream.url + "/api") as response:  # starts the prober
            await response.read()
        while len(probes(seen)) < 3:
            await asyncio.sleep(0.01)
        await session.close()
        closed_at = upstream.hits("/health")
        await asyncio.sleep(0.15)  # several intervals
        left = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("seawall-")]
        return closed_at, upstream.hits("/health"), left

    closed_at, later, left = asyncio.run(main())
    assert later == closed_at  # no probe after the close
    assert left == []  # the prober ended by itself
    assert all(p.passed for p in probes(seen)) and upstream.hits("/api") == 1


@pytest.mark.parametrize("flavour", PROBING, ids=lambda f: f.name)
def test_a_health_section_of_the_configuration_is_probed_through_the_router(flavour, upstream):
    from seawall.config import Router, load

    upstream.script("/ledger/health", then=respond(503))
    config = load(
        {
            "dependencies": {
                "ledger": {
                    "match": {"path": "/ledger"},
                    "retry": False,
                    "health": {"url": upstream.url + "/ledger/health", "interval": "20ms"},
                },
                "plain": {"match": {"path": "/plain"}},
            }
        }
    )
    router = Router(config, telemetry=False)
    [ledger] = [p for p in router.policies() if p.name == "ledger"]
    with flavour.client(router) as client:  # type: ignore[arg-type]
        assert client.request("GET", upstream.url + "/plain").status == 200
        breaker = ledger.dependency("ledger").breaker()
        wait_for(lambda: breaker.unhealthy is not None)
        with pytest.raises(seawall.CircuitOpenError) as caught:
            client.request("GET", upstream.url + "/ledger/api")
        assert caught.value.reason == "unhealthy"
    hits = upstream.hits("/ledger/health")
    time.sleep(0.1)
    assert upstream.hits("/ledger/health") == hits  # stopped with the client
    assert upstream.hits("/ledger/api") == 0
