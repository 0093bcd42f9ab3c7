"""Per-attempt timeouts on an asyncio loop, for clients that cannot be told one per attempt.

`asyncio.timeout()` arms and cancels a timer in the loop's heap for every attempt, which costs
more than the rest of the pipeline together. Here the attempts of one loop whose deadlines come
in order (the usual case: the same timeout, later start) wait in one insertion-ordered dict,
keyed by task, behind a single loop timer that fires at the earliest deadline; an attempt that
ends just leaves the dict. The loop timer fires about once per timeout period under steady
traffic. An attempt whose deadline is earlier than the last one queued (a timeout clipped by the
total deadline) gets a loop timer of its own.

    timers = attempt_timer.timers(loop)  # the loop's queue (once per request is enough)
    task = timers.start(timeout)
    try:
        result = await attempt
    except asyncio.CancelledError as error:
        if timers.stop(task):
            raise MyTimeout() from error
        raise
    timers.stop(task)

The cancellation bookkeeping follows `asyncio.timeout()`: the timer cancels the task, and the
attempt counts as timed out only if nobody else cancelled it meanwhile (the task's cancellation
count at the start is kept for that). A task has one attempt at a time.
"""

from __future__ import annotations

import asyncio
import math
import time
import types
import weakref
from collections.abc import Callable
from typing import Any

_current_task: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = \
    asyncio.current_task
_tasks_by_loop = getattr(asyncio.tasks, "_current_tasks", None)
if isinstance(_current_task, types.FunctionType) and isinstance(_tasks_by_loop, dict):
    _current_task = _tasks_by_loop.get  # Python 3.11's current_task() only reads this dict
Task = asyncio.Task[Any]


class Timers:
    """The attempts being watched on one loop. It holds no reference to the loop itself, so
    the per-loop registry below can drop it with the loop."""

    __slots__ = ("_loop", "_time", "_queued", "_last_at", "_own", "_fired", "_arm", "_armed_at",
                 "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._loop: Callable[[], asyncio.AbstractEventLoop | None] = weakref.ref(loop)
        except TypeError:  # a loop that cannot be weakly referenced (then not shared either)
            self._loop = lambda: loop
        # the loop's clock; asyncio's own loops read time.monotonic(), without a Python frame
        self._time = time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time
        self._queued: dict[Task, tuple[float, int]] = {}  # in deadline order: (at, cancelling)
        self._last_at = -math.inf  # the latest deadline queued so far
        self._own: dict[Task, tuple[asyncio.TimerHandle, int]] = {}  # out-of-order deadlines
        self._fired: dict[Task, int] = {}  # cut, not yet stopped: task -> cancelling at start
        # the loop timer for the queue's front, held weakly: a handle keeps its loop alive
        self._arm: weakref.ref[asyncio.TimerHandle] | None = None
        self._armed_at = math.inf

    def start(self, timeout: float) -> Task:
        """Watch the current task's attempt: cancel it `timeout` seconds from now unless
        stopped. Returns the task, the key for `stop`."""
        loop = self._loop()
        task = _current_task(loop) if loop is not None else None
        if task is None or loop is None:
            raise RuntimeError("seawall's attempt timer needs to run inside an asyncio task")
        at = self._time() + timeout
        if at < self._last_at and self._queued:
            self._own[task] = (loop.call_at(at, self._fire_own, task), task.cancelling())
            return task
        self._last_at = at
        self._queued[task] = (at, task.cancelling())
        if at < self._armed_at:  # the queue was empty, or its front is later (longer timeouts)
            self._arm_at(loop, at)
        return task

    def stop(self, task: Task) -> bool:
        """The attempt is over: forget it. True when the timer cut it and no other cancellation
        is pending, so a CancelledError the attempt raised is the timer's (a timeout)."""
        if self._queued.pop(task, None) is not None:
            return False  # the common case: it ended in time
        cancelling = self._fired.pop(task, None)
        if cancelling is not None:
            return task.uncancel() <= cancelling
        own = self._own.pop(task, None)
        if own is not None:
            own[0].cancel()
        return False

    def _cut(self, task: Task, cancelling: int) -> None:
        self._fired[task] = cancelling
        task.cancel()

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

    def _fire_own(self, task: Task) -> None:
        own = self._own.pop(task, None)
        if own is not None:
            self._cut(task, own[1])


_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Timers] = \
    weakref.WeakKeyDictionary()
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
