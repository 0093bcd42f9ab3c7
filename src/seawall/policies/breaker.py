"""Circuit breaker: stop calling a dependency that is failing, then probe it before trusting it.

`CircuitBreaker` is the configuration (an immutable value); `Breaker` is the live state of one
breaker key. The pipeline asks `acquire(now)` before an attempt and reports the outcome with
`record(...)`, or `release(...)` when the attempt ended without one (cancelled, or an error
the upstream cannot be blamed for), so a half-open probe is never lost.

Manual control (`reset`, `isolate`, `disable`) wins over every automatic transition until it
is lifted: an isolated breaker rejects every call and never probes (Polly's Isolated,
resilience4j's FORCED_OPEN); a disabled one lets every call through and keeps counting, but
never opens (resilience4j's DISABLED / METRICS_ONLY); `reset` closes it and clears its window.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

from . import _validate
from .adaptive import AdaptiveThreshold, ThresholdAdjuster, Throttle, ThrottleState
from .classify import FAILURE_STATUSES
from .windows import CallCounts, CallWindow, TimedCallWindow


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    ISOLATED = "isolated"  # held open by hand until reset
    DISABLED = "disabled"  # every call let through (still counted) until reset


#: The states only a person sets (and only `reset` lifts).
MANUAL_STATES = frozenset({State.ISOLATED, State.DISABLED})


@dataclass(frozen=True, slots=True)
class ManualAction:
    """The last manual action on a breaker: what, why, who asked, when (the policy clock)."""

    action: str  # "reset" | "isolate" | "disable"
    reason: str
    by: str
    at: float
    scope: str = "process"  # "fleet": asked of every process of a seawall.Fleet (docs/fleet.md)


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """When to open (stop calling), for how long, and how to close again.

    Opens when, over the window (the last `window` seconds, or the last `window` calls with
    `window_type="count"`), at least `min_calls` calls were seen and the failure rate reached
    `failure_rate` or the slow-call rate reached `slow_call_rate` (a call is slow when it took
    `slow_call_duration` seconds or more); or, with `consecutive_failures=N`, after N failures
    in a row. Stays open `open_for` seconds, then lets `half_open_calls` probes through at a
    time; `success_threshold` successful probes close it, one failed probe opens it again.

    By default one breaker serves a whole dependency; `key(target) -> str` splits it (e.g. per
    endpoint). At most `max_keys` keys are kept per dependency (least recently used dropped).

    Opt-in, one or the other: `adaptive=AdaptiveThreshold(...)` (experimental) moves
    `failure_rate` with the error rate seen; `throttle=Throttle(...)` rejects a share of the
    calls (client-side throttling) instead of opening on the rates (see `policies.adaptive`).
    """

    failure_rate: float = 0.5
    window: float = 30.0
    window_type: Literal["time", "count"] = "time"
    min_calls: int = 20
    consecutive_failures: int | None = None
    slow_call_duration: float | None = None
    slow_call_rate: float = 1.0
    open_for: float = 5.0
    half_open_calls: int = 1
    success_threshold: int = 1
    failure_statuses: frozenset[int] = FAILURE_STATUSES
    key: Callable[[Any], str] | None = None
    max_keys: int = 1024
    adaptive: AdaptiveThreshold | None = None
    throttle: Throttle | None = None

    #: What each argument must be (checked, types first, when the breaker is built).
    RULES: ClassVar[_validate.Rules] = {
        "failure_rate": _validate.ratio(),
        "window": _validate.Number(0, above=True, what="a number of seconds (or of calls)"),
        "window_type": _validate.Choice("time", "count"),
        "min_calls": _validate.Count(),
        "consecutive_failures": _validate.Count(optional=True),
        "slow_call_duration": _validate.seconds(above_zero=True, optional=True),
        "slow_call_rate": _validate.ratio(),
        "open_for": _validate.seconds(above_zero=True),
        "half_open_calls": _validate.Count(),
        "success_threshold": _validate.Count(),
        "failure_statuses": _validate.STATUSES,
        "key": _validate.Function("a callable taking a Target", optional=True),
        "max_keys": _validate.Count(),
        "adaptive": _validate.Instance(
            AdaptiveThreshold, "a seawall.AdaptiveThreshold", optional=True
        ),
        "throttle": _validate.Instance(Throttle, "a seawall.Throttle", optional=True),
    }

    def __post_init__(self) -> None:
        _validate.fields(self, self.RULES)
        if self.window_type == "count":
            if self.window != int(self.window):
                raise ValueError(
                    f"CircuitBreaker: window must be a whole number of calls with "
                    f"window_type='count', got {self.window!r}"
                )
            # A window of N calls never holds more than N: a larger min_calls would keep the
            # breaker closed forever (resilience4j clamps it the same way).
            object.__setattr__(self, "min_calls", min(self.min_calls, int(self.window)))
        if self.adaptive is not None and self.throttle is not None:
            raise ValueError(
                "CircuitBreaker: adaptive and throttle are alternatives; set one of them"
            )

    def window_problem(self, attempt_timeout: float | None) -> str | None:
        """What is wrong with this breaker next to an attempt timeout, or None: a time window
        shorter than two attempt timeouts (Microsoft.Extensions.Http.Resilience rejects it too)."""
        if self.window_type != "time" or attempt_timeout is None:
            return None
        if self.window >= 2 * attempt_timeout:
            return None
        return (
            f"breaker window ({self.window:g} s) must be at least twice the attempt timeout "
            f"({attempt_timeout:g} s): attempts that time out need a window spanning several "
            f"of them (lengthen breaker.window or shorten timeouts.attempt)"
        )


# Module constants: reading an Enum member off its class is slow (Python 3.11), and the breaker
# checks its state on every attempt.
CLOSED, OPEN, HALF_OPEN = State.CLOSED, State.OPEN, State.HALF_OPEN
ISOLATED, DISABLED = State.ISOLATED, State.DISABLED


class BreakerView(NamedTuple):
    """What `Breaker.view(now)` reads: the state that applies now (an open breaker whose
    `open_for` is up reads half-open, with `probe_due`), seconds until a probe, when it last
    changed (policy clock), the window's counts and the last manual action."""

    state: State
    probe_due: bool
    retry_in: float
    changed_at: float | None
    calls: int
    failures: int
    slow: int
    manual: ManualAction | None


#: on_transition(breaker_key, from_state, to_state, now)
TransitionListener = Callable[[str, State, State, float], None]


class Breaker:
    """The live state of one breaker key. Thread-safe; transitions are reported to
    `on_transition` after the lock is released."""

    __slots__ = (
        "config",
        "key",
        "_on_transition",
        "_lock",
        "_state",
        "_generation",
        "_closed_permit",
        "_window",
        "_streak",
        "_opened_at",
        "_changed_at",
        "_manual",
        "_probes",
        "_successes",
        "_failure_rate",
        "_tuner",
        "_unhealthy",
        "clock",
    )

    def __init__(
        self, config: CircuitBreaker, key: str = "", on_transition: TransitionListener | None = None
    ) -> None:
        self.config = config
        self.key = key
        self._on_transition = on_transition
        self._lock = threading.Lock()
        self._state = CLOSED
        self._generation = 0  # bumped on every transition: results from before are stale
        # The permit while closed, None otherwise: one attribute read, so `acquire` needs no
        # lock in the common case (a stale read is a permit from just before a transition,
        # which `record` then ignores, as it would have been).
        self._closed_permit: int | None = 0
        self._window: TimedCallWindow | CallWindow = (
            CallWindow(int(config.window))
            if config.window_type == "count"
            else TimedCallWindow(config.window)
        )
        self._streak = 0
        self._opened_at = 0.0
        self._changed_at: float | None = None  # when the last transition happened
        self._manual: ManualAction | None = None
        self._probes = 0  # half-open probes in flight
        self._successes = 0  # successful probes since half-open
        self._failure_rate = config.failure_rate  # the threshold in force (adaptive moves it)
        self._tuner: ThresholdAdjuster | ThrottleState | None = None
        self._unhealthy: str | None = None  # why health checks hold it open, while they do
        #: The clock the queries read when given no `now`: the policy's, set by the dependency
        #: that owns the breaker (None for a breaker made by hand: pass `now`).
        self.clock: Callable[[], float] | None = None
        if config.adaptive is not None:
            self._tuner = ThresholdAdjuster(config.adaptive, config.failure_rate)
            self._failure_rate = self._tuner.rate
        elif config.throttle is not None:
            self._tuner = ThrottleState(config.throttle)
            self._closed_permit = None  # every closed-state permit is drawn under the lock

    # -- queries (without `now`, at the policy's clock) ------------------------------------
    def _now(self, now: float | None) -> float:
        if now is not None:
            return now
        if self.clock is None:
            raise TypeError(
                f"breaker {self.key!r} has no clock (it was not made by a Policy): pass `now`"
            )
        return self.clock()

    def state(self, now: float | None = None) -> State:
        """The state at `now` (an open breaker whose time is up reads as half-open)."""
        now = self._now(now)
        with self._lock:
            if self._state is OPEN and self._may_probe(now):
                return HALF_OPEN
            return self._state

    def retry_in(self, now: float | None = None) -> float:
        """Seconds until an open breaker lets a probe through (0 unless open; inf when
        isolated)."""
        now = self._now(now)
        with self._lock:
            return self._retry_in(now)

    def view(self, now: float | None = None) -> BreakerView:
        """Everything an operator is shown, read at once (one lock)."""
        now = self._now(now)
        with self._lock:
            state = self._state
            probe_due = state is OPEN and self._may_probe(now)
            calls, failures, slow = self._counts(now)
            return BreakerView(
                HALF_OPEN if probe_due else state,
                probe_due,
                self._retry_in(now),
                self._changed_at,
                calls,
                failures,
                slow,
                self._manual,
            )

    def counts(self, now: float | None = None) -> CallCounts:
        """The calls in the current window (`calls`, `failures`, `slow`)."""
        now = self._now(now)
        with self._lock:
            return self._counts(now)

    def __repr__(self) -> str:
        """What it is and its state, e.g. `<CircuitBreaker 'api' closed failures=2/5 window=30s
        opens at 50% over >= 20 calls>` (read at the policy's clock)."""
        config = self.config
        if self.clock is None:  # made by hand: what was last decided, as of the last call
            with self._lock:
                state, retry_in, counts = self._state, None, self._window.peek()
        else:
            view = self.view()
            state, retry_in = view.state, view.retry_in
            counts = CallCounts(view.calls, view.failures, view.slow)
        parts = [f"<CircuitBreaker {self.key!r} {state.value}"]
        if state is OPEN and retry_in is not None:
            unhealthy = retry_in == float("inf")
            parts.append("held open by health checks" if unhealthy else f"probe in {retry_in:.3g}s")
        elif state is HALF_OPEN:
            parts.append(f"probes={self._probes}/{config.half_open_calls}")
        manual = self._manual
        if manual is not None and state in MANUAL_STATES:
            parts.append(f"(by hand{f': {manual.by}' if manual.by else ''})")
        parts.append(f"failures={counts.failures}/{counts.calls}")
        if config.slow_call_duration is not None:
            parts.append(f"slow={counts.slow}/{counts.calls}")
        window = (
            f"last {int(config.window)} calls"
            if config.window_type == "count"
            else f"{config.window:g}s"
        )
        parts.append(f"window={window} opens at {self._failure_rate:.0%}")
        return " ".join(parts) + f" over >= {config.min_calls} calls>"

    # -- the pipeline's side ---------------------------------------------------------------
    def acquire(self, now: float) -> int | None:
        """Permission for one attempt: a permit to hand back to `record`/`release`, or None
        when the breaker rejects the call."""
        permit = self._closed_permit
        if permit is not None:
            return permit
        with self._lock:
            state = self._state
            if state is CLOSED:
                tuner = self._tuner  # only a throttle brings a closed breaker here
                if isinstance(tuner, ThrottleState) and not tuner.admit(now):
                    return None
                return self._generation
            if state is OPEN:
                if not self._may_probe(now):
                    return None
                change = self._move(HALF_OPEN, now)
            elif state is HALF_OPEN:
                change = None
            else:
                return None if state is ISOLATED else self._generation  # DISABLED: let it in
            if self._probes >= self.config.half_open_calls:
                permit = None
            else:
                self._probes += 1
                permit = self._generation
        self._report(change, now)
        return permit

    def record(self, permit: int, failed: bool, slow: bool, now: float) -> None:
        """The outcome of an attempt that `acquire` allowed."""
        change = None
        lock = self._lock
        lock.acquire()  # not `with`: this runs for every attempt, and costs a third less
        try:
            if permit != self._generation:
                return  # started before the last transition: says nothing about the present
            state = self._state
            if state is CLOSED:
                if (
                    self._add(now, failed, slow)
                    if self._tuner is None
                    else self._tuned(now, failed, slow)
                ):
                    change = self._move(OPEN, now)
            elif state is HALF_OPEN:
                self._probes -= 1
                if failed or slow:
                    change = self._move(OPEN, now)
                else:
                    self._successes += 1
                    if self._successes >= self.config.success_threshold:
                        change = self._move(CLOSED, now)
            elif state is DISABLED:
                self._add(now, failed, slow)  # counted, but it never opens
        finally:
            lock.release()
        if change is not None:
            self._report(change, now)

    def release(self, permit: int) -> None:
        """An allowed attempt ended with no verdict (cancelled, or not the upstream's fault)."""
        with self._lock:
            if permit == self._generation and self._state is HALF_OPEN:
                self._probes -= 1

    # -- manual control (wins over every automatic transition until `reset`) ----------------
    def reset(self, now: float, reason: str = "", by: str = "", scope: str = "process") -> None:
        """Close the breaker and forget its window (lifts `isolate` and `disable`)."""
        with self._lock:
            self._manual = ManualAction("reset", reason, by, now, scope)
            change = self._move(CLOSED, now) if self._state is not CLOSED else None
            self._window.clear()
            self._streak = 0
        self._report(change, now)

    def isolate(self, now: float, reason: str = "", by: str = "", scope: str = "process") -> None:
        """Hold the breaker open until `reset()`: every call rejected, no probe."""
        self._hold(ISOLATED, ManualAction("isolate", reason, by, now, scope), now)

    def disable(self, now: float, reason: str = "", by: str = "", scope: str = "process") -> None:
        """Let every call through until `reset()`, still counting outcomes but never opening."""
        self._hold(DISABLED, ManualAction("disable", reason, by, now, scope), now)

    def force_open(self, now: float) -> None:
        """The same as `isolate(now)`."""
        self.isolate(now)

    def _hold(self, state: State, manual: ManualAction, now: float) -> None:
        with self._lock:
            self._manual = manual
            change = self._move(state, now) if self._state is not state else None
        self._report(change, now)

    # -- the opt-in tuners (policies.adaptive) ----------------------------------------------
    @property
    def failure_rate(self) -> float:
        """The failure-rate threshold in force (the configured one unless adaptive)."""
        return self._failure_rate

    @property
    def tuner(self) -> ThresholdAdjuster | ThrottleState | None:
        """The live adaptive threshold or throttle, when configured."""
        return self._tuner

    def rejection_reason(self) -> str:
        """Why `acquire` refuses now: "throttled" (closed, throttling), "unhealthy" (held
        open by health checks) or the state's name."""
        state = self._state
        if state is CLOSED:
            return "throttled"
        return "unhealthy" if state is OPEN and self._unhealthy is not None else state.value

    # -- health checks: an input, not an override (policies.health) -------------------------
    @property
    def unhealthy(self) -> str | None:
        """Why health checks hold the breaker open, or None."""
        return self._unhealthy

    def health_down(self, now: float, reason: str) -> None:
        """The dependency is unhealthy: open, and no probe of real traffic until `health_up`."""
        with self._lock:
            self._unhealthy = reason
            change = self._move(OPEN, now) if self._state in (CLOSED, HALF_OPEN) else None
        self._report(change, now)

    def health_up(self, now: float) -> None:
        """Healthy again: an open breaker may half-open at once; only real traffic closes it."""
        with self._lock:
            if self._unhealthy is not None and self._state is OPEN:
                self._opened_at = now - self.config.open_for  # the probe is due now
            self._unhealthy = None

    # -- internals (lock held) -------------------------------------------------------------
    def _retry_in(self, now: float) -> float:
        if self._state is ISOLATED or self._state is OPEN and self._unhealthy is not None:
            return float("inf")
        if self._state is not OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.config.open_for - now)

    def _tuned(self, now: float, failed: bool, slow: bool) -> bool:
        """`_add` with a tuner: whether the breaker must open now."""
        tuner = self._tuner
        if isinstance(tuner, ThresholdAdjuster):
            self._failure_rate = tuner.observe(now, failed)
            opens = self._add(now, failed, slow)
            if opens:
                tuner.hold()
            return opens
        assert tuner is not None
        tuner.outcome(now, failed)
        opens = self._add(now, failed, slow)  # the rates are counted (status) but do not open
        streak = self.config.consecutive_failures
        return opens and streak is not None and self._streak >= streak

    def _may_probe(self, now: float) -> bool:
        return self._unhealthy is None and now >= self._opened_at + self.config.open_for

    def _add(self, now: float, failed: bool, slow: bool) -> bool:
        """Count one outcome; whether the breaker must open now."""
        config = self.config
        self._streak = self._streak + 1 if failed else 0
        calls, failures, slows = self._window.record(now, failed, slow)
        # A success that is not slow only lowers both rates: it can open the breaker only by
        # bringing the window up to min_calls.
        if not (failed or slow or calls == config.min_calls):
            return False
        if config.consecutive_failures is not None and self._streak >= config.consecutive_failures:
            return True
        if calls < config.min_calls:
            return False
        # The ratio itself, as Polly and resilience4j compare it: 7 / 100 is the float nearest
        # 0.07, as the literal 0.07 is, while 0.07 * 100 is 7.000000000000001 (not <= 7).
        return failures / calls >= self._failure_rate or (
            config.slow_call_duration is not None and slows / calls >= config.slow_call_rate
        )

    def _counts(self, now: float) -> CallCounts:
        return self._window.counts(now)

    def _move(self, to: State, now: float) -> tuple[State, State]:
        change = (self._state, to)
        self._state = to
        self._generation += 1
        # (a throttle draws every closed-state permit under the lock)
        self._closed_permit = (
            self._generation
            if to is CLOSED and not isinstance(self._tuner, ThrottleState)
            else None
        )
        self._probes = 0
        self._successes = 0
        self._changed_at = now
        if to is OPEN:
            self._opened_at = now
        elif to is CLOSED:
            self._window.clear()
            self._streak = 0
        return change

    def _report(self, change: tuple[State, State] | None, now: float) -> None:
        if change is not None and self._on_transition is not None:
            self._on_transition(self.key, change[0], change[1], now)
