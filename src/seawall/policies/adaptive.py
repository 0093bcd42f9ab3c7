"""Two opt-in ways for a breaker to follow the error rate instead of one fixed threshold.

`AdaptiveThreshold` (experimental) moves the failure-rate threshold: down (more sensitive) while
the error rate of the last `window` seconds is above a target, up while it is below half of it.
A bang-bang controller like this oscillates and ratchets unless it is held in (see
docs/simulate.md), so it moves one bounded step at most every `interval` seconds, only on
enough volume, never outside its bounds, and not at all while the breaker is not closed.

`Throttle` is client-side throttling (Google SRE book, "Handling Overload"): instead of opening
hard, the breaker rejects each call with probability max(0, (requests - k * accepts) /
(requests + 1)) over the last `window` seconds, so a dependency that accepts a quarter of the
calls gets about half of them instead of all or none.

Both are sans-I/O: every call takes `now`; the throttle draws from an injectable `random`.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from . import _validate
from .windows import TimeWindow


@dataclass(frozen=True, slots=True)
class AdaptiveThreshold:
    """EXPERIMENTAL: adjust the breaker's `failure_rate` to the error rate seen.

    Every `interval` seconds (at the first outcome after it), if the last `window` seconds saw
    at least `min_calls` calls: an error rate above `target_error_rate` multiplies the
    threshold by `step_down`, one below half the target by `step_up`, always within
    [`min_rate`, `max_rate`]. The breaker's own `failure_rate` is the starting point (clamped to
    the bounds). While the breaker is open or half-open nothing moves, and after it closes
    again the window starts empty, so the outage that opened it does not also ratchet the
    threshold down.
    """

    target_error_rate: float = 0.05
    window: float = 60.0
    interval: float = 30.0
    min_calls: int = 100
    min_rate: float = 0.1
    max_rate: float = 0.9
    step_down: float = 0.8
    step_up: float = 1.25

    #: What each argument must be (checked, types first, when it is built).
    RULES: ClassVar[_validate.Rules] = {
        "target_error_rate": _validate.ratio(),
        "window": _validate.seconds(above_zero=True),
        "interval": _validate.seconds(above_zero=True),
        "min_calls": _validate.Count(),
        "min_rate": _validate.ratio(),
        "max_rate": _validate.ratio(),
        "step_down": _validate.Number(0, above=True, high=1, what="a factor"),
        "step_up": _validate.Number(1, what="a factor"),
    }

    def __post_init__(self) -> None:
        _validate.fields(self, self.RULES)
        if self.min_rate > self.max_rate:
            raise ValueError(
                f"AdaptiveThreshold: min_rate ({self.min_rate!r}) must be <= "
                f"max_rate ({self.max_rate!r})"
            )


class ThresholdAdjuster:
    """The live threshold of one breaker under an `AdaptiveThreshold` (not thread-safe: the
    breaker calls it under its own lock)."""

    __slots__ = ("_held", "_next", "_window", "changes", "config", "rate")
    _CALLS, _FAILURES = 0, 1

    def __init__(self, config: AdaptiveThreshold, initial: float) -> None:
        self.config = config
        self.rate = min(config.max_rate, max(config.min_rate, initial))
        self._window = TimeWindow(config.window, fields=2)
        self._next: float | None = None  # when the next adjustment may happen
        self._held = False
        self.changes = 0  # adjustments made, for status and the simulator

    def observe(self, now: float, failed: bool) -> float:
        """Count one outcome seen while the breaker is closed; the threshold to apply to it."""
        window = self._window
        if self._held:  # the first outcome after the breaker closed again: start afresh
            self._held = False
            window.clear()
            self._next = None
        if self._next is None:
            self._next = now + self.config.interval
        window.add(now, self._CALLS)
        if failed:
            window.add(now, self._FAILURES)
        if now >= self._next:
            self._next = now + self.config.interval
            self._adjust(now)
        return self.rate

    def hold(self) -> None:
        """The breaker left the closed state: freeze until it is closed again."""
        self._held = True

    def error_rate(self, now: float) -> float | None:
        """The error rate over the window, or None below the volume minimum."""
        self._window.advance(now)
        calls, failures = self._window.totals
        return failures / calls if calls >= self.config.min_calls else None

    def _adjust(self, now: float) -> None:
        config = self.config
        seen = self.error_rate(now)
        if seen is None:
            return
        if seen > config.target_error_rate:
            rate = max(config.min_rate, self.rate * config.step_down)
        elif seen < config.target_error_rate / 2:
            rate = min(config.max_rate, self.rate * config.step_up)
        else:
            return
        if rate != self.rate:
            self.rate = rate
            self.changes += 1


@dataclass(frozen=True, slots=True)
class Throttle:
    """Client-side throttling in place of the breaker's hard open (Google SRE book).

    Each call is rejected with probability max(0, (requests - k * accepts) / (requests + 1)),
    capped at `max_rejection`, where `requests` counts the calls asked for over the last
    `window` seconds (the rejected ones too) and `accepts` those the dependency did not fail.
    Nothing is rejected until the dependency fails more than 1 - 1/k of the calls (half, with
    k = 2). A throttled breaker does not open on its failure or slow-call rate;
    `consecutive_failures`, when set, still opens it. `random() -> [0, 1)` decides each draw
    (injectable for tests and the simulator).
    """

    k: float = 2.0
    window: float = 30.0
    max_rejection: float = 1.0
    random: Callable[[], float] = field(default=_random.random, compare=False)

    RULES: ClassVar[_validate.Rules] = {
        "k": _validate.Number(1, what="a factor"),
        "window": _validate.seconds(above_zero=True),
        "max_rejection": _validate.ratio(),
        "random": _validate.Function("a callable() -> float in [0, 1)"),
    }

    def __post_init__(self) -> None:
        _validate.fields(self, self.RULES)


class ThrottleState:
    """The live counts of one throttled breaker (the breaker calls it under its lock)."""

    __slots__ = ("_window", "config", "rejected")
    _REQUESTS, _ACCEPTS = 0, 1

    def __init__(self, config: Throttle) -> None:
        self.config = config
        self._window = TimeWindow(config.window, fields=2)
        self.rejected = 0  # calls turned away since the start

    def probability(self, now: float) -> float:
        """The chance that a call asked for now is rejected."""
        self._window.advance(now)
        requests, accepts = self._window.totals
        p = (requests - self.config.k * accepts) / (requests + 1)
        return min(self.config.max_rejection, max(0.0, p))

    def admit(self, now: float) -> bool:
        """Count one call asked for; whether it may go."""
        p = self.probability(now)
        self._window.add(now, self._REQUESTS)
        if p > 0 and self.config.random() < p:
            self.rejected += 1
            return False
        return True

    def outcome(self, now: float, failed: bool) -> None:
        """An admitted call ended; one the dependency did not fail is an accept."""
        if not failed:
            self._window.add(now, self._ACCEPTS)
