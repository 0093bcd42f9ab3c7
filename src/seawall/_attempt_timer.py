"""Per-attempt timeouts on an asyncio loop, for clients that cannot be told one per attempt
(private: the async driver in `pipeline.py` is its one user).

`asyncio.timeout()` arms and cancels a timer in the loop's heap for every attempt, which costs
more than the rest of the pipeline together. Here the attempts of one loop whose deadlines come
in order (the usual case: the same timeout, later start) wait in one insertion-ordered dict,
keyed by task, behind a single loop timer that fires at the earliest deadline; an attempt that
ends just leaves the dict. The loop timer fires about once per timeout period under steady
traffic. An attempt whose deadline is earlier than the last one queued (a timeout clipped by the
total deadline) gets a loop timer of its own.

    timers = _attempt_timer.timers(loop)  # the loop's queue (once per request is enough)
    key = timers.start(timeout)
    try:
        result = await attempt
    except asyncio.CancelledError as error:
        if timers.stop(key):
            raise MyTimeout() from error
        raise
    timers.stop(key)

The cancellation bookkeeping follows `asyncio.timeout()`: the timer cancels the task, and the
attempt counts as timed out only if nobody else cancelled it meanwhile (the task's cancellation
count at the start is kept for that). An attempt nested in another of the same task gets a
loop timer of its own.
"""

from __future__ import annotations

import asyncio
import math
import time
import types
import weakref
from collections.abc import Callable
from typing import Any

_current_task: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = (
    asyncio.current_task
)
_tasks_by_loop = getattr(asyncio.tasks, "_current_tasks", None)
if isinstance(_current_task, types.FunctionType) and isinstance(_tasks_by_loop, dict):
    _current_task = _tasks_by_loop.get  # Python 3.11's current_task() only reads this dict
Task = asyncio.Task[Any]


class _Nested:
    """The key of an attempt that starts while its task already has one being watched (an
    aiohttp middleware that makes a request of its own, say): it gets a loop timer of its own."""

    __slots__ = ("task",)

    def __init__(self, task: Task) -> None:
        self.task = task


Key = Task | _Nested


class Timers:
    """The attempts being watched on one loop. It holds no reference to the loop itself, so
    the per-loop registry below can drop it with the loop."""

    __slots__ = (
        "_loop",
        "_time",
        "_queued",
        "_last_at",
        "_own",
        "_fired",
        "_arm",
        "_armed_at",
        "__weakref__",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._loop: Callable[[], asyncio.AbstractEventLoop | None] = weakref.ref(loop)
        except TypeError:  # a loop that cannot be weakly referenced (then not shared either)
            self._loop = lambda: loop
        # the loop's clock; asyncio's own loops read time.monotonic(), without a Python frame
        self._time = time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time
        self._queued: dict[Key, tuple[float, int]] = {}  # in deadline order: (at, cancelling)
        self._last_at = -math.inf  # the latest deadline queued so far
        # out-of-order deadlines and nested attempts: key -> (loop timer, cancelling at start)
        self._own: dict[Key, tuple[asyncio.TimerHandle, int]] = {}
        self._fired: dict[Key, int] = {}  # cut, not yet stopped: key -> cancelling at start
        # the loop timer for the queue's front, held weakly: a handle keeps its loop alive
        self._arm: weakref.ref[asyncio.TimerHandle] | None = None
        self._armed_at = math.inf

    def start(self, timeout: float) -> Key:
        """Watch the current task's attempt: cancel it `timeout` seconds from now unless
        stopped. Returns the key for `stop` (the task itself, unless the attempt is nested)."""
        loop = self._loop()
        task = _current_task(loop) if loop is not None else None
        if task is None or loop is None:
            raise RuntimeError("seawall's attempt timer needs to run inside an asyncio task")
        at = self._time() + timeout
        queued, own = self._queued, self._own
        if task in queued or task in own:
            key: Key = _Nested(task)
        elif at < self._last_at and queued:
            key = task  # out of order: its own loop timer
        else:
            self._last_at = at
            queued[task] = (at, task.cancelling())
            if at < self._armed_at:  # the queue was empty, or its front is later
                self._arm_at(loop, at)
            return task
        own[key] = (loop.call_at(at, self._fire_own, key), task.cancelling())
        return key

    def stop(self, key: Key) -> bool:
        """The attempt is over: forget it. True when the timer cut it and no other cancellation
        is pending, so a CancelledError the attempt raised is the timer's (a timeout)."""
        if self._queued.pop(key, None) is not None:
            return False  # the common case: it ended in time
        cancelling = self._fired.pop(key, None)
        if cancelling is not None:
            return _task_of(key).uncancel() <= cancelling
        own = self._own.pop(key, None)
        if own is not None:
            own[0].cancel()
        return False

    def _cut(self, key: Key, cancelling: int) -> None:
        self._fired[key] = cancelling
        _task_of(key).cancel()

    def _arm_at(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        earlier = self._arm() if self._arm is not None else None
        if earlier is not None:
            earlier.cancel()
        self._arm = weakref.ref(loop.call_at(at, self._due))
        self._armed_at = at

    def _due(self) -> None:
        self._arm, self._armed_at = None, math.inf
        loop = self._loop()
        if loop is None:
            return
        now, queued = loop.time(), self._queued
        while queued:
            task = next(iter(queued))
            at, cancelling = queued[task]
            if at > now:
                self._arm_at(loop, at)
                return
            del queued[task]
            self._cut(task, cancelling)

    def _fire_own(self, key: Key) -> None:
        own = self._own.pop(key, None)
        if own is not None:
            self._cut(key, own[1])


def _task_of(key: Key) -> Task:
    return key.task if isinstance(key, _Nested) else key


_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Timers] = (
    weakref.WeakKeyDictionary()
)
_last: Timers | None = None  # the last loop's, looked up without the registry


def timers(loop: asyncio.AbstractEventLoop | None = None) -> Timers:
    """The attempt timers of `loop` (default: the running loop)."""
    global _last
    if loop is None:
        loop = asyncio.get_running_loop()
    last = _last
    if last is not None and last._loop() is loop:
        return last
    try:
        found = _registry.get(loop)
        if found is None:
            found = _registry[loop] = Timers(loop)
    except TypeError:  # a loop that cannot be weakly referenced: timers of its own each time
        return Timers(loop)
    _last = found
    return found


__all__ = ["Timers", "timers"]
