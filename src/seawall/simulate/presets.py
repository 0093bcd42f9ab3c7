"""The shipped scenarios (`seawall simulate --preset NAME`). Each runs in seconds."""

from __future__ import annotations

import random
from collections.abc import Callable

from ..policies.adaptive import AdaptiveThreshold, Throttle
from ..policies.breaker import CircuitBreaker
from ..policies.bulkhead import Bulkhead
from ..policies.health import HealthCheck
from ..policies.retry import Backoff, Retry
from ..policies.timeouts import Timeouts
from .driver import Client, SimProber
from .engine import Loop
from .scenario import Scenario, Variant
from .server import Server, ServerModel, ramp

NO_BUDGET = Retry(budget=None)
NO_JITTER = Retry(backoff=Backoff.exponential(jitter="none"), budget=None)


def retry_storm() -> Scenario:
    """A server at 60% load loses 80% of its capacity for 10 s. Every attempt then waits
    longer than its 1 s timeout; without a budget each request makes 3 attempts, 1.8x what the
    server can serve, and the queue never drains after the trigger ends (metastable). The
    budget caps retries near 20% plus its floor, below capacity, so it recovers."""
    server = ServerModel(workers=5, service_time=0.05, capacity=((30.0, 40.0, 0.2),))
    timeouts = Timeouts(attempt=1.0, total=10.0)
    off = {"breaker": None, "bulkhead": None, "timeouts": timeouts}
    return Scenario(
        "retry-storm",
        retry_storm.__doc__ or "",
        {"api": server},
        rate=60.0,
        duration=150.0,
        trigger=(30.0, 40.0),
        variants=(
            Variant("no budget, no jitter", {**off, "retry": NO_JITTER}),
            Variant("no budget, full jitter", {**off, "retry": NO_BUDGET}),
            Variant("budget 20% + 10/s, jitter", {**off, "retry": Retry()}),
            Variant("seawall defaults (+breaker)", {"timeouts": timeouts}),
        ),
    )


def _breaker_states(clients: list[Client]) -> float:
    """How many of the clients' breakers are not closed."""
    count = 0
    for client in clients:
        for dep in client.policy.dependencies():
            for breaker in dep.breakers():
                count += breaker.state(client.loop.now).value != "closed"
    return float(count)


def half_open_herd() -> Scenario:
    """The server fails every request from 20 s to 40 s, then runs at half capacity (50/s for
    60/s offered) until 50 s. 20 clients with a breaker each open within a second of each
    other and close within 3 s of each other once it answers again: the whole load comes back
    at once. One client with all the traffic re-opens in the half-capacity phase. Throttling
    lets traffic back gradually; uncapped, a client at 3 requests/s that saw only failures
    admits about 1 call in 30 and is slow to come back; capped at 80% it is back sooner."""
    server = ServerModel(
        workers=5,
        service_time=0.05,
        error_rate=((20.0, 40.0, 1.0),),
        capacity=((40.0, 50.0, 0.5),),
        failure_cost=0.05,
    )
    timeouts = Timeouts(attempt=1.0, total=10.0)
    fast = CircuitBreaker(window=10.0, min_calls=10, open_for=5.0)
    return Scenario(
        "half-open-herd",
        half_open_herd.__doc__ or "",
        {"api": server},
        rate=60.0,
        duration=90.0,
        trigger=(20.0, 50.0),
        samples={"breakers not closed": _breaker_states},
        variants=(
            Variant("1 client, breaker", {"breaker": fast, "timeouts": timeouts}),
            Variant(
                "20 clients, breaker each", {"breaker": fast, "timeouts": timeouts}, clients=20
            ),
            Variant(
                "20 clients, throttle each",
                {
                    "breaker": CircuitBreaker(window=10.0, throttle=Throttle(window=10.0)),
                    "timeouts": timeouts,
                },
                clients=20,
            ),
            Variant(
                "20 clients, throttle, max 80%",
                {
                    "breaker": CircuitBreaker(
                        window=10.0, throttle=Throttle(window=10.0, max_rejection=0.8)
                    ),
                    "timeouts": timeouts,
                },
                clients=20,
            ),
        ),
    )


def partial_outage() -> Scenario:
    """One of four hosts behind one dependency fails every request for 60 s. A breaker for
    the whole dependency does not open at 25% failures (and every request sent to the bad
    host spends its retries there); a breaker per host isolates the bad one; a whole-dependency
    breaker tuned to 20% opens for everybody: a 25% outage becomes a near-total one."""
    healthy = ServerModel(workers=3, service_time=0.05)
    bad = ServerModel(
        workers=3, service_time=0.05, error_rate=((20.0, 80.0, 1.0),), failure_cost=0.1
    )
    hosts = {"h0": bad, "h1": healthy, "h2": healthy, "h3": healthy}
    timeouts = Timeouts(attempt=1.0, total=10.0)
    return Scenario(
        "partial-outage",
        partial_outage.__doc__ or "",
        hosts,
        rate=100.0,
        duration=100.0,
        trigger=(20.0, 80.0),
        variants=(
            Variant("one breaker (50%)", {"timeouts": timeouts}),
            Variant(
                "breaker per host",
                {"breaker": CircuitBreaker(key=lambda target: target.host), "timeouts": timeouts},
            ),
            Variant(
                "one breaker (20%)",
                {"breaker": CircuitBreaker(failure_rate=0.2), "timeouts": timeouts},
            ),
        ),
    )


def _threshold(clients: list[Client]) -> float:
    breaker = clients[0].policy.dependency("dependency").breaker()
    return breaker.failure_rate if breaker is not None else float("nan")


def adaptive_ramp() -> Scenario:
    """The error rate climbs slowly from 2% to 45% over 5 minutes, then falls back over 5
    minutes. A fixed 50% threshold never opens; the adaptive threshold follows the errors down
    and opens, and must come back up (no ratchet) and not flap open and shut (oscillation)."""
    errors = (*ramp(60.0, 360.0, 0.02, 0.45), *ramp(360.0, 660.0, 0.45, 0.02))
    server = ServerModel(workers=10, service_time=0.02, error_rate=errors, base_error_rate=0.02)
    timeouts = Timeouts(attempt=1.0, total=10.0)
    one_try = Retry(max_attempts=1)
    return Scenario(
        "adaptive-ramp",
        adaptive_ramp.__doc__ or "",
        {"api": server},
        rate=50.0,
        duration=780.0,
        trigger=(60.0, 660.0),
        samples={"threshold": _threshold},
        variants=(
            Variant("fixed 50%", {"retry": one_try, "timeouts": timeouts}),
            Variant(
                "adaptive (defaults)",
                {
                    "retry": one_try,
                    "breaker": CircuitBreaker(adaptive=AdaptiveThreshold()),
                    "timeouts": timeouts,
                },
            ),
            Variant(
                "throttle (k=2)",
                {
                    "retry": one_try,
                    "breaker": CircuitBreaker(throttle=Throttle()),
                    "timeouts": timeouts,
                },
            ),
        ),
    )


def fan_out() -> Scenario:
    """A page calls 10 dependencies at once and needs all of them; one of them has a heavy
    tail (lognormal, mean 50 ms, sigma 1.5). A page is as slow as its slowest call, so the
    tail of that one dependency is the page's tail. A short attempt timeout (0.25 s, about its
    p97) with a retry cuts the tail at the price of 0.35% more calls."""
    fast = ServerModel(workers=20, service_time=0.01, distribution="lognormal", sigma=0.5)
    slow = ServerModel(workers=40, service_time=0.05, distribution="lognormal", sigma=1.5)
    hosts = {f"d{i}": fast for i in range(9)} | {"d9": slow}
    bulkhead = Bulkhead(max_concurrent=100)
    return Scenario(
        "fan-out",
        fan_out.__doc__ or "",
        hosts,
        rate=20.0,
        duration=120.0,
        fan_out=True,
        variants=(
            Variant(
                "attempt timeout 10 s",
                {"bulkhead": bulkhead, "timeouts": Timeouts(attempt=10.0, total=30.0)},
            ),
            Variant(
                "attempt timeout 0.25 s, 3 tries",
                {
                    "bulkhead": bulkhead,
                    "retry": Retry(backoff=Backoff.constant(0.0)),
                    "timeouts": Timeouts(attempt=0.25, total=30.0),
                },
            ),
        ),
    )


def _probing(
    check: HealthCheck,
) -> Callable[[Loop, list[Client], dict[str, Server], random.Random], None]:
    """Probe the "api" host's health endpoint for every client, with the real HealthState."""

    def start(
        loop: Loop, clients: list[Client], hosts: dict[str, Server], rng: random.Random
    ) -> None:
        for client in clients:
            SimProber(client.policy, check, loop, hosts["api"], random.Random(rng.random()))

    return start


def flapping_probe() -> Scenario:
    """The health endpoint fails 30% of its probes at random all along, while traffic is fine;
    from 60 s to 80 s the server is really down (traffic and probes fail). Trusting each probe
    (unhealthy after 1 failure) holds the breaker open at every flap; the defaults (3 failures
    in a row, 2 passes) ride the flaps out and still catch the real outage, and since a passing
    probe only lets the breaker half-open, real traffic decides when it closes."""
    server = ServerModel(
        workers=10,
        service_time=0.02,
        error_rate=((60.0, 80.0, 1.0),),
        health_failures=((0.0, 60.0, 0.3), (60.0, 80.0, 1.0), (80.0, 120.0, 0.3)),
        failure_cost=0.05,
    )
    timeouts = Timeouts(attempt=1.0, total=10.0)
    eager = HealthCheck("http://api/health", interval=1.0, unhealthy_after=1, healthy_after=1)
    default = HealthCheck("http://api/health", interval=1.0)
    return Scenario(
        "flapping-probe",
        flapping_probe.__doc__ or "",
        {"api": server},
        rate=50.0,
        duration=120.0,
        trigger=(60.0, 80.0),
        samples={"breakers not closed": _breaker_states},
        variants=(
            Variant("no probe (traffic only)", {"timeouts": timeouts}),
            Variant("probe, unhealthy after 1", {"timeouts": timeouts}, extra=_probing(eager)),
            Variant("probe, defaults (3 / 2)", {"timeouts": timeouts}, extra=_probing(default)),
        ),
    )


PRESETS: dict[str, Callable[[], Scenario]] = {
    "retry-storm": retry_storm,
    "half-open-herd": half_open_herd,
    "partial-outage": partial_outage,
    "adaptive-ramp": adaptive_ramp,
    "fan-out": fan_out,
    "flapping-probe": flapping_probe,
}
