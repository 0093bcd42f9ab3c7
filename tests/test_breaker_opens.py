"""The breaker opens when its configuration says it should (issue 11, item 3): sans-I/O, on a
fake clock (every call at the same instant unless a test moves it)."""

from collections import deque
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seawall import CircuitBreaker, Policy, Timeouts
from seawall.config import ConfigError, load
from seawall.policies.breaker import Breaker, State


def record(breaker, failed=False, slow=False, now=0.0):
    permit = breaker.acquire(now)
    assert permit is not None, "the breaker rejected a call while closed"
    breaker.record(permit, failed, slow, now)


def test_a_count_window_smaller_than_min_calls_still_opens():
    config = CircuitBreaker(window=10, window_type="count")  # min_calls keeps its default, 20
    assert config.min_calls == 10  # clamped to what the window can hold
    breaker = Breaker(config)
    for _ in range(9):
        record(breaker, failed=True)
    assert breaker.state(0) is State.CLOSED
    record(breaker, failed=True)
    assert breaker.state(0) is State.OPEN


def test_min_calls_within_a_count_window_and_in_a_time_window_is_kept():
    assert CircuitBreaker(window=10, window_type="count", min_calls=4).min_calls == 4
    assert CircuitBreaker(window=10, min_calls=50).min_calls == 50  # seconds: no bound on calls


@pytest.mark.parametrize("window", [{"window": 100, "window_type": "count"}, {"window": 60}])
@pytest.mark.parametrize("kind", ["failed", "slow"])
def test_seven_failures_in_a_hundred_calls_reach_a_rate_of_0_07(window, kind):
    rates = (
        {"failure_rate": 0.07}
        if kind == "failed"
        else {"slow_call_duration": 1.0, "slow_call_rate": 0.07}
    )
    breaker = Breaker(CircuitBreaker(min_calls=100, **window, **rates))
    for _ in range(93):
        record(breaker)
    for _ in range(6):
        record(breaker, **{kind: True})
    assert breaker.state(0) is State.CLOSED
    record(breaker, **{kind: True})  # 7 / 100 == 0.07, though 0.07 * 100 > 7 in floats
    assert breaker.state(0) is State.OPEN


exact_rates = st.integers(1, 3).flatmap(
    lambda digits: st.integers(1, 10**digits).map(lambda k: Fraction(k, 10**digits))
)


@given(
    rate=exact_rates,
    size=st.integers(1, 40),
    min_calls=st.integers(1, 60),
    count_window=st.booleans(),
    slow=st.booleans(),
    outcomes=st.lists(st.booleans(), max_size=120),
)
def test_opens_exactly_when_the_ratio_reaches_a_decimal_rate(
    rate, size, min_calls, count_window, slow, outcomes
):
    """Against exact arithmetic: after each call, open iff the window holds at least min_calls
    (at most the window's size, for a count window) and bad / calls >= rate."""
    window = {"window": size, "window_type": "count"} if count_window else {"window": 30.0}
    rates = (
        {"slow_call_duration": 1.0, "slow_call_rate": float(rate)}
        if slow
        else {"failure_rate": float(rate)}
    )
    breaker = Breaker(CircuitBreaker(min_calls=min_calls, **window, **rates))
    seen: deque[bool] = deque(maxlen=size if count_window else None)
    needed = min(min_calls, size) if count_window else min_calls
    for bad in outcomes:
        record(breaker, failed=bad and not slow, slow=bad and slow)
        seen.append(bad)
        should_open = len(seen) >= needed and Fraction(sum(seen), len(seen)) >= rate
        assert (breaker.state(0) is State.OPEN) == should_open, (len(seen), sum(seen))
        if should_open:
            return


def test_a_time_window_shorter_than_two_attempt_timeouts_is_rejected():
    with pytest.raises(ValueError) as info:
        Policy(breaker=CircuitBreaker(window=5), timeouts=Timeouts(attempt=10))
    assert str(info.value) == (
        "Policy: breaker window (5 s) must be at least twice the attempt timeout (10 s): attempts "
        "that time out need a window spanning several of them (lengthen breaker.window or "
        "shorten timeouts.attempt)"
    )


@pytest.mark.parametrize(
    "breaker, timeouts",
    [
        (CircuitBreaker(window=20), Timeouts(attempt=10)),  # exactly twice
        (CircuitBreaker(window=5, window_type="count"), Timeouts(attempt=10)),  # calls, not seconds
        (CircuitBreaker(window=5), Timeouts(attempt=None, total=30)),
        (CircuitBreaker(window=5), None),
        (None, Timeouts(attempt=10)),
    ],
)
def test_windows_that_span_two_attempts_or_count_calls_are_accepted(breaker, timeouts):
    assert Policy(breaker=breaker, timeouts=timeouts).breaker is breaker


def test_the_config_file_names_the_breaker_window_too_short_for_its_attempts():
    with pytest.raises(ConfigError) as info:
        load(
            {
                "dependencies": {
                    "slow": {"match": {"host": "slow.example"}, "breaker": {"window": "5s"}}
                }
            },
            source="seawall.yaml",
        )
    assert info.value.problems == [
        (
            "dependencies.slow.breaker: breaker window (5 s) must be at least twice the attempt "
            "timeout (10 s): attempts that time out need a window spanning several of them "
            "(lengthen breaker.window or shorten timeouts.attempt)"
        )
    ]
