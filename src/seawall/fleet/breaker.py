"""A `Breaker` that still decides locally and also takes the fleet's verdict.

The request path is the local breaker's own, plus two counters the flusher collects. The
flusher (never a request) calls `take_counts()` and `apply(...)`: a fleet that is open holds
this breaker open until the fleet's probe time; the one process that holds the fleet's probe
lets its breaker half-open; a fleet that closed releases what the fleet held open. A manual
state (isolate, disable) wins over the fleet (bagowix/interlock #79). A breaker that opened on
its own local window keeps its own schedule: the fleet never closes it.
"""

from __future__ import annotations

from typing import NamedTuple

from ..policies.breaker import (
    CLOSED,
    HALF_OPEN,
    MANUAL_STATES,
    OPEN,
    Breaker,
    CircuitBreaker,
    State,
    TransitionListener,
)


class FleetView(NamedTuple):
    """The fleet's state of one breaker as the last flush (or transition message) saw it."""

    state: str  # "closed" | "open" | "half_open"
    epoch: int
    calls: int
    failures: int
    reporters: int
    prober: bool  # this process holds the fleet's one half-open probe
    at: float  # policy clock of that flush


class Pending(NamedTuple):
    """What the flusher sends for one breaker: counts since the last flush and a probe verdict."""

    calls: int
    failures: int
    verdict: str  # "" | "ok" | "fail": how this process's fleet probe ended
    verdict_epoch: int


class FleetBreaker(Breaker):
    """A local breaker whose outcomes are also counted for the fleet (see the module doc)."""

    __slots__ = (
        "__weakref__",
        "_calls",
        "_epoch",
        "_failures",
        "_held",
        "_manual_seq",
        "_verdict",
        "degraded",
        "dependency",
        "fleet",
    )

    def __init__(
        self,
        config: CircuitBreaker,
        dependency: str,
        key: str,
        on_transition: TransitionListener | None,
    ) -> None:
        super().__init__(config, key, on_transition)
        self.dependency = dependency
        self._calls = 0
        self._failures = 0
        self._held = False  # open because the fleet is, not because of the local window
        self._verdict = ""
        self._epoch = 0  # the fleet epoch this breaker last applied
        self._manual_seq: int | None = None  # the fleet-wide manual control last applied
        self.fleet: FleetView | None = None
        self.degraded = False  # Redis unreachable at the last flush: deciding locally only

    def record(self, permit: int, failed: bool, slow: bool, now: float) -> None:
        # Plain increments: under the GIL a rare lost count only blurs an aggregate that is
        # already a second old; a lock here would cost every request.
        self._calls += 1
        if failed:
            self._failures += 1
        super().record(permit, failed, slow, now)

    def take_counts(self) -> Pending:
        """The counts since the last call (then zeroed) and the probe verdict, if any."""
        calls, failures = self._calls, self._failures
        self._calls -= calls
        self._failures -= failures
        verdict, self._verdict = self._verdict, ""
        return Pending(calls, failures, verdict, self._epoch)

    def active(self, now: float) -> bool:
        """Whether a flush has anything to send or learn for this breaker: counts or a verdict
        to send, a fleet state to follow, or calls in its window (it would act on a verdict)."""
        return bool(
            self.fleet is None  # never flushed: a fleet-wide isolate may be waiting for it
            or self._calls
            or self._verdict
            or self._held
            or (self.fleet is not None and self.fleet.state != "closed")
            or self.counts(now)[0]
        )

    def apply(self, view: FleetView, hold: float, now: float) -> None:
        """Take the fleet's state. `hold`: how long a fleet that is open keeps this breaker
        open when it is not the prober (past the fleet's probe time and the next flush, which
        says who probes)."""
        change: tuple[State, State] | None = None
        with self._lock:
            if view.epoch < self._epoch:
                return  # older than what a transition message already applied
            self.fleet = view
            self.degraded = False
            self._epoch = view.epoch
            state = self._state
            if state in MANUAL_STATES:
                pass  # a person decided: the fleet does not override it
            elif view.state == "closed":
                if self._held and state is not CLOSED:
                    change = self._move(CLOSED, now)
                self._held = False
            elif view.prober:
                if state is OPEN:
                    self._opened_at = now - self.config.open_for  # probe at the next acquire
                self._held = True
            else:
                # Open fleet-wide and another process probes: so does this breaker even if its
                # own window opened it (one probe for the whole fleet).
                if state is not OPEN:
                    change = self._move(OPEN, now)
                self._opened_at = now - self.config.open_for + hold
                self._held = True
        Breaker._report(self, change, now)  # not a probe's end: no verdict to send

    def apply_manual(
        self, seq: int, action: str, reason: str, by: str, now: float, *, live: bool = True
    ) -> bool:
        """Take the fleet-wide manual control number `seq` (`scope="fleet"`) unless it was
        applied already; whether it was applied now. `live`: just asked (pub/sub, or this
        process asked); otherwise read from a flush, where a breaker that learns the fleet's
        controls for the first time takes only an isolate or disable in force (a past reset
        is moot for it)."""
        with self._lock:
            known, self._manual_seq = self._manual_seq, max(seq, self._manual_seq or 0)
        if seq == 0 or (known is not None and seq <= known):
            return False
        if known is None and action == "reset" and not live:
            return False
        getattr(self, action)(now, reason=reason, by=by, scope="fleet")
        return True

    def release_fleet(self, restarted: bool = False) -> None:
        """Redis is unreachable (or `restarted`, its state gone): from now on this breaker
        follows its local window only (an open it holds probes locally when its time is up)."""
        with self._lock:
            self._held = False
            self._epoch = 0  # a Redis that comes back may have lost its state (epochs restart)
            if restarted:
                self._manual_seq = None  # so did the manual sequence numbers
        self.degraded = True

    def fleet_status(self) -> dict[str, object]:
        """The fleet side of this breaker for the status snapshot (`last_flush` on the policy
        clock, or None before the first flush that worked)."""
        view = self.fleet
        return {
            "degraded": self.degraded,
            "held_open": self._held,
            "state": None if view is None else view.state,
            "epoch": None if view is None else view.epoch,
            "calls": None if view is None else view.calls,
            "failures": None if view is None else view.failures,
            "reporters": None if view is None else view.reporters,
            "prober": None if view is None else view.prober,
            "last_flush": None if view is None else view.at,
        }

    def _report(self, change: tuple[State, State] | None, now: float) -> None:
        if change is not None and change[0] is HALF_OPEN and self._held:
            # The end of this process's fleet probe: the next flush tells the fleet.
            self._verdict = "ok" if change[1] is CLOSED else "fail"
        super()._report(change, now)


__all__ = ["FleetBreaker", "FleetView", "Pending"]
