"""Bulkhead bookkeeping, timeouts and windows, without threads or sockets."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from seawall import Bulkhead, DeadlineExceeded, Policy, Timeouts
from seawall.pipeline import _Run
from seawall.policies.bulkhead import Admission, BulkheadState
from seawall.policies.windows import CallWindow, TimedCallWindow, TimeWindow


class Waiter:
    def __init__(self):
        self.woken = 0

    def wake(self):
        self.woken += 1


def test_slots_then_fifo_queue_then_rejection():
    state = BulkheadState(Bulkhead(max_concurrent=2, max_queued=2))
    assert state.try_acquire() and state.try_acquire() and not state.try_acquire()
    a, b, c = Waiter(), Waiter(), Waiter()
    assert state.enqueue(a) is Admission.QUEUED
    assert state.enqueue(b) is Admission.QUEUED
    assert state.enqueue(c) is Admission.REJECTED
    state.release()  # handed to the oldest waiter, not freed
    assert (a.woken, b.woken, state.active, state.queued) == (1, 0, 2, 1)
    state.release()
    assert (b.woken, state.active, state.queued) == (1, 2, 0)
    state.release()
    state.release()
    assert state.active == 0


def test_no_barging_past_the_queue():
    state = BulkheadState(Bulkhead(max_concurrent=1, max_queued=5))
    assert state.try_acquire()
    waiter = Waiter()
    state.enqueue(waiter)
    state.release()  # the slot goes to the waiter...
    assert not state.try_acquire()  # ...not to a newcomer
    assert waiter.woken == 1


def test_withdraw_tells_whether_a_slot_was_handed_over():
    state = BulkheadState(Bulkhead(max_concurrent=1, max_queued=5))
    state.try_acquire()
    gave_up, lucky = Waiter(), Waiter()
    state.enqueue(gave_up)
    state.enqueue(lucky)
    assert state.withdraw(gave_up) is True  # left the queue, owns nothing
    state.release()
    assert state.withdraw(lucky) is False  # had been handed a slot: must release it
    state.release()
    assert (state.active, state.queued) == (0, 0)


def test_zero_queue_rejects_at_once():
    state = BulkheadState(Bulkhead(max_concurrent=1, max_queued=0))
    state.try_acquire()
    assert state.enqueue(Waiter()) is Admission.REJECTED


class _Request:
    """Just enough of an exchange for the pipeline's decisions before an attempt."""

    errors = {DeadlineExceeded: DeadlineExceeded}


def test_deadline_clips_attempt_timeouts():
    now = [100.0]

    def run_with(timeouts):
        policy = Policy(
            "d",
            retry=None,
            breaker=None,
            bulkhead=None,
            timeouts=timeouts,
            telemetry=False,
            clock=lambda: now[0],
        )
        return _Run(policy, _Request())

    run = run_with(Timeouts(attempt=2, total=5))
    assert (run.before_attempt(), run.clipped) == (2, False)
    now[0] = 104
    assert (run.before_attempt(), run.clipped) == (1, True)
    now[0] = 105
    assert run.before_attempt() is None
    assert isinstance(run.error, DeadlineExceeded)
    assert "ran out before attempt 3" in str(run.error)
    now[0] = 0
    unlimited = run_with(None)
    now[0] = 1e9
    assert (unlimited.before_attempt(), unlimited.clipped) == (math.inf, False)


def test_time_window_expires_whole_slices():
    window = TimeWindow(span=10, fields=1, buckets=10)
    window.add(0.5, 0)
    window.add(5.5, 0, 2)
    window.advance(9.9)
    assert window.totals == [3]
    window.advance(10.5)  # slice [0, 1) is now older than the span
    assert window.totals == [2]
    window.advance(1000)
    assert window.totals == [0]


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=3, allow_nan=False),
            st.integers(min_value=0, max_value=1),
        ),
        min_size=1,
        max_size=60,
    )
)
@settings(max_examples=300, deadline=None)
def test_time_window_totals_match_a_plain_count(steps):
    """Whatever the steps between calls (within a slice, across one, across the whole span),
    the totals are the adds of the slices still in the span, as a plain count finds them."""
    span, buckets = 2.0, 4
    width = span / buckets
    window = TimeWindow(span=span, fields=2, buckets=buckets)
    now, added = 0.0, []
    for step, field in steps:
        now += step
        window.add(now, field)
        added.append((now, field))
        newest = now // width
        kept = [f for at, f in added if at // width > newest - buckets]
        assert window.totals == [kept.count(0), kept.count(1)]


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=3, allow_nan=False), st.booleans(), st.booleans()
        ),
        min_size=1,
        max_size=60,
    )
)
@settings(max_examples=200, deadline=None)
def test_call_windows_count_what_a_plain_count_of_their_calls_finds(calls):
    """Both breaker windows: `record` returns (calls, failures, slow) of the calls still in the
    window, and `counts` says the same."""
    span, buckets, size = 2.0, 4, 5
    width = span / buckets
    by_time, by_count = TimedCallWindow(span, buckets=buckets), CallWindow(size)
    now, seen = 0.0, []
    for step, failed, slow in calls:
        now += step
        seen.append((now, failed, slow))
        newest = now // width
        kept = [(f, s) for at, f, s in seen if at // width > newest - buckets]
        expected = (len(kept), sum(f for f, _ in kept), sum(s for _, s in kept))
        assert tuple(by_time.record(now, failed, slow)) == expected
        assert tuple(by_time.counts(now)) == expected
        last = [(f, s) for _, f, s in seen[-size:]]
        expected = (len(last), sum(f for f, _ in last), sum(s for _, s in last))
        assert tuple(by_count.record(now, failed, slow)) == expected
        assert tuple(by_count.counts(now)) == expected
