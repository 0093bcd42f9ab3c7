"""The shared asyncio attempt timer: cuts late attempts on time, leaves others alone, and keeps
the task's cancellation count as `asyncio.timeout()` would."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from seawall import _attempt_timer as attempt_timer


class Cut(Exception):
    pass


async def attempt(seconds: float, timeout: float) -> str:
    timers = attempt_timer.timers()
    key = timers.start(timeout)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError as error:
        if timers.stop(key):
            raise Cut(timeout) from error
        raise
    timers.stop(key)
    return "done"


def test_a_late_attempt_is_cut_and_a_quick_one_is_not():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(Cut):
            await attempt(1.0, 0.02)
        assert 0.015 <= loop.time() - started < 0.5
        assert await attempt(0.001, 1.0) == "done"
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    asyncio.run(main())


def test_attempts_sharing_the_queue_are_each_cut_at_their_own_deadline():
    async def main() -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def timed(seconds: float, timeout: float) -> tuple[float, str]:
            try:
                result = await attempt(seconds, timeout)
            except Cut:
                result = "cut"
            return round(loop.time() - started, 2), result

        # in order: 30, 60, 90 ms; then one out of order (10 ms) that needs a timer of its own
        jobs = [asyncio.create_task(timed(1.0, t)) for t in (0.03, 0.06, 0.09)]
        await asyncio.sleep(0)
        jobs.append(asyncio.create_task(timed(1.0, 0.01)))
        jobs.append(asyncio.create_task(timed(0.005, 0.5)))  # ends well before its deadline
        return list(await asyncio.gather(*jobs))

    results = asyncio.run(main())
    assert [r for _, r in results] == ["cut", "cut", "cut", "cut", "done"]
    times = [t for t, _ in results]
    for took, deadline in zip(times, (0.03, 0.06, 0.09, 0.01)):
        assert deadline - 0.005 <= took < deadline + 0.3, (took, deadline)
    assert times[3] < times[0] < times[1] < times[2]


def test_a_shorter_timeout_after_the_queue_drained_is_cut_on_time():
    async def main() -> float:
        loop = asyncio.get_running_loop()
        assert await attempt(0, 1.0) == "done"  # leaves the loop timer set for 1 s from now
        started = loop.time()
        with pytest.raises(Cut):
            await attempt(1.0, 0.02)
        return loop.time() - started

    assert asyncio.run(main()) < 0.5


def test_an_attempt_nested_in_another_of_the_same_task_keeps_both_deadlines():
    """An aiohttp middleware may make a request of its own inside seawall's attempt."""

    async def main() -> tuple[str, str, float]:
        loop = asyncio.get_running_loop()
        timers = attempt_timer.timers()
        started = loop.time()
        outer = timers.start(0.05)
        try:
            inner = await attempt(0.001, 1.0)  # ends in time, and must not unwatch the outer
            await asyncio.sleep(1.0)
        except asyncio.CancelledError:
            assert timers.stop(outer)
            return inner, "cut", loop.time() - started
        timers.stop(outer)
        return inner, "not cut", loop.time() - started

    inner, outer, took = asyncio.run(main())
    assert (inner, outer) == ("done", "cut")
    assert took < 0.5


def test_a_cancellation_from_outside_is_not_taken_for_a_timeout():
    async def main() -> None:
        task = asyncio.create_task(attempt(1.0, 0.5))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_outside_cancellation_during_a_cut_still_propagates():
    async def main() -> None:
        async def both() -> None:
            timers = attempt_timer.timers()
            key = timers.start(0.01)
            try:
                await asyncio.sleep(0.05)  # the timer cancels once...
            except asyncio.CancelledError:
                asyncio.current_task().cancel()  # type: ignore[union-attr]  ...and so does someone else
                assert not timers.stop(key)
                raise

        task = asyncio.create_task(both())
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_cancellation_swallowed_by_the_attempt_is_taken_back():
    async def main() -> None:
        timers = attempt_timer.timers()
        key = timers.start(0.01)
        try:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                pass  # a client that swallows the cancellation and returns anyway
        finally:
            timers.stop(key)
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        await asyncio.sleep(0)  # and the task is not cancelled later by surprise

    asyncio.run(main())


def test_a_slow_attempt_at_the_front_does_not_make_ended_ones_pile_up():
    async def main() -> int:
        slow = asyncio.create_task(attempt(0.2, 1.0))
        await asyncio.sleep(0)
        for _ in range(2000):
            await attempt(0, 1.0)
        size = len(attempt_timer.timers()._queued)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        return size

    assert asyncio.run(main()) <= 2


def test_the_loop_and_finished_tasks_are_not_kept_alive():
    async def main() -> weakref.ref[asyncio.Task[str]]:
        task = asyncio.create_task(attempt(0, 5.0))
        await task
        return weakref.ref(task)

    loop = asyncio.new_event_loop()
    task_ref = loop.run_until_complete(main())
    loop_ref = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert task_ref() is None
    assert loop_ref() is None


def test_it_needs_a_task():
    async def main() -> BaseException | None:
        loop = asyncio.get_running_loop()
        raised: asyncio.Future[BaseException | None] = loop.create_future()

        def callback() -> None:  # a plain loop callback: no task around it
            try:
                attempt_timer.timers().start(1.0)
            except RuntimeError as error:
                raised.set_result(error)
            else:
                raised.set_result(None)

        loop.call_soon(callback)
        return await raised

    error = asyncio.run(main())
    assert isinstance(error, RuntimeError) and "inside an asyncio task" in str(error)
