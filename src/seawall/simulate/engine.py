"""A discrete-event loop on virtual time: callbacks in a heap, nothing ever sleeps."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any


class Timer:
    """A scheduled callback; `cancel()` keeps it from running."""

    __slots__ = ("args", "callback", "when")

    def __init__(
        self, when: float, callback: Callable[..., None] | None, args: tuple[Any, ...]
    ) -> None:
        self.when = when
        self.callback = callback
        self.args = args

    def cancel(self) -> None:
        self.callback = None


class Loop:
    """Virtual time: `time()` is the clock the simulated policies read; `at`/`after` schedule,
    `run(until)` plays the events in time order (ties in the order they were scheduled)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(max(when, self.now), callback, args)
        heapq.heappush(self._heap, (timer.when, next(self._order), timer))
        return timer

    def after(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        return self.at(self.now + delay, callback, *args)

    def run(self, until: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= until:
            when, _, timer = heapq.heappop(heap)
            callback = timer.callback
            if callback is None:
                continue
            timer.callback = None
            self.now = when
            callback(*timer.args)
        self.now = until
