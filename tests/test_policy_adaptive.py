"""AdaptiveThreshold and Throttle on a fake clock, alone and inside a Breaker, with Hypothesis
checking that bounds and step limits hold whatever the traffic."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall import AdaptiveThreshold, CircuitBreaker, Throttle
from seawall.policies.adaptive import ThresholdAdjuster, ThrottleState
from seawall.policies.breaker import Breaker, State

FAST = AdaptiveThreshold(
    target_error_rate=0.1, window=10, interval=5, min_calls=10, min_rate=0.2, max_rate=0.8
)


def spread(i: int, share: float) -> bool:
    """Whether outcome number i fails, so that a share `share` fail, evenly spread."""
    return int((i + 1) * share + 1e-9) > int(i * share + 1e-9)


def feed(
    adjuster: ThresholdAdjuster, start: float, seconds: float, per_second: int, failing: float
) -> float:
    """`per_second` outcomes a second for `seconds`, a share `failing` of them failures."""
    rate = adjuster.rate
    n = int(seconds * per_second)
    for i in range(n):
        rate = adjuster.observe(start + i / per_second, spread(i, failing))
    return rate


# -- the adjuster alone ---------------------------------------------------------------------
def test_errors_above_target_lower_the_threshold_one_step_per_interval():
    adjuster = ThresholdAdjuster(FAST, 0.5)
    assert feed(adjuster, 0, 4.9, 20, failing=0.3) == 0.5  # the first interval is not over
    assert feed(adjuster, 4.9, 0.2, 20, failing=0.3) == pytest.approx(0.4)
    assert feed(adjuster, 5.1, 4.8, 20, failing=0.3) == pytest.approx(0.4)
    assert feed(adjuster, 9.9, 0.2, 20, failing=0.3) == pytest.approx(0.32)
    assert adjuster.changes == 2


def test_errors_below_half_the_target_raise_it_and_in_the_band_nothing_moves():
    adjuster = ThresholdAdjuster(FAST, 0.5)
    assert feed(adjuster, 0, 5.5, 20, failing=0.0) == pytest.approx(0.625)
    steady = ThresholdAdjuster(FAST, 0.5)
    assert feed(steady, 0, 30, 20, failing=0.07) == 0.5  # 7%: between 5% and 10%


def test_bounds_hold_and_the_start_is_clamped_into_them():
    adjuster = ThresholdAdjuster(FAST, 0.95)
    assert adjuster.rate == 0.8
    assert feed(adjuster, 0, 200, 20, failing=0.5) == 0.2  # many steps down, stopped at min
    assert feed(adjuster, 200, 200, 20, failing=0.0) == 0.8


def test_below_the_volume_minimum_nothing_moves():
    adjuster = ThresholdAdjuster(FAST, 0.5)
    assert feed(adjuster, 0, 60, 0.5, failing=1.0) == 0.5  # 5 calls in any 10 s window


def test_hold_freezes_and_the_window_restarts_after_it():
    adjuster = ThresholdAdjuster(FAST, 0.5)
    feed(adjuster, 0, 4, 20, failing=1.0)
    adjuster.hold()  # the breaker opened
    # closed again at t=20: the failures of before are forgotten, the interval starts anew
    assert feed(adjuster, 20, 4.9, 20, failing=0.0) == 0.5
    assert adjuster.error_rate(24.9) == 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 20), st.booleans(), st.booleans()), max_size=300),
    st.floats(0.01, 1.0),
)
def test_the_threshold_stays_in_bounds_and_moves_one_bounded_step_per_interval(steps, initial):
    config = AdaptiveThreshold(
        target_error_rate=0.1,
        window=10,
        interval=3,
        min_calls=3,
        min_rate=0.15,
        max_rate=0.7,
        step_down=0.8,
        step_up=1.25,
    )
    adjuster = ThresholdAdjuster(config, initial)
    now, rate, last_change = 0.0, adjuster.rate, None
    for dt, failed, hold in steps:
        now += dt
        if hold:
            adjuster.hold()
        new = adjuster.observe(now, failed)
        assert config.min_rate <= new <= config.max_rate
        if new != rate:
            assert config.step_down - 1e-12 <= new / rate <= config.step_up + 1e-12
            assert last_change is None or now - last_change >= config.interval
            last_change = now
        rate = new


# -- inside a breaker -----------------------------------------------------------------------
def adaptive_breaker(**config):
    transitions = []
    breaker = Breaker(
        CircuitBreaker(**config),
        "dep",
        lambda key, a, b, now: transitions.append((a.value, b.value, now)),
    )
    return breaker, transitions


def run(breaker, start, seconds, per_second, failing):
    """Calls at `per_second`; a share `failing` of them fail. Returns how many were rejected."""
    rejected = 0
    for i in range(int(seconds * per_second)):
        now = start + i / per_second
        permit = breaker.acquire(now)
        if permit is None:
            rejected += 1
            continue
        breaker.record(permit, spread(i, failing), False, now)
    return rejected


def test_a_lowered_threshold_opens_the_breaker_where_the_fixed_one_would_not():
    kwargs = {"failure_rate": 0.5, "window": 10, "min_calls": 20}
    fixed, _ = adaptive_breaker(**kwargs)
    adaptive, transitions = adaptive_breaker(**kwargs, adaptive=FAST)
    run(fixed, 0, 60, 20, failing=0.3)
    run(adaptive, 0, 60, 20, failing=0.3)
    assert fixed.state(60) is State.CLOSED
    assert fixed.failure_rate == 0.5
    assert [t[:2] for t in transitions][:1] == [("closed", "open")]
    assert adaptive.failure_rate == pytest.approx(0.256)  # 0.5 * 0.8**3: opened at 30% > 25.6%


def test_the_threshold_is_frozen_while_the_breaker_is_open():
    breaker, _ = adaptive_breaker(
        failure_rate=0.5, window=10, min_calls=20, open_for=30, adaptive=FAST
    )
    run(breaker, 0, 60, 20, failing=0.3)
    assert breaker.state(60) is State.OPEN
    rate = breaker.failure_rate
    assert run(breaker, 60, 10, 20, failing=0.0) == 200  # all rejected: nothing observed
    assert breaker.failure_rate == rate


def test_the_default_breaker_has_no_tuner():
    breaker = Breaker(CircuitBreaker())
    assert breaker.tuner is None and breaker.failure_rate == 0.5


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.floats(0, 1)), max_size=200))
def test_the_breakers_threshold_always_holds_its_bounds_and_steps(steps):
    config = AdaptiveThreshold(
        target_error_rate=0.1, window=10, interval=2, min_calls=5, min_rate=0.2, max_rate=0.6
    )
    breaker, _ = adaptive_breaker(
        failure_rate=0.5, window=5, min_calls=5, open_for=3, adaptive=config
    )
    now, rate, last_change = 0.0, breaker.failure_rate, None
    for dt, draw in steps:
        now += dt
        permit = breaker.acquire(now)
        if permit is not None:
            breaker.record(permit, draw < 0.3, False, now)
        new = breaker.failure_rate
        assert config.min_rate <= new <= config.max_rate
        if new != rate:
            assert 0.8 - 1e-12 <= new / rate <= 1.25 + 1e-12
            assert last_change is None or now - last_change >= config.interval
            last_change = now
        rate = new


# -- the throttle ---------------------------------------------------------------------------
class Draws:
    """An injectable random(): the given values, in turn."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0) if self.values else 0.5


def test_probability_follows_the_sre_formula():
    state = ThrottleState(Throttle(k=2, window=10, random=lambda: 0.999))
    for i in range(9):
        assert state.admit(float(i) / 10)
        state.outcome(float(i) / 10, failed=i >= 2)  # 2 accepts of 9 requests
    assert state.probability(1.0) == pytest.approx((9 - 2 * 2) / (9 + 1))


def test_nothing_is_rejected_while_half_the_calls_succeed():
    state = ThrottleState(Throttle(random=lambda: 0.0))  # a draw of 0 would reject at any p > 0
    for i in range(1000):
        now = i * 0.01
        assert state.admit(now)
        state.outcome(now, failed=i % 2 == 1)
    assert state.rejected == 0


def test_a_throttled_breaker_rejects_by_the_draw_and_says_throttled():
    breaker = Breaker(
        CircuitBreaker(min_calls=5, throttle=Throttle(k=2, random=Draws(*[0.99] * 9, 0.95, 0.1)))
    )
    for i in range(10):
        permit = breaker.acquire(i * 0.1)
        assert permit is not None
        breaker.record(permit, True, False, i * 0.1)  # every call failed (9 draws: p > 0)
    assert breaker.state(1.0) is State.CLOSED  # a throttle does not open on the failure rate
    assert breaker.tuner.probability(1.0) == pytest.approx(10 / 11)
    assert breaker.acquire(1.0) is not None  # drew 0.95 >= 10/11
    assert breaker.acquire(1.0) is None  # drew 0.1 < 11/12
    assert breaker.rejection_reason() == "throttled"
    assert breaker.tuner.rejected == 1


def test_consecutive_failures_still_open_a_throttled_breaker():
    breaker = Breaker(CircuitBreaker(consecutive_failures=3, throttle=Throttle(random=lambda: 1.0)))
    for i in range(3):
        breaker.record(breaker.acquire(i), True, False, i)
    assert breaker.state(3) is State.OPEN
    assert breaker.acquire(3) is None and breaker.rejection_reason() == "open"


def test_accepts_coming_back_bring_the_rejections_down_to_none():
    draw = random.Random(7).random
    breaker = Breaker(CircuitBreaker(throttle=Throttle(k=2, window=10, random=draw)))
    rejected_late = 0
    for i in range(400):
        now = i * 0.1
        permit = breaker.acquire(now)
        if permit is None:
            rejected_late += now >= 30
            continue
        breaker.record(permit, now < 10, False, now)  # down for 10 s, then healthy
    assert breaker.tuner.rejected > 0
    assert rejected_late == 0  # 20 s after recovery the window holds only accepts


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 3), st.booleans(), st.floats(0, 1)), max_size=300),
    st.floats(1.01, 4),
    st.floats(0.1, 1),
)
def test_throttle_rejects_with_the_formula_over_a_plain_count_and_never_above_its_cap(
    steps, k, cap
):
    draws: list[float] = []
    state = ThrottleState(Throttle(k=k, window=10, max_rejection=cap, random=lambda: draws[-1]))
    now, log = 0.0, []  # (time, accepted?) of every request asked for
    for dt, failed, draw in steps:
        now += dt
        # the window keeps what fell in its 10 slices of 1 s: a plain count of the same
        kept = [accepted for t, accepted in log if t // 1 > now // 1 - 10]
        requests, accepts = len(kept), sum(kept)
        expected = min(cap, max(0.0, (requests - k * accepts) / (requests + 1)))
        assert state.probability(now) == pytest.approx(expected)
        draws.append(draw)
        admitted = state.admit(now)
        assert admitted == (expected == 0 or draw >= expected)
        if admitted:
            state.outcome(now, failed)
        log.append((now, admitted and not failed))
