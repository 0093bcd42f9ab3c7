"""Manual control of the sans-I/O breaker on a fake clock: a manual state (isolated, disabled)
wins over every automatic transition until `reset` lifts it."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from seawall import CircuitBreaker
from seawall.policies.breaker import Breaker, State


def opened(**config):
    transitions = []
    breaker = Breaker(
        CircuitBreaker(**{"consecutive_failures": 2, "open_for": 5, **config}),
        "k",
        lambda key, a, b, now: transitions.append((a.value, b.value)),
    )
    for _ in range(2):
        breaker.record(breaker.acquire(0), True, False, 0)
    assert breaker.state(0) is State.OPEN
    return breaker, transitions


def test_isolate_holds_open_past_open_for_and_reset_closes_with_an_empty_window():
    breaker, transitions = opened()
    breaker.isolate(1, reason="maintenance", by="alice")
    for now in (5, 6, 1e6):
        assert breaker.acquire(now) is None
        assert breaker.state(now) is State.ISOLATED
    view = breaker.view(1e6)
    assert view.state is State.ISOLATED and view.retry_in == float("inf") and not view.probe_due
    assert view.manual is not None and (view.manual.action, view.manual.reason, view.manual.by) == (
        "isolate",
        "maintenance",
        "alice",
    )
    breaker.reset(1e6 + 1, reason="done", by="bob")
    assert breaker.state(1e6 + 1) is State.CLOSED and breaker.counts(1e6 + 1) == (0, 0, 0)
    assert transitions == [("closed", "open"), ("open", "isolated"), ("isolated", "closed")]


def test_disable_lets_every_call_through_and_keeps_counting_but_never_opens():
    breaker, transitions = opened()
    breaker.disable(1, reason="flaky alarm")
    for _ in range(50):
        permit = breaker.acquire(2)
        assert permit is not None
        breaker.record(permit, True, True, 2)
    assert breaker.state(100) is State.DISABLED
    assert breaker.counts(2)[1:] == (50 + 2, 50)  # failures (2 from before), slow calls
    assert transitions == [("closed", "open"), ("open", "disabled")]


def test_an_open_breaker_whose_time_is_up_reads_as_due_for_a_probe():  # pybreaker #15
    breaker, _ = opened()
    early, late = breaker.view(4.9), breaker.view(5.0)
    assert early.state is State.OPEN and not early.probe_due and early.retry_in > 0
    assert late.state is State.HALF_OPEN and late.probe_due and late.retry_in == 0


def test_a_permit_from_before_isolation_cannot_close_it():
    breaker, _ = opened(consecutive_failures=None, min_calls=1, failure_rate=1.0)
    breaker.reset(0)
    permit = breaker.acquire(0)
    breaker.isolate(0)
    breaker.record(permit, False, False, 0)
    assert breaker.state(0) is State.ISOLATED


class ManualWins(RuleBasedStateMachine):
    """Random traffic and clock steps between manual actions: the manual state always holds."""

    def __init__(self) -> None:
        super().__init__()
        self.breaker = Breaker(
            CircuitBreaker(
                failure_rate=0.5, min_calls=2, window=10, open_for=1, consecutive_failures=3
            )
        )
        self.now = 0.0
        self.manual: State | None = None
        self.counted = 0  # calls counted while disabled

    @rule(step=st.floats(0, 3))
    def tick(self, step: float) -> None:
        self.now += step

    @rule(failed=st.booleans(), slow=st.booleans(), late=st.booleans())
    def call(self, failed: bool, slow: bool, late: bool) -> None:
        permit = self.breaker.acquire(self.now)
        if self.manual is State.ISOLATED:
            assert permit is None
        if self.manual is State.DISABLED:
            assert permit is not None
        if permit is None:
            return
        if late:
            self.now += 0.5
        self.breaker.record(permit, failed, slow, self.now)

    @rule()
    def isolate(self) -> None:
        self.breaker.isolate(self.now, reason="test")
        self.manual = State.ISOLATED

    @rule()
    def disable(self) -> None:
        self.breaker.disable(self.now, reason="test")
        self.manual = State.DISABLED

    @rule()
    def reset(self) -> None:
        self.breaker.reset(self.now)
        self.manual = None
        assert self.breaker.counts(self.now) == (0, 0, 0)

    @invariant()
    def manual_state_holds(self) -> None:
        state = self.breaker.state(self.now)
        if self.manual is not None:
            assert state is self.manual
            assert self.breaker.view(self.now + 1e6).state is self.manual
        else:
            assert state in (State.CLOSED, State.OPEN, State.HALF_OPEN)


ManualWins.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestManualWins = ManualWins.TestCase
