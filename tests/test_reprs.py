"""Readable objects: what a breaker, bulkhead, retry budget and dependency state say they are,
read at the policy's (fake) clock; the window counts as a named tuple."""

from __future__ import annotations

import pytest

import seawall
from seawall.policies.breaker import Breaker, State
from seawall.policies.bulkhead import BulkheadState
from seawall.policies.retry import BudgetState
from seawall.policies.windows import CallCounts, CallWindow, TimedCallWindow
from seawall.testing import FakeClock


def make(clock: FakeClock, **breaker: object) -> seawall.Policy:
    return seawall.Policy(
        "api",
        breaker=seawall.CircuitBreaker(
            **{"min_calls": 4, "window": 30.0, "open_for": 5.0, **breaker}  # type: ignore[arg-type]
        ),
        bulkhead=seawall.Bulkhead(max_concurrent=3, max_queued=2, queue_timeout=0.5),
        **clock.policy_args(),
    )


def outcomes(policy: seawall.Policy, *failed: bool, slow: bool = False) -> Breaker:
    breaker = policy.dependency("api").breaker()
    assert breaker is not None
    for failure in failed:
        permit = breaker.acquire(policy.now())
        assert permit is not None
        breaker.record(permit, failure, slow, policy.now())
    return breaker


def test_a_breaker_through_its_states():
    clock = FakeClock()
    policy = make(clock)
    breaker = outcomes(policy, True, False)
    tail = "window=30s opens at 50% over >= 4 calls>"
    assert repr(breaker) == f"<CircuitBreaker 'api' closed failures=1/2 {tail}"
    outcomes(policy, True, True)
    assert repr(breaker) == f"<CircuitBreaker 'api' open probe in 5s failures=3/4 {tail}"
    clock.advance(2.0)
    assert repr(breaker) == f"<CircuitBreaker 'api' open probe in 3s failures=3/4 {tail}"
    clock.advance(3.0)  # open_for is up: it reads half-open, at the policy's clock
    assert breaker.state() is State.HALF_OPEN
    assert repr(breaker).startswith("<CircuitBreaker 'api' half_open probes=0/1 failures=3/4")
    breaker.isolate(policy.now(), by="alice")
    assert repr(breaker).startswith("<CircuitBreaker 'api' isolated (by hand: alice) failures=")
    breaker.reset(policy.now())
    breaker.disable(policy.now())
    assert repr(breaker) == f"<CircuitBreaker 'api' disabled (by hand) failures=0/0 {tail}"
    breaker.reset(policy.now())
    breaker.health_down(policy.now(), "probe failed")
    assert repr(breaker).startswith("<CircuitBreaker 'api' open held open by health checks")


def test_a_count_window_and_slow_calls_are_shown():
    clock = FakeClock()
    policy = make(clock, window=10, window_type="count", slow_call_duration=1.0)
    breaker = outcomes(policy, False, slow=True)
    assert repr(breaker) == (
        "<CircuitBreaker 'api' closed failures=0/1 slow=1/1 window=last 10 calls "
        "opens at 50% over >= 4 calls>"
    )


def test_the_queries_read_the_policy_clock_without_an_argument():
    clock = FakeClock()
    policy = make(clock)
    breaker = outcomes(policy, True, True, True, True)
    assert breaker.state() is State.OPEN and breaker.retry_in() == 5.0
    clock.advance(1.5)
    assert breaker.retry_in() == 3.5 and breaker.view().retry_in == 3.5
    assert breaker.state(clock.now + 10) is State.HALF_OPEN  # `now` still wins when given
    clock.advance(30.5)  # the failures age out of the 30 s window
    assert breaker.counts() == CallCounts(0, 0, 0)
    budget = policy.dependency("api").budget
    assert budget is not None and budget.balance() == budget.balance(clock.now) == 100.0


def test_the_window_counts_are_a_named_tuple():
    timed = TimedCallWindow(10.0)
    timed.record(1.0, True, False)
    timed.record(2.0, False, True)
    counts = timed.counts(3.0)
    assert counts == CallCounts(calls=2, failures=1, slow=1)
    assert (counts.calls, counts.failures, counts.slow) == (2, 1, 1)
    assert counts._fields == ("calls", "failures", "slow")
    ring = CallWindow(2)
    for failed in (True, False, False):
        ring.record(0.0, failed, False)
    assert ring.counts(0.0) == CallCounts(calls=2, failures=0, slow=0)
    assert CallCounts.__doc__ and "failures" in CallCounts.__doc__


def test_a_breaker_made_by_hand_has_no_clock_and_says_so():
    breaker = Breaker(seawall.CircuitBreaker(), "solo")
    assert repr(breaker).startswith("<CircuitBreaker 'solo' closed failures=0/0")
    with pytest.raises(TypeError, match=r"breaker 'solo' has no clock .* pass `now`"):
        breaker.state()
    assert breaker.state(0.0) is State.CLOSED
    budget = BudgetState(seawall.RetryBudget())
    with pytest.raises(TypeError, match="pass `now`"):
        budget.balance()
    assert repr(budget) == "<RetryBudget 20% of requests + 10/s over 10s>"


def test_a_bulkhead_shows_its_slots_and_queue():
    clock = FakeClock()
    bulkhead = make(clock).dependency("api").bulkhead
    assert bulkhead is not None
    assert repr(bulkhead) == "<Bulkhead 'api' active=0/3 queued=0/2 queue_timeout=0.5s>"
    assert bulkhead.try_acquire() and bulkhead.try_acquire()
    assert repr(bulkhead) == "<Bulkhead 'api' active=2/3 queued=0/2 queue_timeout=0.5s>"
    unnamed = BulkheadState(seawall.Bulkhead(queue_timeout=None))
    assert repr(unnamed) == "<Bulkhead '' active=0/100 queued=0/100 queue_timeout=none>"


def test_a_dependency_state_shows_each_part():
    clock = FakeClock()
    policy = make(clock)
    outcomes(policy, True, False, False)
    dependency = policy.dependency("api")
    assert dependency.bulkhead is not None and dependency.bulkhead.try_acquire()
    assert repr(dependency) == (
        "<DependencyState 'api' breaker=closed failures=1/3 bulkhead=1/3 queued=0/2 "
        "budget=100 retries left>"
    )
    assert repr(policy.dependency("api").budget) == (
        "<RetryBudget 100 retries left: 20% of requests + 10/s over 10s>"
    )
    bare = seawall.Policy("bare", breaker=None, bulkhead=None, retry=None, **clock.policy_args())
    assert repr(bare.dependency("bare")) == (
        "<DependencyState 'bare' breaker=none bulkhead=none budget=none>"
    )


def test_a_keyed_dependency_counts_its_breakers():
    clock = FakeClock()
    policy = seawall.Policy(
        "keyed",
        breaker=seawall.CircuitBreaker(key=lambda target: target.path, min_calls=1),
        **clock.policy_args(),
    )
    dependency = policy.dependency("keyed")
    for key, failed in (("/a", True), ("/b", False)):
        breaker = dependency.breaker(key)
        assert breaker is not None
        breaker.record(breaker.acquire(clock.now), failed, False, clock.now)  # type: ignore[arg-type]
    assert repr(dependency).startswith("<DependencyState 'keyed' breakers=2 keys (1 not closed)")
