"""CircuitBreaker on a fake clock, and a Hypothesis stateful test against a simple model."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from seawall import CircuitBreaker
from seawall.policies.breaker import Breaker, State


def new(**config):
    transitions = []
    breaker = Breaker(
        CircuitBreaker(**config),
        "dep",
        lambda key, a, b, now: transitions.append((a.value, b.value, now)),
    )
    return breaker, transitions


def call(breaker, now, failed=False, slow=False):
    permit = breaker.acquire(now)
    assert permit is not None, "breaker rejected a call it should allow"
    breaker.record(permit, failed, slow, now)


def test_rate_mode_waits_for_min_calls_then_opens_at_the_threshold():
    breaker, transitions = new(failure_rate=0.5, min_calls=4, window=10)
    call(breaker, 0, failed=True)
    call(breaker, 0, failed=True)
    call(breaker, 0, failed=True)
    assert breaker.state(0) is State.CLOSED  # 3 calls < min_calls
    call(breaker, 0, failed=False)  # 3 of 4 failed
    assert breaker.state(0) is State.OPEN
    assert breaker.acquire(1) is None
    assert breaker.retry_in(1) == pytest.approx(4.0)
    assert transitions == [("closed", "open", 0)]


def test_below_threshold_stays_closed():
    breaker, _ = new(failure_rate=0.5, min_calls=4)
    for i in range(40):
        call(breaker, i * 0.1, failed=(i % 4 == 0))  # 25%
    assert breaker.state(4) is State.CLOSED


def test_half_open_probe_success_closes():
    breaker, transitions = new(consecutive_failures=2, open_for=5)
    call(breaker, 0, failed=True)
    call(breaker, 0, failed=True)
    assert breaker.acquire(4.9) is None
    probe = breaker.acquire(5.0)
    assert probe is not None and breaker.state(5.0) is State.HALF_OPEN
    assert breaker.acquire(5.0) is None  # one probe at a time by default
    breaker.record(probe, False, False, 5.1)
    assert breaker.state(5.1) is State.CLOSED
    assert [t[:2] for t in transitions] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_half_open_probe_failure_reopens_for_a_full_period():
    breaker, _ = new(consecutive_failures=1, open_for=5)
    call(breaker, 0, failed=True)
    probe = breaker.acquire(5)
    breaker.record(probe, True, False, 6)
    assert breaker.state(6) is State.OPEN
    assert breaker.acquire(10.9) is None and breaker.acquire(11) is not None


def test_released_probe_is_not_lost():
    breaker, _ = new(consecutive_failures=1, open_for=1)
    call(breaker, 0, failed=True)
    probe = breaker.acquire(1)
    breaker.release(probe)  # cancelled: no verdict
    assert breaker.state(1) is State.HALF_OPEN
    assert breaker.acquire(1) is not None


def test_success_threshold_and_several_probes():
    breaker, _ = new(consecutive_failures=1, open_for=1, half_open_calls=2, success_threshold=2)
    call(breaker, 0, failed=True)
    a, b = breaker.acquire(1), breaker.acquire(1)
    assert a is not None and b is not None and breaker.acquire(1) is None
    breaker.record(a, False, False, 1)
    assert breaker.state(1) is State.HALF_OPEN
    breaker.record(b, False, False, 1)
    assert breaker.state(1) is State.CLOSED


def test_results_from_before_a_transition_are_ignored():
    breaker, _ = new(consecutive_failures=2, open_for=1)
    old = breaker.acquire(0)
    call(breaker, 0, failed=True)
    call(breaker, 0, failed=True)
    probe = breaker.acquire(1)
    breaker.record(old, True, False, 1)  # a slow straggler from the closed period
    assert breaker.state(1) is State.HALF_OPEN
    breaker.record(probe, False, False, 1)
    assert breaker.state(1) is State.CLOSED


def test_slow_calls_open_the_breaker():
    breaker, _ = new(slow_call_duration=1.0, slow_call_rate=0.5, min_calls=4)
    for _ in range(2):
        call(breaker, 0, slow=True)
    call(breaker, 0)
    assert breaker.state(0) is State.CLOSED
    call(breaker, 0)  # 2 of 4 slow
    assert breaker.state(0) is State.OPEN


def test_time_window_forgets_old_failures():
    breaker, _ = new(failure_rate=0.5, min_calls=4, window=10)
    for _ in range(3):
        call(breaker, 0, failed=True)
    for i in range(3):
        call(breaker, 11 + i, failed=False)  # the failures slid out of the window
    call(breaker, 14, failed=True)
    assert breaker.state(14) is State.CLOSED
    assert breaker.counts(14) == (4, 1, 0)


def test_count_window_keeps_the_last_n_calls():
    breaker, _ = new(failure_rate=0.5, min_calls=4, window=4, window_type="count")
    for failed in (True, False, False, False, False, True):
        call(breaker, 0, failed=failed)
    assert breaker.counts(0) == (4, 1, 0)
    call(breaker, 0, failed=True)
    assert breaker.state(0) is State.OPEN  # 2 of the last 4


def test_force_open_holds_until_reset():
    breaker, transitions = new()
    breaker.force_open(0)
    assert breaker.acquire(10_000) is None and breaker.retry_in(10_000) == float("inf")
    breaker.reset(10_001)
    assert breaker.acquire(10_001) is not None
    assert [t[:2] for t in transitions] == [("closed", "isolated"), ("isolated", "closed")]


class BreakerModel(RuleBasedStateMachine):
    """The breaker against a plain, obviously-correct model (count window, rate + streak)."""

    SIZE, MIN_CALLS, RATE, STREAK, OPEN_FOR, PROBES = 6, 3, 0.5, 4, 5.0, 2

    def __init__(self):
        super().__init__()
        self.breaker = Breaker(
            CircuitBreaker(
                failure_rate=self.RATE,
                window=self.SIZE,
                window_type="count",
                min_calls=self.MIN_CALLS,
                consecutive_failures=self.STREAK,
                open_for=self.OPEN_FOR,
                half_open_calls=self.PROBES,
            )
        )
        self.now = 0.0
        self.state, self.outcomes, self.streak, self.opened_at, self.probes = (
            "closed",
            [],
            0,
            0.0,
            0,
        )
        self.permits = []  # (permit, model generation)
        self.generation = 0

    def _move(self, to):
        self.state, self.generation, self.probes = to, self.generation + 1, 0
        if to == "open":
            self.opened_at = self.now
        if to == "closed":
            self.outcomes, self.streak = [], 0

    @rule(dt=st.floats(0, 3))
    def tick(self, dt):
        self.now += dt

    @rule()
    def acquire(self):
        if self.state == "open" and self.now >= self.opened_at + self.OPEN_FOR:
            self._move("half_open")
        if self.state == "closed":
            expected = True
        elif self.state == "open":
            expected = False
        else:
            expected = self.probes < self.PROBES
            self.probes += expected
        permit = self.breaker.acquire(self.now)
        assert (permit is not None) == expected
        if permit is not None:
            self.permits.append((permit, self.generation))

    @precondition(lambda self: self.permits)
    @rule(index=st.integers(0, 100), failed=st.booleans())
    def record(self, index, failed):
        permit, generation = self.permits.pop(index % len(self.permits))
        self.breaker.record(permit, failed, False, self.now)
        if generation != self.generation:
            return
        if self.state == "closed":
            self.outcomes = (self.outcomes + [failed])[-self.SIZE :]
            self.streak = self.streak + 1 if failed else 0
            n, f = len(self.outcomes), sum(self.outcomes)
            if self.streak >= self.STREAK or (n >= self.MIN_CALLS and f >= self.RATE * n):
                self._move("open")
        elif self.state == "half_open":
            self.probes -= 1
            self._move("open" if failed else "closed")

    @precondition(lambda self: self.permits)
    @rule(index=st.integers(0, 100))
    def release(self, index):
        permit, generation = self.permits.pop(index % len(self.permits))
        self.breaker.release(permit)
        if generation == self.generation and self.state == "half_open":
            self.probes -= 1

    @invariant()
    def same_state(self):
        expected = self.state
        if expected == "open" and self.now >= self.opened_at + self.OPEN_FOR:
            expected = "half_open"
        assert self.breaker.state(self.now).value == expected


BreakerModel.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_breaker_matches_model = BreakerModel.TestCase
