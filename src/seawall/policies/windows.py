"""Bounded sliding windows of counters: by time (fixed buckets) or by the last N calls.

Each window does its own arithmetic: callers `add`/`record` and read `counts`, and never touch
the slices. The breaker records call outcomes in a `TimedCallWindow` or a `CallWindow` (the
same `record`/`counts`); the retry budget counts requests and retries in a `TimeWindow`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple


class CallCounts(NamedTuple):
    """What a breaker's window holds (`Breaker.counts()`, `TimedCallWindow.counts`,
    `CallWindow.counts`): `calls` counted in the window, of which `failures` failed and `slow`
    took `slow_call_duration` or more (a call can be both)."""

    calls: int
    failures: int
    slow: int


class TimeWindow:
    """Counters over the last `span` seconds, kept in `buckets` slices.

    Memory is fixed whatever the traffic; a slice is dropped whole once it is older than the
    span, so the window's edge is accurate to one slice (span / buckets).
    """

    __slots__ = ("_width", "_n", "_head", "_slices", "totals", "_edge", "_current")

    def __init__(self, span: float, fields: int, buckets: int = 10) -> None:
        if not span > 0:
            raise ValueError(f"window span must be > 0 seconds, got {span!r}")
        self._width = span / buckets
        self._n = buckets
        self._head = -math.inf  # absolute number of the newest slice
        self._slices = [[0] * fields for _ in range(buckets)]
        self.totals = [0] * fields
        self._edge = -math.inf  # when the current slice ends: before it, nothing expires
        self._current = self._slices[0]

    def advance(self, now: float) -> list[int]:
        """Expire slices older than the span at `now`; returns the current slice."""
        if now < self._edge:  # the common case, a float compare instead of a division
            return self._current
        head = now // self._width
        if head > self._head:
            stale = self._head + 1 if self._head > head - self._n else head - self._n + 1
            totals = self.totals
            k = stale
            while k <= head:
                piece = self._slices[int(k % self._n)]
                for i, value in enumerate(piece):
                    if value:
                        totals[i] -= value
                        piece[i] = 0
                k += 1
            self._head = head
            self._edge = (head + 1) * self._width
            self._current = self._slices[int(head % self._n)]
        return self._current

    def add(self, now: float, field: int, amount: int = 1) -> None:
        (self._current if now < self._edge else self.advance(now))[field] += amount
        self.totals[field] += amount

    def counts(self, now: float) -> Sequence[int]:
        """Each field's total over the span at `now` (the live totals: read them, no more)."""
        if now >= self._edge:
            self.advance(now)
        return self.totals

    def clear(self) -> None:
        for piece in self._slices:
            piece[:] = [0] * len(piece)
        self.totals[:] = [0] * len(self.totals)


class TimedCallWindow(TimeWindow):
    """Outcome counts of the calls of the last `span` seconds: (calls, failures, slow calls)."""

    __slots__ = ()

    def __init__(self, span: float, buckets: int = 10) -> None:
        super().__init__(span, fields=3, buckets=buckets)

    def counts(self, now: float) -> CallCounts:
        """The calls of the last `span` seconds at `now`."""
        calls, failures, slow = super().counts(now)
        return CallCounts(calls, failures, slow)

    def peek(self) -> CallCounts:
        """The counts as of the last call recorded or read (no clock needed)."""
        calls, failures, slow = self.totals
        return CallCounts(calls, failures, slow)

    def record(self, now: float, failed: bool, slow: bool) -> Sequence[int]:
        """Count one call; the counts after it (as `counts`)."""
        piece = self._current if now < self._edge else self.advance(now)
        totals = self.totals
        piece[0] += 1
        totals[0] += 1
        if failed:
            piece[1] += 1
            totals[1] += 1
        if slow:
            piece[2] += 1
            totals[2] += 1
        return totals


class CallWindow:
    """Outcome counts of the last `size` calls (a ring), for count-based breakers."""

    __slots__ = ("_ring", "_next", "calls", "failures", "slow")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1 call, got {size!r}")
        self._ring = bytearray(size)  # bit 1: filled, bit 2: failure, bit 4: slow
        self._next = 0
        self.calls = self.failures = self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> Sequence[int]:
        """Count one call (`now` is not needed: the window is the last calls, whenever they
        came); the counts after it."""
        old = self._ring[self._next]
        if old:
            self.calls -= 1
            self.failures -= (old >> 1) & 1
            self.slow -= (old >> 2) & 1
        self._ring[self._next] = 1 | (failed << 1) | (slow << 2)
        self._next = (self._next + 1) % len(self._ring)
        self.calls += 1
        self.failures += failed
        self.slow += slow
        return self.calls, self.failures, self.slow

    def counts(self, now: float) -> CallCounts:
        """The last `size` calls (`now` is not needed)."""
        return self.peek()

    def peek(self) -> CallCounts:
        return CallCounts(self.calls, self.failures, self.slow)

    def clear(self) -> None:
        self._ring[:] = bytes(len(self._ring))
        self._next = 0
        self.calls = self.failures = self.slow = 0
