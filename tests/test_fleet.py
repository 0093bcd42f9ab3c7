"""Fleet mode (issue 16) on a real redis-server the test starts, with real processes calling
the real upstream: the fleet opens where no process would alone, half-opens with one probe
fleet-wide, closes for all, and falls back to local breakers while Redis is away."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_py
from redis.crc import key_slot

import seawall
from integrations.upstream import respond
from seawall.fleet import BreakerKeys
from tests.redis_server import RedisServer

MIN_CALLS = 20


class Worker:
    """One fleet process (tests/fleet_worker.py) and the calls it reported."""

    def __init__(
        self, mode: str, upstream: str, redis: str, namespace: str, interval: float = 0.2
    ) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fleet_worker",
                mode,
                upstream,
                redis,
                namespace,
                str(interval),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.calls: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.calls.append(json.loads(line))

    def first(self, test: Callable[[dict[str, Any]], bool], after: float = 0.0) -> float | None:
        for call in list(self.calls):
            if call["t"] >= after and test(call):
                return float(call["t"])
        return None

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def fleet_of_four(upstream: Any, redis_server: RedisServer) -> Iterator[list[Worker]]:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    workers = [
        Worker(mode, upstream.url, redis_server.url, namespace)
        for mode in ("sync", "sync", "async", "async")
    ]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_four_processes_open_together_probe_once_and_close_together(
    upstream: Any, fleet_of_four: list[Worker]
) -> None:
    upstream.default = respond(503)
    wait_for(
        lambda: all(w.first(lambda c: c["outcome"] == "rejected") for w in fleet_of_four),
        15.0,
        "every process rejects calls",
    )
    failures = sorted(
        c["t"] for w in fleet_of_four for c in list(w.calls) if c["outcome"] == "fail"
    )
    crossed = failures[MIN_CALLS - 1]  # the fleet total reached min_calls (all calls fail)
    for worker in fleet_of_four:
        opened = worker.first(lambda c: c["outcome"] == "rejected")
        assert opened is not None
        alone = sum(1 for c in worker.calls if c["outcome"] == "fail" and c["t"] < opened)
        assert alone < MIN_CALLS, f"one process saw {alone} failures: it opened on its own"
        assert opened - crossed < 2.0, f"opened {opened - crossed:.2f} s after the crossing"

    upstream.default = respond(200)
    all_open = max(w.first(lambda c: c["outcome"] == "rejected") or 0 for w in fleet_of_four)
    wait_for(
        lambda: all(
            w.first(lambda c: c["before"] == "closed" and c["outcome"] == "ok", after=all_open)
            for w in fleet_of_four
        ),
        15.0,
        "every process closed again",
    )
    first_closed = min(
        w.first(lambda c: c["before"] == "closed" and c["outcome"] == "ok", after=all_open) or 0
        for w in fleet_of_four
    )
    probes = [
        c
        for w in fleet_of_four
        for c in list(w.calls)
        if all_open <= c["t"] < first_closed and c["outcome"] != "rejected"
    ]
    assert len(probes) == 1, f"the fleet sent {len(probes)} half-open probes: {probes}"
    assert probes[0]["before"] == "half_open" and probes[0]["outcome"] == "ok"


def test_redis_killed_mid_run_each_process_falls_back_then_rejoins(
    upstream: Any, redis_server: RedisServer, fleet_of_four: list[Worker]
) -> None:
    wait_for(lambda: all(len(w.calls) >= 5 for w in fleet_of_four), 15.0, "calls flow")
    redis_server.stop()
    killed = time.monotonic()
    wait_for(
        lambda: all(
            w.first(lambda c: c["degraded"] and c["gauge"] == 1, after=killed)
            for w in fleet_of_four
        ),
        5.0,
        "every process reports degraded, in its seawall.fleet.degraded gauge too",
    )
    # requests kept going, and never waited on Redis: no call is slower than the upstream's own
    wait_for(
        lambda: all(w.first(lambda c: True, after=killed + 1.0) for w in fleet_of_four),
        5.0,
        "calls keep flowing while Redis is down",
    )
    down = [c for w in fleet_of_four for c in list(w.calls) if c["t"] > killed]
    assert all(c["outcome"] == "ok" for c in down)
    gaps = [
        b["t"] - a["t"]
        for w in fleet_of_four
        for a, b in zip(w.calls, w.calls[1:])
        if a["t"] > killed
    ]
    assert max(gaps) < 1.0, f"a call waited {max(gaps):.2f} s while Redis was down"

    with RedisServer(redis_server.port):  # the same port: the fleet comes back
        back = time.monotonic()
        wait_for(
            lambda: all(
                w.first(lambda c: not c["degraded"] and c["gauge"] == 0, after=back)
                for w in fleet_of_four
            ),
            10.0,
            "every process rejoins the fleet (its gauge back at 0)",
        )
        assert redis_py.Redis(port=redis_server.port).keys("{sw:*"), "nothing flushed again"


def test_keys_never_collide_and_one_breaker_stays_in_one_slot() -> None:
    triples = [
        ("a", "b:c", ""),
        ("a:b", "c", ""),
        ("a", "b", "c"),
        ("ab", "c", ""),
        ("a", "bc", ""),
        ("a}", "b", ""),
        ("a", "}b", ""),
        ("ns", "dep", "k"),
    ]
    tags = {BreakerKeys(*t).tag for t in triples}
    assert len(tags) == len(triples)
    keys = [k for t in triples for k in BreakerKeys(*t).all()]
    assert len(set(keys)) == len(keys)
    for triple in triples:
        slots = {key_slot(k.encode()) for k in BreakerKeys(*triple).all()}
        assert len(slots) == 1, f"{triple}: keys spread over slots {slots}"


def test_two_breakers_of_different_names_keep_separate_fleet_state(
    redis_server: RedisServer,
) -> None:
    clock = [0.0]
    fleets = [
        seawall.Fleet(redis_server.url, namespace="ns", start=False, clock=lambda: clock[0])
        for _ in range(2)
    ]
    config = seawall.CircuitBreaker(min_calls=4, failure_rate=0.5, window=10, open_for=5.0)
    failing = [f.breaker("failing", "failing", config, lambda *a: None) for f in fleets]
    healthy = [f.breaker("healthy", "healthy", config, lambda *a: None) for f in fleets]
    for breaker in failing + healthy:
        for _ in range(2):  # two failures each: four in the fleet, none alone at min_calls
            permit = breaker.acquire(0.0)
            assert permit is not None
            breaker.record(permit, breaker in failing, False, 0.0)
    for fleet in fleets:
        fleet.flush()
    for fleet in fleets:
        fleet.flush()  # the first flusher saw only its own counts: the second one tripped it
    assert [b.state(0.0) for b in failing] == [seawall.BreakerState.OPEN] * 2
    assert [b.state(0.0) for b in healthy] == [seawall.BreakerState.CLOSED] * 2
    assert failing[0].fleet is not None and failing[0].fleet.reporters == 2


def test_one_reporter_alone_never_trips_the_fleet(redis_server: RedisServer) -> None:
    fleet = seawall.Fleet(redis_server.url, namespace="solo", start=False, clock=lambda: 0.0)
    config = seawall.CircuitBreaker(min_calls=10, failure_rate=0.5, window=10, open_for=5.0)
    breaker = fleet.breaker("dep", "dep", config, lambda *a: None)
    for _ in range(9):
        permit = breaker.acquire(0.0)
        assert permit is not None
        breaker.record(permit, True, False, 0.0)
    fleet.flush()
    fleet.flush()
    assert breaker.fleet is not None and breaker.fleet.failures == 9
    assert breaker.fleet.state == "closed" and breaker.state(0.0) is seawall.BreakerState.CLOSED


def test_a_local_isolate_wins_over_the_fleet(redis_server: RedisServer) -> None:
    fleets = [
        seawall.Fleet(redis_server.url, namespace="manual", start=False, clock=lambda: 0.0)
        for _ in range(2)
    ]
    config = seawall.CircuitBreaker(min_calls=4, failure_rate=0.5, window=10, open_for=5.0)
    breakers = [f.breaker("dep", "dep", config, lambda *a: None) for f in fleets]
    breakers[1].disable(0.0, reason="testing")
    for breaker in breakers:
        for _ in range(2):
            permit = breaker.acquire(0.0)
            assert permit is not None
            breaker.record(permit, True, False, 0.0)
    for fleet in fleets + fleets:
        fleet.flush()
    assert breakers[0].state(0.0) is seawall.BreakerState.OPEN
    assert breakers[1].fleet is not None and breakers[1].fleet.state == "open"
    assert breakers[1].state(0.0) is seawall.BreakerState.DISABLED


def test_redis_down_at_start_is_not_an_error_but_a_bad_url_is() -> None:
    from tests.redis_server import free_port

    fleet = seawall.Fleet(f"redis://127.0.0.1:{free_port()}/0", start=False, clock=lambda: 0.0)
    breaker = fleet.breaker("dep", "dep", seawall.CircuitBreaker(), lambda *a: None)
    permit = breaker.acquire(0.0)
    assert permit is not None
    breaker.record(permit, True, False, 0.0)
    fleet.flush()
    assert fleet.degraded and breaker.fleet_status()["degraded"]
    assert breaker.state(0.0) is seawall.BreakerState.CLOSED  # the local breaker decides alone
    with pytest.raises(ValueError, match="redis must be a Redis URL"):
        seawall.Fleet("http://example:6379", start=False)
    with pytest.raises(TypeError, match="redis must be a Redis URL.*got int"):
        seawall.Fleet(6379, start=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port is not a number"):
        seawall.Fleet("redis://127.0.0.1:port/0", start=False)


def test_the_status_shows_the_fleet_view_beside_the_local_one(redis_server: RedisServer) -> None:
    fleets = [seawall.Fleet(redis_server.url, namespace="status", start=False) for _ in range(2)]
    config = seawall.CircuitBreaker(min_calls=4, failure_rate=0.5, window=30, open_for=5.0)
    policies = [
        seawall.Policy("dep", retry=None, telemetry=False, breaker=config, store=f) for f in fleets
    ]
    for policy in policies:
        breaker = policy.dependency("dep").shared_breaker
        assert breaker is not None
        for _ in range(2):
            permit = breaker.acquire(policy.now())
            assert permit is not None
            breaker.record(permit, True, False, policy.now())
    for fleet in fleets + fleets:
        fleet.flush()
    shown = seawall.status([policies[0]])["dependencies"][0]["breakers"][0]
    assert shown["state"] == "open" and shown["window"]["calls"] == 2  # the local view
    fleet_side = shown["fleet"]
    assert {k: fleet_side[k] for k in ("state", "calls", "failures", "reporters", "degraded")} == {
        "state": "open",
        "calls": 0,
        "failures": 0,
        "reporters": 2,
        "degraded": False,
    }
    assert fleet_side["last_flush"].endswith("Z")
    local = seawall.Policy("dep", retry=None, telemetry=False, breaker=config)
    local.dependency("dep")
    assert "fleet" not in seawall.status([local])["dependencies"][0]["breakers"][0]


def test_only_the_prober_half_opens_even_when_a_flush_comes_late(redis_server: RedisServer) -> None:
    clock = [0.0]
    fleets = [
        seawall.Fleet(
            redis_server.url, namespace="late", start=False, interval=1.0, clock=lambda: clock[0]
        )
        for _ in range(2)
    ]
    config = seawall.CircuitBreaker(min_calls=4, failure_rate=0.5, window=10, open_for=0.2)
    breakers = [f.breaker("dep", "dep", config, lambda *a: None) for f in fleets]
    for breaker in breakers:
        for _ in range(2):
            permit = breaker.acquire(0.0)
            assert permit is not None
            breaker.record(permit, True, False, 0.0)
    for fleet in fleets + fleets:
        fleet.flush()
    assert [b.state(0.0) for b in breakers] == [seawall.BreakerState.OPEN] * 2
    time.sleep(0.3)  # the fleet's open time (Redis TIME) is up
    clock[0] = 1.05  # a flush interval and some jitter later, before any flush
    assert [b.acquire(clock[0]) for b in breakers] == [None, None], (
        "a process half-opened on its own before a flush said who probes"
    )
    for fleet in fleets:
        fleet.flush()
    permits = [b.acquire(clock[0]) for b in breakers]
    assert sum(p is not None for p in permits) == 1, f"probes allowed: {permits}"


def _fail(breaker: Any, times: int, now: float = 0.0) -> None:
    for _ in range(times):
        permit = breaker.acquire(now)
        assert permit is not None
        breaker.record(permit, True, False, now)


def test_the_breaker_around_redis_spares_each_flush_the_timeout(redis_server: RedisServer) -> None:
    """A Redis that hangs (SIGSTOP: connections wait, every call times out) costs one flush its
    100 ms timeout; then the breaker around Redis is open and flushes return at once, until
    `redis_open_for` is up and one flush probes; a Redis that answers again closes it."""
    import os
    import signal

    clock = [0.0]
    fleet = seawall.Fleet(
        redis_server.url, namespace="guard", start=False, redis_open_for=5.0, clock=lambda: clock[0]
    )
    breaker = fleet.breaker("dep", "dep", seawall.CircuitBreaker(), lambda *a: None)
    _fail(breaker, 1)
    fleet.flush()
    assert not fleet.degraded and fleet.view()["redis_breaker"] == "closed"
    assert redis_server.process is not None
    pid = redis_server.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.perf_counter()
        fleet.flush()  # waits out the socket timeout once
        first = time.perf_counter() - started
        assert fleet.degraded and fleet.view()["redis_breaker"] == "open"
        assert breaker.state(0.0) is seawall.BreakerState.CLOSED  # decides locally
        started = time.perf_counter()
        for step in range(40):  # 4 s of flushes every 0.1 s: none tries Redis
            clock[0] = 0.1 * step
            _fail(breaker, 0)
            fleet.flush()
        later = time.perf_counter() - started
        assert first >= 0.09, f"the first flush took {first:.3f} s: no timeout was hit?"
        assert later < 0.2, f"40 flushes with the breaker open took {later:.3f} s"
        clock[0] = 5.5  # open time up: one probe, Redis still hung, open again
        fleet.flush()
        assert fleet.view()["redis_breaker"] == "open" and fleet.degraded
    finally:
        os.kill(pid, signal.SIGCONT)
    clock[0] = 11.0
    fleet.flush()  # the probe works: closed, back in the fleet
    assert fleet.view()["redis_breaker"] == "closed" and not fleet.degraded
    assert breaker.fleet is not None and not breaker.fleet_status()["degraded"]
    fleet.close()


def test_the_retry_budget_floor_is_shared_among_the_reporters(redis_server: RedisServer) -> None:
    """Three processes of one dependency: each keeps a third of the floor, so the fleet's floor
    is the configured one; with Redis gone each keeps all of it (it decides alone)."""
    budget = seawall.RetryBudget(ratio=0.0, min_per_second=6.0, ttl=10)
    fleets = [seawall.Fleet(redis_server.url, namespace="budget", start=False) for _ in range(3)]
    policies = [
        seawall.Policy(
            "dep",
            telemetry=False,
            breaker=None,  # no breaker: the budget asks Redis for its reporters itself
            retry=seawall.Retry(budget=budget),
            store=fleet,
        )
        for fleet in fleets
    ]
    states = [policy.dependency("dep").budget for policy in policies]
    for policy, state in zip(policies, states):
        assert state is not None
        state.deposit(policy.now())
        assert state.balance(policy.now()) == pytest.approx(60.0)  # alone: the whole floor
    for fleet in fleets + fleets:
        fleet.flush()
    for policy, state in zip(policies, states):
        assert state is not None
        assert state.balance(policy.now()) == pytest.approx(20.0)  # 6 / 3 a second for 10 s
    shown = seawall.status([policies[0]])["dependencies"][0]["retry_budget"]
    assert shown["floor_per_second"] == 6.0
    assert shown["fleet"] == {"reporters": 3, "floor_per_second": 2.0}
    redis_server.stop()
    fleets[0].flush()
    assert states[0] is not None and states[0].balance(policies[0].now()) == pytest.approx(60.0)


def test_a_budget_beside_a_breaker_takes_the_breakers_reporters(redis_server: RedisServer) -> None:
    fleets = [seawall.Fleet(redis_server.url, namespace="both", start=False) for _ in range(2)]
    policies = [
        seawall.Policy(
            "dep",
            telemetry=False,
            retry=seawall.Retry(budget=seawall.RetryBudget(ratio=0.0, min_per_second=10.0)),
            store=fleet,
        )
        for fleet in fleets
    ]
    for policy in policies:
        state = policy.dependency("dep")
        assert state.shared_breaker is not None and state.budget is not None
        _fail(state.shared_breaker, 1, policy.now())
        state.budget.deposit(policy.now())
    for fleet in fleets + fleets:
        fleet.flush()
    assert fleets[0].script_calls == 2  # one FLUSH per flush, no REPORTERS
    budget = policies[0].dependency("dep").budget
    assert budget is not None and budget.balance(policies[0].now()) == pytest.approx(50.0)


def test_scope_fleet_controls_reach_every_process_and_one_that_starts_later(
    upstream: Any, redis_server: RedisServer
) -> None:
    """isolate / disable / reset with scope=fleet, asked in this process, apply in two other
    processes at once (pub/sub) and in a third started afterwards (its first flush)."""
    namespace = f"manual-{uuid.uuid4().hex[:8]}"
    fleet = seawall.Fleet(redis_server.url, namespace=namespace, start=False)
    here = seawall.Policy("dep", retry=None, telemetry=False, store=fleet)
    workers = [
        Worker(mode, upstream.url, redis_server.url, namespace) for mode in ("sync", "async")
    ]
    try:
        wait_for(lambda: all(len(w.calls) >= 3 for w in workers), 15.0, "calls flow")
        seawall.admin.isolate(
            "dep", reason="failover drill", by="ops", scope="fleet", policies=[here]
        )
        asked = time.monotonic()
        wait_for(
            lambda: all(
                w.first(lambda c: c["before"] == "isolated" and c["outcome"] == "rejected", asked)
                for w in workers
            ),
            3.0,
            "both processes isolated",
        )
        shown = seawall.status([here])["dependencies"][0]["breakers"][0]
        assert shown["state"] == "isolated"
        assert shown["manual"]["scope"] == "fleet" and shown["manual"]["by"] == "ops"

        late = Worker("sync", upstream.url, redis_server.url, namespace)
        workers.append(late)
        wait_for(lambda: late.first(lambda c: c["before"] == "isolated"), 5.0, "late one isolated")

        seawall.admin.reset("dep", scope="fleet", policies=[here])
        reset = time.monotonic()
        wait_for(
            lambda: all(
                w.first(lambda c: c["before"] == "closed" and c["outcome"] == "ok", reset)
                for w in workers
            ),
            3.0,
            "every process closed again",
        )
        for worker in workers:  # no isolated call after the reset reached it (give it 200 ms)
            assert worker.first(lambda c: c["before"] == "isolated", reset + 0.2) is None
    finally:
        for worker in workers:
            worker.stop()


def test_scope_fleet_is_refused_without_a_fleet_or_a_redis(redis_server: RedisServer) -> None:
    from seawall.admin.controls import ControlError

    local = seawall.Policy("solo", retry=None, telemetry=False)
    with pytest.raises(ControlError, match="not in fleet mode") as refused:
        seawall.admin.isolate("solo", scope="fleet", policies=[local])
    assert refused.value.status == 409
    with pytest.raises(ControlError, match="unknown scope"):
        seawall.admin.isolate("solo", scope="world", policies=[local])
    secret = f"redis://:hunter2@127.0.0.1:{redis_server.port}/0"
    redis_server.stop()
    fleet = seawall.Fleet(secret, namespace="down", start=False)
    policy = seawall.Policy("dep", retry=None, telemetry=False, store=fleet)
    with pytest.raises(ControlError, match="nothing was changed") as down:
        seawall.admin.isolate("dep", scope="fleet", policies=[policy])
    assert down.value.status == 503 and "hunter2" not in str(down.value)
    breaker = policy.dependency("dep").shared_breaker
    assert breaker is not None and breaker.state(policy.now()) is seawall.BreakerState.CLOSED


def test_the_status_table_labels_the_fleet_column(redis_server: RedisServer) -> None:
    from seawall.admin.table import render

    fleet = seawall.Fleet(redis_server.url, namespace="table", start=False)
    policy = seawall.Policy("dep", retry=None, telemetry=False, store=fleet)
    breaker = policy.dependency("dep").shared_breaker
    assert breaker is not None
    _fail(breaker, 3, policy.now())
    local = seawall.Policy("solo", retry=None, telemetry=False)
    local.dependency("solo")
    lines = render(seawall.status([policy, local])).splitlines()
    assert lines[2].split()[-2:] == ["FLEET", "MANUAL"]
    assert lines[3].split()[-2] == "not-flushed" and lines[4].split()[-2:] == ["-", "-"]
    fleet.flush()
    seawall.admin.isolate("dep", scope="fleet", by="ops", reason="drill", policies=[policy])
    row = render(seawall.status([policy])).splitlines()[3]
    assert "closed:3c/3f/1p" in row and row.endswith("isolate (fleet-wide) by ops: drill")
    redis_server.stop()
    fleet.flush()
    assert "degraded(local)" in render(seawall.status([policy])).splitlines()[3]


def test_the_fleet_section_of_the_yaml_builds_a_fleet_every_policy_shares(
    upstream: Any, redis_server: RedisServer, tmp_path: Any
) -> None:
    """Zero code: two routers from one YAML file (two processes, as far as Redis can tell) whose
    only fleet set-up is the `fleet:` section pool their breaker counts."""
    import httpx

    from seawall.config import Router, load_file
    from seawall.httpx import ResilientTransport

    path = tmp_path / "seawall.yaml"
    path.write_text(
        "defaults:\n  retry: false\n  breaker: {min_calls: 4, window: 30s}\n"
        "dependencies:\n  pay:\n    match: {host: 127.0.0.1}\n"
        'fleet:\n  redis: "${REDIS_URL}"\n  namespace: yaml\n  interval: 100ms\n'
    )
    upstream.default = respond(503)
    routers = [
        Router(load_file(path, environ={"REDIS_URL": redis_server.url}), telemetry=False)
        for _ in range(2)
    ]
    fleets = [router.config.fleet for router in routers]
    assert all(isinstance(f, seawall.Fleet) for f in fleets) and fleets[0] is not fleets[1]
    assert all(p._store is router.store for router in routers for p in router.policies())
    for router in routers:
        with httpx.Client(transport=ResilientTransport(router)) as client:
            for _ in range(2):  # two failures each: four in the fleet, none alone at min_calls
                assert client.get(upstream.url + "/pay").status_code == 503
    state = routers[0].routes[0][1].dependency("pay")
    wait_for(
        lambda: (
            state.shared_breaker is not None
            and state.shared_breaker.state(time.monotonic()) is seawall.BreakerState.OPEN
        ),
        5.0,
        "the fleet opened the first router's breaker",
    )
    assert "shares breaker state through Redis at redis://127.0.0.1:" in routers[0].describe()
    for fleet in fleets:
        assert fleet is not None
        fleet.close()


def test_fleet_section_problems_name_the_key_and_never_show_the_url() -> None:
    from seawall.config import ConfigError, load

    secret = "http://user:hunter2@cache.internal:6379"
    with pytest.raises(ConfigError) as bad:
        load({"fleet": {"redis": secret, "interval": "soon", "colour": 1}})
    assert bad.value.problems == [
        "fleet.redis: must be a Redis URL like redis://host:6379/0 (schemes redis, rediss, unix), "
        "got one with scheme 'http' and host 'cache.internal'",
        "fleet.interval: must be a duration: seconds as a number, or a string like 250ms, 2s, "
        "1.5m, 1h, got 'soon'",
        "fleet.colour: unknown key; expected one of redis, namespace, interval, window, "
        "min_reporters, timeout, redis_open_for",
    ]
    with pytest.raises(ConfigError) as from_env:
        load({}, environ={"SEAWALL_FLEET_REDIS": secret})
    assert from_env.value.problems[0].startswith("fleet.redis (set by $SEAWALL_FLEET_REDIS): ")
    with pytest.raises(ConfigError) as short:
        load({"fleet": secret})  # the short form: the URL alone
    with pytest.raises(ConfigError) as missing:
        load({"fleet": {"namespace": "x"}})
    assert missing.value.problems == [
        "fleet.redis: missing; expected a Redis URL (or $SEAWALL_FLEET_REDIS)"
    ]
    for error in (bad, from_env, short):
        assert "hunter2" not in str(error.value)
    on = load({}, environ={"SEAWALL_FLEET_REDIS": "redis://127.0.0.1:1/0"}).fleet
    assert on is not None and on.namespace == "seawall" and not on._threads  # not started
    assert load({"fleet": False}, environ={"SEAWALL_FLEET_REDIS": "redis://x:1/0"}).fleet is None
    assert load({}).fleet is None


def test_a_process_that_applies_a_fleet_wide_control_announces_it(
    redis_server: RedisServer,
) -> None:
    """The other process's change is an event of its own policy (its log line and metric)."""
    here, there = (seawall.Fleet(redis_server.url, namespace="news", start=False) for _ in "ab")
    asking = seawall.Policy("dep", retry=None, telemetry=False, store=here)
    told = seawall.Policy("dep", retry=None, telemetry=False, store=there)
    heard: list[Any] = []
    told.subscribe(heard.append, seawall.events.ManualChange)
    told.dependency("dep")
    seawall.admin.disable("dep", scope="fleet", reason="noisy", by="ops", policies=[asking])
    there.flush()
    assert [(e.action, e.by, e.reason, e.scope) for e in heard] == [
        ("disable", "ops", "noisy", "fleet")
    ]
    there.flush()  # applied once only
    assert len(heard) == 1
