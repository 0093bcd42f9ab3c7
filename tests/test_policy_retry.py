"""Retry, Backoff and RetryBudget on a fake clock: no sleeping, no sockets."""

import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall import Backoff, ErrorKind, Retry, RetryBudget
from seawall.policies import retry as r
from seawall.policies.retry import BudgetState, parse_retry_after


def decide(retry: Retry, **overrides):
    args = dict(
        attempt=1,
        method_safe=True,
        unsent=False,
        retry_after=None,
        time_left=100.0,
        previous_delay=0.0,
        random=lambda: 1.0,
        replayable=lambda: True,
        withdraw_budget=lambda: True,
    )
    args.update(overrides)
    return retry.decide(**args)


def test_exponential_backoff_doubles_until_the_cap():
    backoff = Backoff.exponential(base=0.1, cap=1.0, jitter="none")
    assert [backoff.delay(n, 0, lambda: 0.5) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_linear_and_constant_backoff():
    assert [
        Backoff.linear(0.5, cap=1.2, jitter="none").delay(n, 0, lambda: 0) for n in (1, 2, 3)
    ] == [0.5, 1.0, 1.2]
    assert {Backoff.constant(0.3).delay(n, 0, lambda: 0.9) for n in (1, 5, 50)} == {0.3}


def test_huge_retry_numbers_do_not_overflow():
    assert Backoff.exponential(base=1, cap=30, jitter="none").delay(5000, 0, lambda: 0) == 30


@given(
    retry=st.integers(1, 60),
    draw=st.floats(0, 1),
    previous=st.floats(0, 100),
    jitter=st.sampled_from(["none", "full", "equal", "decorrelated"]),
    kind=st.sampled_from(["exponential", "linear", "constant"]),
)
def test_backoff_never_exceeds_its_cap_and_is_never_negative(retry, draw, previous, jitter, kind):
    backoff = Backoff(kind, base=0.05, cap=2.0, multiplier=3.0, jitter=jitter)
    delay = backoff.delay(retry, previous, lambda: draw)
    assert 0 <= delay <= 2.0


def test_jitter_ranges():
    full = Backoff.exponential(base=1, cap=8, jitter="full")
    equal = Backoff.exponential(base=1, cap=8, jitter="equal")
    assert full.delay(3, 0, lambda: 0.0) == 0 and full.delay(3, 0, lambda: 1.0) == 4
    assert equal.delay(3, 0, lambda: 0.0) == 2 and equal.delay(3, 0, lambda: 1.0) == 4
    decorrelated = Backoff.exponential(base=1, cap=8, jitter="decorrelated")
    assert (
        decorrelated.delay(2, 2.0, lambda: 0.0) == 1
        and decorrelated.delay(2, 2.0, lambda: 1.0) == 6
    )


def test_default_retryable_outcomes():
    retry = Retry()
    assert all(retry.retryable(s, None) for s in (408, 429, 500, 502, 503, 504))
    assert not any(retry.retryable(s, None) for s in (200, 301, 400, 404, 501))
    assert retry.retryable(None, ErrorKind.CONNECT) and retry.retryable(
        None, ErrorKind.READ_TIMEOUT
    )
    assert not retry.retryable(None, ErrorKind.POOL_TIMEOUT)
    assert not retry.retryable(None, None)


def test_only_idempotent_methods_unless_keyed_or_opted_in():
    retry = Retry()
    assert retry.method_safe("GET", False) and retry.method_safe("PUT", False)
    assert not retry.method_safe("POST", False) and not retry.method_safe("PATCH", False)
    assert retry.method_safe("POST", True)  # Idempotency-Key
    assert Retry(unsafe_methods=True).method_safe("POST", False)
    assert decide(retry, method_safe=False) == (None, r.UNSAFE_METHOD)
    # never sent (connection refused): safe to send again whatever the method
    assert decide(retry, method_safe=False, unsent=True).delay is not None


def test_attempts_are_bounded():
    retry = Retry(max_attempts=3)
    assert decide(retry, attempt=2).delay is not None
    assert decide(retry, attempt=3) == (None, r.ATTEMPTS_EXHAUSTED)


def test_retry_after_is_honoured_capped_and_must_fit_the_deadline():
    retry = Retry(backoff=Backoff.constant(0.1), max_retry_after=5)
    assert decide(retry, retry_after=2.0).delay == 2.0
    assert decide(retry, retry_after=0.0).delay == 0.1  # never shorter than the backoff
    assert decide(retry, retry_after=6.0) == (None, r.RETRY_AFTER_TOO_LONG)
    assert decide(retry, retry_after=2.0, time_left=1.5) == (None, r.NO_TIME_LEFT)
    assert (
        decide(Retry(respect_retry_after=False, backoff=Backoff.constant(0.1)), retry_after=9).delay
        == 0.1
    )


def test_backoff_that_cannot_fit_the_time_left_fails_fast():
    assert decide(Retry(backoff=Backoff.constant(1.0)), time_left=0.5) == (None, r.NO_TIME_LEFT)


def test_an_open_breaker_stops_retries_after_the_cheaper_checks():
    assert decide(Retry(), circuit_open=True) == (None, r.CIRCUIT_OPEN)
    assert decide(Retry(max_attempts=1), circuit_open=True) == (None, r.ATTEMPTS_EXHAUSTED)


def test_body_and_budget_are_checked_last_and_only_when_needed():
    calls = []
    retry = Retry()
    verdict = decide(
        retry,
        attempt=3,
        replayable=lambda: calls.append("rewind") or True,
        withdraw_budget=lambda: calls.append("budget") or True,
    )
    assert verdict.reason == r.ATTEMPTS_EXHAUSTED and calls == []
    assert decide(retry, replayable=lambda: False) == (None, r.BODY_NOT_REPLAYABLE)
    assert decide(retry, withdraw_budget=lambda: False) == (None, r.BUDGET_EXHAUSTED)


def test_retry_after_parses_seconds_and_http_dates():
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == pytest.approx(
        30
    )
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after(None, now) is None


#: 1994-11-06 08:49:37 UTC, the instant of RFC 9110's examples, as the fake wall clock's now.
RFC_EXAMPLE = 784111777.0


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:50:07 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:50:07 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:50:07 1994",  # asctime: no zone, read as UTC
    ],
)
def test_retry_after_reads_all_three_http_date_forms(value):
    assert parse_retry_after(value, RFC_EXAMPLE) == 30.0
    assert parse_retry_after(value, RFC_EXAMPLE + 60) == 0.0  # in the past: now


@pytest.mark.parametrize(
    "value",
    [
        "\u00b2",
        "\u0665",
        "\uff11",
        "1\u00b2",  # digits to str.isdigit(), not to RFC 9110
        "Mon, 01 Jan 2024 00:00:00 +99999999999999999999",  # OverflowError inside email.utils
        "Mon, 01 Jan 2024 00:00:00 +9999",  # an offset datetime refuses
        "Mon, 01 Jan 99999 00:00:00 GMT",  # a year datetime cannot hold
        "",
        "1.5",
        "1e3",
        "0x10",
    ],
)
def test_retry_after_that_cannot_be_read_is_absent(value):
    assert parse_retry_after(value, RFC_EXAMPLE) is None


@given(st.text(max_size=60))
@settings(max_examples=500, deadline=None)
def test_retry_after_never_raises(value):
    found = parse_retry_after(value, RFC_EXAMPLE)
    assert found is None or found >= 0
    if found is not None and value.strip().isdigit():
        assert value.strip().isascii()


def test_budget_allows_ratio_of_requests_plus_floor():
    state = BudgetState(RetryBudget(ratio=0.2, min_per_second=0, ttl=10))
    for _ in range(100):
        state.deposit(0.0)
    assert sum(state.try_withdraw(1.0) for _ in range(30)) == 20
    assert state.balance(1.0) == 0


def test_budget_floor_allows_retries_with_no_traffic():
    state = BudgetState(RetryBudget(ratio=0.2, min_per_second=1, ttl=10))
    assert sum(state.try_withdraw(0.0) for _ in range(20)) == 10


def test_budget_forgets_after_its_ttl():
    state = BudgetState(RetryBudget(ratio=0.5, min_per_second=0, ttl=10))
    for _ in range(10):
        state.deposit(0.0)
    assert sum(state.try_withdraw(0.5) for _ in range(10)) == 5
    assert not state.try_withdraw(9.0)  # requests and retries both still in the window
    assert state.balance(10.5) == 0  # both expired together
    for _ in range(4):
        state.deposit(11.0)
    assert sum(state.try_withdraw(11.0) for _ in range(10)) == 2
