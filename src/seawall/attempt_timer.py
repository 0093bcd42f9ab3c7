"""Per-attempt timeouts on an asyncio loop, for clients that cannot be told one per attempt.

`asyncio.timeout()` arms and cancels a timer in the loop's heap for every attempt, which costs
more than the rest of the pipeline together. Here the attempts of one loop whose deadlines come
in order (the usual case: the same timeout, later start) wait in one FIFO behind a single timer
that fires at the earliest deadline; an attempt that ends just marks its entry done. The timer
fires about once per timeout period under steady traffic. An attempt whose deadline is earlier
than the queue's last (a timeout clipped by the total deadline) gets its own timer.

    timer = attempt_timer.start(timeout)
    try:
        result = await attempt
    except asyncio.CancelledError as error:
        if timer.stop():
            raise MyTimeout() from error
        raise
    timer.stop()

The cancellation bookkeeping follows `asyncio.timeout()`: the timer cancels the task, and the
attempt counts as timed out only if nobody else cancelled it meanwhile.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque

_LIVE, _DONE, _FIRED, _SETTLED = 0, 1, 2, 3
_current_task = asyncio.current_task


class Timer:
    """One attempt's watch."""

    __slots__ = ("at", "task", "state", "cancelling", "queue", "handle")

    def __init__(self, at: float, task: asyncio.Task[object], queue: _Queue) -> None:
        self.at = at
        self.task: asyncio.Task[object] | None = task
        self.state = _LIVE
        self.cancelling = task.cancelling()  # cancellations pending before ours
        self.queue = queue
        self.handle: asyncio.TimerHandle | None = None  # only when not in the FIFO

    def fire(self) -> None:
        if self.state == _LIVE:
            self.state = _FIRED
            self.queue.live -= 1
            assert self.task is not None
            self.task.cancel()

    def stop(self) -> bool:
        """The attempt is over: forget it. True when this timer fired and no other cancellation
        is pending, so a CancelledError the attempt raised is the timer's (a timeout)."""
        state, task = self.state, self.task
        self.task = None  # a finished request's task is not kept alive by the queue
        if state == _LIVE:
            self.state = _DONE
            self.queue.live -= 1
            if self.handle is not None:
                self.handle.cancel()
            return False
        if state == _FIRED:
            self.state = _SETTLED
            assert task is not None
            return task.uncancel() <= self.cancelling
        return False


class _Queue:
    """The FIFO of one loop's attempts and its single timer. It holds no reference to the
    loop itself, so the per-loop registry below can drop it with the loop."""

    __slots__ = ("entries", "armed", "live", "__weakref__")

    def __init__(self) -> None:
        self.entries: deque[Timer] = deque()
        self.armed = False
        self.live = 0

    def start(self, loop: asyncio.AbstractEventLoop, timeout: float) -> Timer:
        task = _current_task(loop)
        if task is None:
            raise RuntimeError("seawall's attempt timer needs to run inside an asyncio task")
        at = loop.time() + timeout
        timer = Timer(at, task, self)
        self.live += 1
        entries = self.entries
        while entries and entries[0].state != _LIVE:
            entries.popleft()
        if entries and at < entries[-1].at:
            timer.handle = loop.call_at(at, timer.fire)
            return timer
        if len(entries) > 64 and len(entries) > 2 * self.live:
            # a slow attempt at the front holds ended ones behind it: keep memory bounded
            self.entries = entries = deque(t for t in entries if t.state == _LIVE)
        entries.append(timer)
        if not self.armed:
            self.armed = True
            loop.call_at(at, self._due, loop)
        return timer

    def _due(self, loop: asyncio.AbstractEventLoop) -> None:
        self.armed = False
        entries, now = self.entries, loop.time()
        while entries:
            first = entries[0]
            if first.state == _LIVE and first.at > now:
                self.armed = True
                loop.call_at(first.at, self._due, loop)
                return
            entries.popleft()
            first.fire()


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], _Queue] | None = None


def start(timeout: float, loop: asyncio.AbstractEventLoop | None = None) -> Timer:
    """Watch the current task's attempt: cancel it `timeout` seconds from now unless stopped.
    `loop` is the running loop, when the caller knows it (looking it up costs a little)."""
    global _last
    if loop is None:
        loop = asyncio.get_running_loop()
    last = _last
    if last is not None and last[0]() is loop:
        return last[1].start(loop, timeout)
    try:
        queue = _queues.get(loop)
        if queue is None:
            queue = _queues[loop] = _Queue()
        _last = (weakref.ref(loop), queue)
    except TypeError:  # a loop that cannot be weakly referenced: a timer of its own each time
        queue = _Queue()
    return queue.start(loop, timeout)


__all__ = ["Timer", "start"]
