"""`seawall.retrying`: the block form (issue 14, item 2), sync (`for` / `with`) and async
(`async for` with `with`, or with `async with`, which cuts a late block), each attempt a real
call to the fault-injecting upstream through the standard library."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

import seawall
from integrations.upstream import reset, respond
from tests.calls import FAST, Unavailable, aget, finished, get, idle, policy
from tests.test_telemetry import otel  # noqa: F401 (the fixture)

MODES = ["sync", "async", "async_with"]


def block(mode: str, p: seawall.Policy, port: int, path: str, **options: Any) -> Any:
    """Run one loop whose attempts get `path`: its status, and the attempt numbers seen."""
    numbers: list[int] = []
    if mode == "sync":
        for attempt in seawall.retrying(policy=p, **options):
            with attempt:
                numbers.append(attempt.number)
                status = get(port, path)
        return status, numbers

    async def main() -> Any:
        async for attempt in seawall.retrying(policy=p, **options):
            if mode == "async":
                with attempt:
                    numbers.append(attempt.number)
                    status = await aget(port, path)
            else:
                async with attempt:
                    numbers.append(attempt.number)
                    status = await aget(port, path)
        return status, numbers

    return asyncio.run(main())


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_transient_error_is_retried_when_declared_idempotent(mode, upstream):
    upstream.script("/t", reset(), reset(), respond(200))
    p = policy()
    ends = finished(p)
    assert block(mode, p, upstream.port, "/t", idempotent=True) == (200, [1, 2, 3])
    assert [(e.outcome, e.attempts) for e in ends] == [("success", 3)]
    idle(p)


def test_a_block_not_declared_idempotent_is_not_retried(mode, upstream):
    upstream.script("/t", reset(), respond(200))
    p = policy()
    with pytest.raises(ConnectionResetError):
        block(mode, p, upstream.port, "/t")
    assert upstream.hits("/t") == 1
    idle(p)


def test_the_breaker_opens_and_the_loop_fails_fast(mode, upstream):
    upstream.script("/t", then=respond(503))
    breaker = seawall.CircuitBreaker(window=10, window_type="count", min_calls=3, open_for=60)
    p = policy(breaker=breaker)
    for _ in range(3):
        with pytest.raises(Unavailable):
            block(mode, p, upstream.port, "/t", failure_on=Unavailable)
    with pytest.raises(seawall.CircuitOpenError):
        block(mode, p, upstream.port, "/t", failure_on=Unavailable)
    assert upstream.hits("/t") == 3  # the last block never ran
    idle(p)


def test_the_bulkhead_caps_loops_and_queues(mode, upstream):
    upstream.script("/slow", then=respond(200, delay=0.15))
    p = policy(bulkhead=seawall.Bulkhead(max_concurrent=2, max_queued=2, queue_timeout=5))
    results: list[Any] = []
    if mode == "sync":
        start = threading.Barrier(6)

        def one() -> None:
            start.wait(timeout=5)
            try:
                results.append(block(mode, p, upstream.port, "/slow")[0])
            except Exception as error:
                results.append(error)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    else:

        async def one() -> Any:
            async for attempt in seawall.retrying(policy=p):
                async with attempt:
                    return await aget(upstream.port, "/slow")

        async def main() -> list[Any]:
            return await asyncio.gather(*(one() for _ in range(6)), return_exceptions=True)

        results = asyncio.run(main())
    rejected = [r for r in results if isinstance(r, seawall.BulkheadFullError)]
    assert results.count(200) == 4 and len(rejected) == 2
    assert upstream.max_in_flight == 2
    idle(p)


def test_the_total_deadline_bounds_the_loop(mode, upstream):
    upstream.script("/t", reset(), then=respond(200, delay=0.4))
    p = policy(timeouts=seawall.Timeouts(attempt=None, total=0.2))
    ends = finished(p)
    started = time.monotonic()
    with pytest.raises(seawall.DeadlineExceeded) as info:
        block(mode, p, upstream.port, "/t", idempotent=True)
    took = time.monotonic() - started
    assert isinstance(info.value.__cause__, seawall.AttemptTimedOut)
    assert [e.outcome for e in ends] == ["rejected"]
    if mode == "async_with":
        assert took < 0.35  # cut when its time ran out
    else:
        assert took >= 0.4  # a plain `with` block cannot be cut: it ran to its end


def test_a_late_sync_block_is_discarded_on_the_fake_clock():
    now = [0.0]
    p = policy(clock=lambda: now[0], sleep=lambda s: None, timeouts=seawall.Timeouts(attempt=1))
    ran = []
    for attempt in seawall.retrying(policy=p, idempotent=True):
        with attempt:
            ran.append(attempt.number)
            now[0] += 2.0 if attempt.number == 1 else 0.1
    assert ran == [1, 2]  # the first one took 2 s of a 1 s timeout: it counts as timed out
    with pytest.raises(seawall.AttemptTimedOut, match="longer than its attempt timeout"):
        for attempt in seawall.retrying(policy=p):
            with attempt:
                now[0] += 2.0


def test_cancelling_a_task_in_its_block_releases_everything(upstream):
    upstream.script("/slow", then=respond(200, delay=1.0))
    p = policy()
    ends = finished(p)

    async def one() -> None:
        async for attempt in seawall.retrying(policy=p, idempotent=True):
            async with attempt:
                await aget(upstream.port, "/slow")

    async def main() -> None:
        task = asyncio.ensure_future(one())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert [e.outcome for e in ends] == ["cancelled"]
    idle(p)


def test_leaving_the_loop_early_releases_everything(upstream):
    p = policy()
    ends = finished(p)
    for attempt in seawall.retrying(policy=p):
        assert attempt.number == 1
        break  # before the `with`: the request is abandoned when the loop's iterator goes
    gc.collect()
    assert [e.outcome for e in ends] == ["cancelled"]
    idle(p)

    with pytest.raises(KeyError):
        for _attempt in seawall.retrying(policy=p):
            raise KeyError("outside the with block")
    gc.collect()
    assert [e.outcome for e in ends] == ["cancelled", "cancelled"]
    idle(p)


def test_one_terminal_event_per_loop_whatever_the_end(mode, upstream):
    upstream.script("/t", reset(), respond(200), respond(503), reset(), then=respond(404))
    p = policy(retry=seawall.Retry(max_attempts=2, backoff=FAST))
    ends = finished(p)
    outcomes = []
    for _ in range(4):
        try:
            outcomes.append(block(mode, p, upstream.port, "/t", idempotent=True)[0])
        except Exception as error:
            outcomes.append(type(error).__name__)
    # reset then 200; 503 (the caller's error by default); reset then 404
    assert outcomes == [200, "Unavailable", 404, 404]
    assert [(e.outcome, e.attempts) for e in ends] == [
        ("success", 2),
        ("failure", 1),
        ("success", 2),
        ("success", 1),
    ]
    idle(p)


def test_an_attempt_must_be_entered_before_the_loop_goes_round():
    p = policy()
    with pytest.raises(RuntimeError, match="must be used as `with attempt:`"):
        for _ in seawall.retrying(policy=p):
            pass
    gc.collect()
    idle(p)


def test_spans_of_a_block(otel, upstream):  # noqa: F811
    upstream.script("/t", reset(), respond(200))
    p = otel.policy()
    for attempt in seawall.retrying(policy=p, idempotent=True, name="load profile"):
        with attempt:
            get(upstream.port, "/t")
    internal = otel.finished(SpanKind.INTERNAL)
    (logical,) = [s for s in internal if s.name == "seawall upstream"]
    attempts = [s for s in internal if s.name == "load profile"]
    assert logical.attributes["seawall.attempts"] == 2
    assert logical.attributes["code.function.name"] == "load profile"
    assert [s.attributes["seawall.attempt"] for s in attempts] == [1, 2]
    assert all(s.parent.span_id == logical.context.span_id for s in attempts)
    assert otel.total("seawall.retry.attempts", seawall_dependency="upstream") == 1
