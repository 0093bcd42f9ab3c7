"""`seawall.protect`: any call, through the same pipeline as HTTP (issue 14, items 1 and 3).

The conformance suite's behaviours for protected sync functions, async functions and sync
functions run in the dependency's thread pool (`in_thread=True`), each one a real call to the
fault-injecting upstream over a 127.0.0.1 socket through the standard library; then what is
particular to calls: the error rules, the attempt timeout of a sync call, the thread pool,
where a dependency's policy comes from, spans and metrics."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import seawall
from integrations.upstream import reset, respond
from seawall import events as ev
from tests.calls import KINDS, Unavailable, finished, get, idle, policy, protected
from tests.test_telemetry import otel  # noqa: F401 (the fixture)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- the conformance behaviours ------------------------------------------------------------------
def test_a_transient_error_is_retried_when_the_call_is_idempotent(kind, upstream):
    upstream.script("/t", reset(), reset(), respond(200))
    p = policy()
    ends = finished(p)
    call = protected(kind, p, upstream.port, "/t", idempotent=True)
    assert call() == 200
    assert upstream.hits("/t") == 3
    assert [(e.outcome, e.attempts) for e in ends] == [("success", 3)]
    idle(p)


def test_a_call_not_declared_idempotent_is_not_retried_once_it_ran(kind, upstream):
    upstream.script("/t", reset(), respond(200))
    p = policy()
    stops: list[Any] = []
    p.subscribe(stops.append, ev.RetryStopped)
    with pytest.raises(ConnectionResetError):
        protected(kind, p, upstream.port, "/t")()
    assert upstream.hits("/t") == 1
    assert [s.why for s in stops] == ["unsafe_method"]


def test_an_error_that_proves_the_call_never_started_is_retried_whatever(kind, upstream):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: every connection is refused
    p = policy()
    ends = finished(p)
    call = protected(kind, p, port, "/t", unsent_on=ConnectionRefusedError)
    with pytest.raises(ConnectionRefusedError):
        call()
    assert [(e.outcome, e.attempts) for e in ends] == [("failure", 3)]


def test_the_breaker_opens_and_fails_fast(kind, upstream):
    upstream.script("/t", then=respond(503))
    breaker = seawall.CircuitBreaker(window=10, window_type="count", min_calls=4, open_for=60)
    p = policy(breaker=breaker, retry=None)
    call = protected(kind, p, upstream.port, "/t", failure_on=Unavailable)
    for _ in range(4):
        with pytest.raises(Unavailable):
            call()
    with pytest.raises(seawall.CircuitOpenError) as info:
        call()
    assert info.value.dependency == "store"
    assert upstream.hits("/t") == 4  # the rejected call never ran
    assert p.dependency("store").breaker() is not None
    assert p.dependency("store").breaker().state(p.now()).value == "open"  # type: ignore[union-attr]


def test_errors_of_the_caller_are_neither_retried_nor_counted(kind, upstream):
    upstream.script("/t", then=respond(503))
    breaker = seawall.CircuitBreaker(window=10, window_type="count", min_calls=2, open_for=60)
    p = policy(breaker=breaker)
    call = protected(kind, p, upstream.port, "/t", idempotent=True)  # Unavailable: not declared
    for _ in range(4):
        with pytest.raises(Unavailable):
            call()
    assert upstream.hits("/t") == 4  # one attempt each, and the breaker stayed closed
    assert p.dependency("store").breaker().state(p.now()).value == "closed"  # type: ignore[union-attr]


def test_the_bulkhead_caps_concurrency_and_queues(kind, upstream):
    upstream.script("/slow", then=respond(200, delay=0.15))
    p = policy(bulkhead=seawall.Bulkhead(max_concurrent=2, max_queued=2, queue_timeout=5))
    call = protected(kind, p, upstream.port, "/slow")
    results = call.together(6)
    rejected = [r for r in results if isinstance(r, seawall.BulkheadFullError)]
    assert results.count(200) == 4  # two at once, two queued
    assert len(rejected) == 2 and {r.reason for r in rejected} == {"queue_full"}
    assert upstream.max_in_flight == 2
    idle(p)


def test_the_bulkhead_queue_times_out(kind, upstream):
    upstream.script("/slow", then=respond(200, delay=0.3))
    p = policy(bulkhead=seawall.Bulkhead(max_concurrent=1, max_queued=5, queue_timeout=0.05))
    results = protected(kind, p, upstream.port, "/slow").together(2)
    assert results.count(200) == 1
    (rejected,) = [r for r in results if isinstance(r, seawall.BulkheadFullError)]
    assert rejected.reason == "queue_timeout"
    idle(p)


def test_the_total_deadline_bounds_the_whole_call(kind, upstream):
    upstream.script("/t", reset(), then=respond(200, delay=0.4))
    p = policy(timeouts=seawall.Timeouts(attempt=None, total=0.2))
    ends = finished(p)
    call = protected(kind, p, upstream.port, "/t", idempotent=True)
    started = time.monotonic()
    with pytest.raises(seawall.DeadlineExceeded) as info:
        call()
    took = time.monotonic() - started
    assert isinstance(info.value.__cause__, seawall.AttemptTimedOut)
    assert [e.outcome for e in ends] == ["rejected"]
    if kind == "sync":
        assert took >= 0.4  # a sync call cannot be cut: it ran to its end, then was discarded
    else:
        assert took < 0.35  # cancelled (async) or no longer awaited (its thread)


@pytest.mark.parametrize("kind", ["async", "in_thread"])  # sync: the next test
def test_cancellation_releases_the_slot_and_the_probe(kind, upstream):
    upstream.script("/slow", then=respond(200, delay=1.0))
    breaker = seawall.CircuitBreaker(window=10, window_type="count", min_calls=1, open_for=0.05)
    p = policy(breaker=breaker)
    call = protected(kind, p, upstream.port, "/slow", failure_on=Unavailable)
    upstream.script("/slow", respond(503), then=respond(200, delay=1.0))
    with pytest.raises(Unavailable):
        call()  # opens the breaker
    time.sleep(0.06)  # half-open: the next call is the probe
    ends = finished(p)

    async def main() -> None:
        task = asyncio.ensure_future(call.function())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert [e.outcome for e in ends] == ["cancelled"]
    idle(p)
    breaker_state = p.dependency("store").breaker()
    assert breaker_state is not None and breaker_state.acquire(p.now()) is not None  # permit back


def test_an_interrupt_of_a_sync_call_releases_the_slot_and_ends_it_once(upstream):
    p = policy()
    ends = finished(p)

    @seawall.protect(policy=p, idempotent=True)
    def interrupted() -> None:
        get(upstream.port, "/t")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert [e.outcome for e in ends] == ["cancelled"]
    idle(p)


def test_exactly_one_terminal_event_per_call_whatever_the_end(kind, upstream):
    upstream.script("/t", reset(), respond(200), reset(), respond(503), then=respond(503))
    p = policy(breaker=seawall.CircuitBreaker(window=4, window_type="count", min_calls=4))
    ends = finished(p)
    call = protected(kind, p, upstream.port, "/t", idempotent=True, failure_on=Unavailable)
    outcomes = []
    for _ in range(6):
        try:
            call()
            outcomes.append("ok")
        except Exception as error:
            outcomes.append(type(error).__name__)
    # 1: reset, then 200; 2: reset, then 503 (not retried): 3 failures in 4 calls open it
    assert outcomes == ["ok", "Unavailable"] + ["CircuitOpenError"] * 4
    assert [(e.outcome, e.attempts) for e in ends] == [
        ("success", 2),
        ("failure", 2),
        *[("rejected", 0)] * 4,
    ]
    assert upstream.hits("/t") == 4
    idle(p)


# -- the error rules -----------------------------------------------------------------------------
def test_a_predicate_chooses_what_is_retried(upstream):
    upstream.script("/t", respond(503), respond(502), respond(200))
    p = policy()
    retried = seawall.protect(
        policy=p,
        idempotent=True,
        retry_on=lambda error: isinstance(error, Unavailable) and error.status == 503,
    )(lambda: get(upstream.port, "/t"))
    with pytest.raises(Unavailable) as info:
        retried()
    assert info.value.status == 502 and upstream.hits("/t") == 2


def test_bad_arguments_are_named():
    p = policy()
    with pytest.raises(TypeError, match="retry_on must be an exception class, a tuple of them"):
        seawall.protect(policy=p, retry_on="ConnectionError")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got int 3 in \(<class 'OSError'>, 3\)"):
        seawall.protect(policy=p, failure_on=(OSError, 3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="idempotent must be True or False, got str 'yes'"):
        seawall.protect(policy=p, idempotent="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differs from the name of the policy given"):
        seawall.protect("other", policy=p)
    with pytest.raises(TypeError, match="name the dependency"):
        seawall.protect()
    with pytest.raises(TypeError, match="policy must be a seawall.Policy"):
        seawall.protect("x", policy="store")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="is a generator function"):

        @seawall.protect(policy=p)
        def rows() -> Any:
            yield 1

    with pytest.raises(TypeError, match="is already async"):

        @seawall.protect(policy=p, in_thread=True)
        async def fetched() -> None: ...


def test_methods_sync_and_async(upstream):
    p = policy()

    class Store:
        def __init__(self, port: int) -> None:
            self.port = port

        @seawall.protect(policy=p, idempotent=True)
        def find(self, path: str) -> int:
            return get(self.port, path)

        @seawall.protect(policy=p, idempotent=True)
        async def afind(self, path: str) -> int:
            return await asyncio.to_thread(get, self.port, path)

    upstream.script("/m", reset(), then=respond(200))
    store = Store(upstream.port)
    assert store.find("/m") == 200
    assert asyncio.run(store.afind("/m")) == 200
    assert Store.find.__name__ == "find" and Store.find.__qualname__.endswith("Store.find")
    assert upstream.hits("/m") == 3


# -- the attempt timeout -------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_late_sync_call_runs_to_its_end_then_its_result_is_discarded():
    clock = Clock()
    p = policy(clock=clock, sleep=lambda s: None, timeouts=seawall.Timeouts(attempt=1, total=10))
    done: list[int] = []

    @seawall.protect(policy=p, idempotent=True)
    def slow_then_fast() -> str:
        clock.now += 2.0 if not done else 0.5  # the first attempt takes 2 s
        done.append(1)
        return f"attempt {len(done)}"

    assert slow_then_fast() == "attempt 2"  # the first one's result was discarded
    assert len(done) == 2

    @seawall.protect(policy=p)  # not idempotent: the timeout is raised, after the call returned
    def late() -> str:
        clock.now += 2.0
        done.append(1)
        return "too late"

    with pytest.raises(seawall.AttemptTimedOut, match="longer than its attempt timeout of 1.000"):
        late()
    assert len(done) == 3


def test_a_late_async_call_is_cancelled_at_its_timeout():
    p = policy(timeouts=seawall.Timeouts(attempt=0.05, total=5))
    cancelled = []

    @seawall.protect(policy=p)
    async def hangs() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    started = time.monotonic()
    with pytest.raises(seawall.AttemptTimedOut, match="cancelled"):
        asyncio.run(hangs())
    assert time.monotonic() - started < 1 and cancelled == [True]


def test_in_a_thread_the_caller_stops_waiting_and_the_thread_finishes(upstream):
    p = policy(timeouts=seawall.Timeouts(attempt=0.05, total=5))
    finished_in_thread = threading.Event()

    @seawall.protect(policy=p, in_thread=True)
    def blocking() -> str:
        time.sleep(0.3)
        finished_in_thread.set()
        return "dropped"

    started = time.monotonic()
    with pytest.raises(seawall.AttemptTimedOut, match="no longer awaited"):
        asyncio.run(blocking())
    assert time.monotonic() - started < 0.25
    assert not finished_in_thread.is_set()
    assert finished_in_thread.wait(timeout=5)  # the thread ran it to its end


# -- the thread pool -----------------------------------------------------------------------------
def test_the_thread_pool_caps_a_blocking_dependency_while_the_loop_runs_on(upstream):
    upstream.script("/slow", then=respond(200, delay=0.2))
    p = policy(bulkhead=seawall.Bulkhead(max_concurrent=3, max_queued=20, queue_timeout=5))
    threads: set[str] = set()

    @seawall.protect(policy=p, in_thread=True)
    def blocking_get() -> int:
        threads.add(threading.current_thread().name)
        return get(upstream.port, "/slow")

    async def main() -> tuple[list[Any], int, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.ensure_future(ticker())
        calls = asyncio.gather(*(blocking_get() for _ in range(9)), return_exceptions=True)
        await asyncio.sleep(0.05)
        # the loop's default executor is free while the dependency's pool is full
        before = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, lambda: None)
        default_wait = time.monotonic() - before
        results = await calls
        tick.cancel()
        return results, ticks, default_wait

    results, ticks, default_wait = asyncio.run(main())
    assert results == [200] * 9
    assert upstream.max_in_flight == 3  # never more than the bulkhead, in three rounds
    assert len(threads) == 3 and all(name.startswith("seawall-store") for name in threads)
    assert ticks >= 20  # ~0.6 s of 10 ms ticks: the loop was never blocked
    assert default_wait < 0.1


# -- where the policy comes from -----------------------------------------------------------------
def test_the_dependency_comes_from_the_installed_configuration(upstream):
    instrumentor = seawall.instrument(
        config={
            "dependencies": {
                "orders-db": {
                    "retry": {"max_attempts": 2, "backoff": {"kind": "constant", "base": 0}},
                    "breaker": None,
                },
            }
        }
    )
    try:
        upstream.script("/c", reset(), reset(), respond(200))

        @seawall.protect("orders-db", idempotent=True, unsent_on=())
        def call() -> int:
            return get(upstream.port, "/c")

        with pytest.raises(ConnectionResetError):
            call()  # two attempts, as the file says
        assert upstream.hits("/c") == 2
        router = instrumentor.router
        named = router.calls["orders-db"]
        assert "orders-db: protected calls only (no match)" in router.describe()
        assert [s.name for s in named.dependencies()] == ["orders-db"]
    finally:
        instrumentor.uninstrument()


def test_a_live_policy_of_that_name_then_the_defaults():
    own = seawall.Policy("payments-ledger", retry=None, telemetry=False)
    calls = []

    @seawall.protect("payments-ledger")
    def pay() -> str:
        calls.append(1)
        return "paid"

    assert pay() == "paid"
    assert [s.name for s in own.dependencies()] == ["payments-ledger"]

    @seawall.protect("nobody-named-this")
    def other() -> str:
        return "done"

    assert other() == "done"
    from seawall.protect import resolve

    default = resolve("nobody-named-this")
    assert default.name is None  # the defaults' policy, under the dependency's name
    assert "nobody-named-this" in [s.name for s in default.dependencies()]


# -- telemetry -----------------------------------------------------------------------------------
def test_spans_and_metrics_of_a_protected_call(kind, otel, upstream):  # noqa: F811
    upstream.script("/t", reset(), respond(200))
    p = otel.policy(
        breaker=seawall.CircuitBreaker(window=10, window_type="count", min_calls=10),
    )
    lookup = protected(kind, p, upstream.port, "/t", idempotent=True)
    assert lookup() == 200
    (logical,) = otel.finished(SpanKind.INTERNAL)[-1:]
    internal = otel.finished(SpanKind.INTERNAL)
    attempts = sorted(
        (s for s in internal if s is not logical and s.parent is not None),
        key=lambda s: s.start_time,
    )
    assert logical.name == "seawall upstream"
    assert logical.attributes["seawall.outcome"] == "success"
    assert logical.attributes["seawall.attempts"] == 2
    assert logical.attributes["code.function.name"].startswith("tests.calls.")
    assert "http.request.method" not in logical.attributes
    assert len(attempts) == 2 and not otel.finished(SpanKind.CLIENT)
    for number, span in enumerate(attempts, 1):
        assert span.parent.span_id == logical.context.span_id
        assert span.attributes["seawall.attempt"] == number
        assert span.attributes["seawall.dependency"] == "upstream"
    assert attempts[0].attributes["error.type"] in (
        "http.client.RemoteDisconnected",  # http.client: a ConnectionResetError
        "ConnectionResetError",  # asyncio streams
    )
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert "error.type" not in attempts[1].attributes

    (point,) = otel.metric("seawall.request.duration")
    assert point[0] == {"seawall.dependency": "upstream", "seawall.outcome": "success"}
    assert point[1].count == 1
    assert otel.total("seawall.retry.attempts", seawall_dependency="upstream") == 1
    assert otel.total("seawall.circuit_breaker.calls", seawall_breaker_result="failure") == 1
    assert otel.total("seawall.circuit_breaker.calls", seawall_breaker_result="success") == 1
    assert otel.metric("http.client.request.duration") == []  # not an HTTP attempt
    assert [a for a, _ in otel.metric("seawall.bulkhead.limit")] == [
        {"seawall.dependency": "upstream"}
    ]


def test_a_protected_call_nests_the_http_requests_it_makes(otel, upstream):  # noqa: F811
    import httpx

    p = otel.policy()
    client = httpx.Client(transport=seawall.httpx.ResilientTransport(p))

    @seawall.protect("inventory", policy=seawall.Policy(telemetry=otel.telemetry))
    def check() -> int:
        return client.get(upstream.url + "/n").status_code

    with client:
        assert check() == 200
    spans = otel.spans.get_finished_spans()
    by_name = {s.name: s for s in spans}
    call, http_request, http_attempt = (
        by_name["seawall inventory"],
        by_name["seawall upstream"],
        by_name["GET"],
    )
    call_attempt = next(s for s in spans if s.attributes.get("seawall.attempt") == 1)
    assert call_attempt.parent.span_id == call.context.span_id
    assert http_request.parent.span_id == call_attempt.context.span_id
    assert http_attempt.parent.span_id == http_request.context.span_id


def test_a_protected_call_keeps_its_logical_span_with_spans_attempts(otel, upstream):  # noqa: F811
    from seawall.telemetry.otel import Telemetry

    telemetry = Telemetry(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, spans="attempts"
    )
    p = seawall.Policy("store", retry=None, breaker=None, telemetry=telemetry)

    @seawall.protect(policy=p)
    def once() -> int:
        return get(upstream.port, "/a")

    assert once() == 200
    spans = otel.finished(SpanKind.INTERNAL)
    (logical,) = [s for s in spans if s.name == "seawall store"]
    (attempt,) = [s for s in spans if s is not logical]
    assert attempt.parent.span_id == logical.context.span_id
    assert logical.attributes["seawall.outcome"] == "success"
