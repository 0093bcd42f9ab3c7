"""The pipeline proven without sockets: `Policy.run` and `Policy.run_async` drive a scripted
exchange on a fake clock, with the policy's sleeps injected, over outcome scripts Hypothesis
writes (statuses, transport errors, Retry-After values, slow attempts, cancellations, raising
predicates and fallbacks). Whatever the script, every request:

- ends with exactly one terminal event, whose outcome matches how the call ended;
- raises only what the caller can expect: the transport's error, a seawall rejection, the
  user's own callback error, or the interruption itself;
- gives back its bulkhead slot and any half-open probe permit;
- discards every response it does not return, and never the one it returns;
- makes at most `max_attempts` attempts;
- waits, before each retry, no longer than its cap and less than the time left.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seawall
from seawall import ErrorKind
from seawall import events as ev
from seawall.errors import PLAIN, ResilienceError
from seawall.exchange import Target
from seawall.policies.breaker import State
from seawall.policies.classify import TIMEOUTS
from seawall.telemetry import logs

WALL0 = 1_700_000_000.0  # the wall clock when the fake monotonic clock reads 0

#: Retry-After values: (header, the most it may ask to wait, in seconds; None: unreadable).
RETRY_AFTERS = [
    (None, None),
    ("0", 0.0),
    ("1", 1.0),
    ("120", 120.0),
    (email.utils.formatdate(WALL0 + 2, usegmt=True), 2.0),  # IMF-fixdate
    ("Tue Nov 14 22:13:22 2023", 2.0),  # asctime, WALL0 + 2 s read as UTC
    ("\u00b2", None),
    ("\u0665", None),
    ("\uff11", None),
    ("Mon, 01 Jan 2024 00:00:00 +99999999999999999999", None),
    ("soon", None),
]


class Interrupt(BaseException):
    """What a caller's interruption looks like to a sync driver (as KeyboardInterrupt would)."""


class TransportFailure(Exception):
    """A scripted client error of a given kind."""

    def __init__(self, kind: ErrorKind | None) -> None:
        super().__init__(f"scripted {kind}")
        self.kind = kind


class CallbackBug(Exception):
    """A user's predicate or fallback that raises."""


@dataclass(frozen=True)
class Step:
    """One attempt's outcome: a status (with a Retry-After), an error, or an interruption;
    `takes` seconds on the fake clock (the client's own timeout cuts it at the attempt's)."""

    status: int | None = 200
    retry_after: int = 0  # index in RETRY_AFTERS
    error: ErrorKind | None = None
    interrupt: bool = False
    takes: float = 0.01


@dataclass(frozen=True)
class Callbacks:
    predicate: str = "none"  # none | default | retry | stop | raise
    fallback: str = "none"  # none | keep | replace | raise


@dataclass
class Response:
    status: int
    retry_after: str | None
    discarded: int = 0
    held: list[float] = field(default_factory=list)  # the time left, each time it was held


@dataclass
class World:
    """The fake clock, and what the exchange and the sleeps saw."""

    now: float = 0.0
    sleeps: list[tuple[float, float]] = field(default_factory=list)  # (delay, time left)
    deadline: float = 0.0
    interrupt_sleep: bool = False

    def sleep(self, delay: float) -> None:
        self.sleeps.append((delay, self.deadline - self.now))
        if self.interrupt_sleep:
            raise Interrupt("interrupted while backing off")
        self.now += delay

    async def async_sleep(self, delay: float) -> None:
        self.sleeps.append((delay, self.deadline - self.now))
        if self.interrupt_sleep:
            raise asyncio.CancelledError()
        self.now += delay


class ScriptedExchange:
    """An `Exchange` whose attempts follow a script (the async one wraps it)."""

    errors = PLAIN
    cut_after = None  # the scripted client enforces the timeout it is given
    loop = None

    def __init__(self, world: World, steps: list[Step], method: str = "GET") -> None:
        self.world = world
        self.steps: Iterator[Step] = iter(steps)
        self.method = method
        self.request = object()
        self.telemetry: Any = None
        self.sent: list[Response] = []

    def origin(self) -> str:
        return "http://model:80"

    def target(self) -> Target:
        return Target(self.method, "http", "model", 80, "/")

    def has_header(self, name: str) -> bool:
        return False

    def url(self) -> str:
        return "http://model:80/"

    def set_header(self, name: str, value: str) -> None:
        pass

    def protocol(self, response: Response) -> str | None:
        return "1.1"

    def send(self, timeout: float, time_left: float) -> Response:
        assert timeout <= time_left  # an attempt never outlasts the deadline
        step = next(self.steps, Step())
        if step.interrupt:
            raise Interrupt("interrupted during an attempt")
        if step.takes > timeout:
            self.world.now += timeout
            raise TransportFailure(ErrorKind.READ_TIMEOUT)
        self.world.now += step.takes
        if step.error is not None or step.status is None:
            raise TransportFailure(step.error)
        response = Response(step.status, RETRY_AFTERS[step.retry_after][0])
        self.sent.append(response)
        return response

    def status(self, response: Response) -> int:
        return response.status

    def header(self, response: Response, name: str) -> str | None:
        return response.retry_after if name == "retry-after" else None

    def discard(self, response: Response) -> None:
        response.discarded += 1

    def hold(self, response: Response, time_left: float, dependency: str) -> None:
        assert dependency == "model"
        response.held.append(time_left)

    def rewind(self) -> bool:
        return True

    def error_kind(self, error: BaseException) -> ErrorKind | None:
        return error.kind if isinstance(error, TransportFailure) else None


class AsyncScriptedExchange(ScriptedExchange):
    async def _sent(self, timeout: float, time_left: float) -> Response:
        try:
            return ScriptedExchange.send(self, timeout, time_left)
        except Interrupt:
            raise asyncio.CancelledError() from None

    def send(self, timeout: float, time_left: float) -> Any:  # an awaitable, as AsyncExchange's
        return self._sent(timeout, time_left)

    async def _discarded(self, response: Response) -> None:
        response.discarded += 1

    def discard(self, response: Response) -> Any:
        return self._discarded(response)


# -- the scripts ---------------------------------------------------------------------------
steps = st.builds(
    Step,
    status=st.sampled_from([200, 201, 404, 429, 500, 503, 503, None]),
    retry_after=st.integers(0, len(RETRY_AFTERS) - 1),
    error=st.sampled_from([None, None, *ErrorKind]),
    interrupt=st.sampled_from([False] * 15 + [True]),
    takes=st.sampled_from([0.0, 0.01, 0.2, 0.6, 3.0]),
)
requests = st.tuples(
    st.lists(steps, min_size=1, max_size=5),
    st.sampled_from(["GET", "GET", "POST"]),
    st.sampled_from([False] * 7 + [True]),  # interrupted while backing off
)
policies = st.fixed_dictionaries(
    {
        "max_attempts": st.integers(1, 4),
        "backoff": st.sampled_from(
            [
                seawall.Backoff.constant(0.05),
                seawall.Backoff.exponential(base=0.1, cap=0.5),
                seawall.Backoff.exponential(base=0.1, cap=0.3, jitter="decorrelated"),
            ]
        ),
        "budget": st.sampled_from([None, seawall.RetryBudget(ratio=0.1, min_per_second=0.5)]),
        "max_retry_after": st.sampled_from([1.5, 60.0]),
        "attempt": st.sampled_from([None, 0.5, 1.0]),
        "total": st.sampled_from([None, 1.2, 4.0]),
        "callbacks": st.builds(
            Callbacks,
            predicate=st.sampled_from(["none", "default", "retry", "stop", "raise"]),
            fallback=st.sampled_from(["none", "keep", "replace", "raise"]),
        ),
    }
)


def make_policy(world: World, options: dict[str, Any]) -> seawall.Policy:
    callbacks: Callbacks = options["callbacks"]

    def predicate(info: seawall.AttemptInfo) -> bool | None:
        if callbacks.predicate == "raise" and info.status in (500, 503):
            raise CallbackBug("predicate")
        return {"default": None, "retry": True, "stop": False}.get(callbacks.predicate)

    def fallback(ctx: seawall.FallbackContext) -> Any:
        if callbacks.fallback == "raise":
            raise CallbackBug("fallback")
        return Response(299, None) if callbacks.fallback == "replace" else None

    attempt, total = options["attempt"], options["total"]
    if attempt is not None and total is not None and attempt > total:
        attempt = total
    policy = seawall.Policy(
        "model",
        retry=seawall.Retry(
            max_attempts=options["max_attempts"],
            backoff=options["backoff"],
            budget=options["budget"],
            max_retry_after=options["max_retry_after"],
            predicate=None if callbacks.predicate == "none" else predicate,
        ),
        breaker=seawall.CircuitBreaker(consecutive_failures=2, min_calls=2, open_for=0.5),
        bulkhead=seawall.Bulkhead(max_concurrent=1, max_queued=0),
        timeouts=seawall.Timeouts(attempt=attempt, total=total),
        fallback=None if callbacks.fallback == "none" else fallback,
        telemetry=False,
        clock=lambda: world.now,
        wall_clock=lambda: WALL0 + world.now,
        random=lambda: 0.5,
        sleep=world.sleep,
        async_sleep=world.async_sleep,
    )
    policy.unsubscribe(logs.log_event)  # thousands of breaker openings: nothing to read
    return policy


def check(
    policy: seawall.Policy,
    world: World,
    exchange: ScriptedExchange,
    finished: list[ev.RequestFinished],
    outcome: Any,
    raised: BaseException | None,
    options: dict[str, Any],
    sleeps_before: int,
) -> None:
    # exactly one terminal event, matching how the call ended
    assert len(finished) == 1, finished
    end = finished[0]
    if raised is None:
        assert end.outcome in ("success", "failure", "fallback")
        assert end.error is None or end.outcome == "fallback"  # it replaced an error
        assert (end.outcome == "fallback") == (outcome.status == 299)
    elif isinstance(raised, (Interrupt, asyncio.CancelledError)):
        assert end.outcome == "cancelled" and end.error is raised
    else:
        # nothing foreign escapes: the transport's error, a rejection or the user's own bug
        assert isinstance(raised, (TransportFailure, ResilienceError, CallbackBug)), raised
        assert end.outcome == ("rejected" if isinstance(raised, ResilienceError) else "failure")
        assert end.error is raised
    # the bulkhead slot and any probe permit are back
    state = policy.dependency("model")
    assert state.bulkhead is not None and state.bulkhead.active == 0
    breaker = state.breaker()
    assert breaker is not None
    if breaker.state(world.now) is State.HALF_OPEN:
        permit = breaker.acquire(world.now)
        assert permit is not None, "a half-open probe permit was never given back"
        breaker.release(permit)
    # every response not returned was discarded, exactly once; the one returned never, and it
    # alone was held, once, with the time left to the deadline
    for response in exchange.sent:
        assert response.discarded == (0 if response is outcome else 1), (response, outcome)
        assert response.held == ([world.deadline - world.now] if response is outcome else [])
    # a timeout of the client's never escapes once the deadline has run out: that is the
    # deadline's (DeadlineExceeded, with the timeout as its cause)
    if isinstance(raised, TransportFailure) and raised.kind in TIMEOUTS:
        assert world.now < world.deadline, (raised, world.now, world.deadline)
    # at most max_attempts attempts
    assert end.attempts <= options["max_attempts"]
    # each wait: within its cap (the backoff's, or a readable Retry-After's) and the time left
    readable = [most for _, most in RETRY_AFTERS if most is not None]
    ceiling = max(
        [options["backoff"].cap] + [most for most in readable if most <= options["max_retry_after"]]
    )
    for delay, left in world.sleeps[sleeps_before:]:
        assert 0 <= delay <= ceiling
        assert delay < left


def run_script(
    options: dict[str, Any], script: list[tuple[list[Step], str, bool]], asynchronous: bool
) -> list[tuple[Any, BaseException | None]]:
    """Each request of `script` through one policy, checked; what each returned or raised."""
    world = World()
    policy = make_policy(world, options)
    finished: list[ev.RequestFinished] = []
    policy.subscribe(finished.append, ev.RequestFinished)
    total = options["total"]
    ends = []
    for request_steps, method, interrupt_sleep in script:
        world.now += 1.0  # time passes between requests (the breaker may half-open)
        world.deadline = world.now + (total if total is not None else float("inf"))
        world.interrupt_sleep = interrupt_sleep
        sleeps_before = len(world.sleeps)
        finished.clear()
        outcome: Any = None
        raised: BaseException | None = None
        if asynchronous:
            exchange: ScriptedExchange = AsyncScriptedExchange(world, request_steps, method)
            try:
                outcome = LOOP.run_until_complete(policy.run_async(exchange))
            except BaseException as error:  # noqa: BLE001 - checked below
                raised = error
        else:
            exchange = ScriptedExchange(world, request_steps, method)
            try:
                outcome = policy.run(exchange)
            except BaseException as error:  # noqa: BLE001 - checked below
                raised = error
        check(policy, world, exchange, finished, outcome, raised, options, sleeps_before)
        ends.append((outcome, raised))
    return ends


LOOP = asyncio.new_event_loop()
SCRIPTS = st.lists(requests, min_size=1, max_size=4)


@given(options=policies, script=SCRIPTS)
@settings(max_examples=300, deadline=None)
def test_sync_driver_keeps_every_invariant(options, script):
    run_script(options, script, asynchronous=False)


@given(options=policies, script=SCRIPTS)
@settings(max_examples=300, deadline=None)
def test_async_driver_keeps_every_invariant(options, script):
    run_script(options, script, asynchronous=True)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_an_unreadable_retry_after_on_the_one_connection_is_closed_and_retried(asynchronous):
    """Item 1 of issue 11 as a fixed script: a 503 with `Retry-After: ²`, then a 200."""
    options = {
        "max_attempts": 3,
        "backoff": seawall.Backoff.constant(0.05),
        "budget": None,
        "max_retry_after": 60.0,
        "attempt": None,
        "total": None,
        "callbacks": Callbacks(),
    }
    [(outcome, raised)] = run_script(
        options, [([Step(503, retry_after=6), Step(200)], "GET", False)], asynchronous
    )
    assert raised is None and outcome.status == 200


# -- a timeout at the deadline is the deadline's --------------------------------------------
def _timeouts_policy(max_attempts: int, backoff: float, total: float) -> dict[str, Any]:
    # binary fractions: the fake clock lands on the deadline exactly
    return {
        "max_attempts": max_attempts,
        "backoff": seawall.Backoff.constant(backoff),
        "budget": None,
        "max_retry_after": 60.0,
        "attempt": 0.125,
        "total": total,
        "callbacks": Callbacks(),
    }


TIMES_OUT = Step(takes=3.0)  # longer than any attempt's timeout


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("first", "backoff", "total"),
    [
        # a 503, then an attempt that starts with exactly its timeout left (so it is not cut
        # by the deadline) and times out at the deadline: what a busy machine makes of
        # test_conformance's total-deadline test
        (Step(503, takes=0.0625), 0.0625, 0.25),
        # a timeout that leaves 0.125 s, exactly the wait before the next attempt: no room
        (TIMES_OUT, 0.125, 0.5),
    ],
    ids=["ends-at-the-deadline", "no-room-for-the-wait"],
)
def test_a_timeout_that_leaves_no_room_for_another_attempt_is_the_deadline(
    asynchronous, first, backoff, total
):
    options = _timeouts_policy(5, backoff, total)
    [(outcome, raised)] = run_script(
        options, [([first, TIMES_OUT, TIMES_OUT], "GET", False)], asynchronous
    )
    assert isinstance(raised, seawall.DeadlineExceeded), raised
    cause = raised.__cause__
    assert isinstance(cause, TransportFailure) and cause.kind is ErrorKind.READ_TIMEOUT
    assert raised.dependency == "model"


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_timeout_with_time_to_spare_stays_the_clients(asynchronous):
    # the last attempt (max_attempts=1) times out 0.125 s into a 4 s deadline: the attempt
    # timeout ended it, not the deadline
    options = _timeouts_policy(1, 0.0625, 4.0)
    [(outcome, raised)] = run_script(options, [([TIMES_OUT], "GET", False)], asynchronous)
    assert isinstance(raised, TransportFailure) and raised.kind is ErrorKind.READ_TIMEOUT
