"""Retry: whether to try a request again, and how long to wait first.

`Retry.decide` is the one place where that is decided; the pipeline only asks it.
"""

from __future__ import annotations

import datetime
import email.utils
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, NamedTuple

from . import _validate
from .classify import IDEMPOTENT_METHODS, RETRY_STATUSES, TRANSIENT, ErrorKind
from .windows import TimeWindow

Jitter = Literal["none", "full", "equal", "decorrelated"]
_JITTERS: tuple[str, ...] = ("none", "full", "equal", "decorrelated")
_KINDS: tuple[str, ...] = ("exponential", "linear", "constant")


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before retry number n (1 for the first retry), never more than `cap`.

    Build one with `Backoff.exponential()`, `.linear()` or `.constant()`. Jitter spreads
    retries of many clients apart: "full" draws from [0, d], "equal" from [d/2, d],
    "decorrelated" from [base, 3 * previous delay] (AWS Architecture Blog), "none" waits d.
    """

    kind: Literal["exponential", "linear", "constant"] = "exponential"
    base: float = 0.2
    cap: float = 10.0
    multiplier: float = 2.0
    jitter: Jitter = "full"

    RULES: ClassVar[_validate.Rules] = {
        "kind": _validate.Choice(*_KINDS),
        "base": _validate.seconds(),
        "cap": _validate.seconds(),
        "multiplier": _validate.Number(1),
        "jitter": _validate.Choice(*_JITTERS),
    }

    def __post_init__(self) -> None:
        owner = f"Backoff.{self.kind}" if self.kind in _KINDS else "Backoff"
        _validate.fields(self, self.RULES, owner)
        if self.cap < self.base:
            raise ValueError(f"{owner}: cap ({self.cap!r}) must be >= base ({self.base!r})")

    @classmethod
    def exponential(
        cls,
        base: float = 0.2,
        cap: float = 10.0,
        *,
        multiplier: float = 2.0,
        jitter: Jitter = "full",
    ) -> Backoff:
        """base, base*multiplier, base*multiplier**2, ... up to cap."""
        return cls("exponential", base, cap, multiplier, jitter)

    @classmethod
    def linear(cls, base: float = 0.2, cap: float = 10.0, *, jitter: Jitter = "full") -> Backoff:
        """base, 2*base, 3*base, ... up to cap."""
        return cls("linear", base, cap, 1.0, jitter)

    @classmethod
    def constant(cls, delay: float = 0.5, *, jitter: Jitter = "none") -> Backoff:
        """The same delay before every retry."""
        _validate.arguments("Backoff.constant", {"delay": cls.RULES["base"]}, {"delay": delay})
        return cls("constant", delay, delay, 1.0, jitter)

    def delay(self, retry: int, previous: float, random: Callable[[], float]) -> float:
        """The wait before retry number `retry`; `previous` is the last wait (for decorrelated)."""
        if self.jitter == "decorrelated":
            high = max(self.base, previous * 3)
            return min(self.cap, self.base + random() * (high - self.base))
        if self.kind == "exponential":
            try:
                raw = min(self.cap, self.base * self.multiplier ** (retry - 1))
            except OverflowError:
                raw = self.cap
        elif self.kind == "linear":
            raw = min(self.cap, self.base * retry)
        else:
            raw = self.base
        if self.jitter == "full":
            return raw * random()
        if self.jitter == "equal":
            return raw / 2 + random() * raw / 2
        return raw


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """Retries may be at most `ratio` of the requests of the last `ttl` seconds, plus a floor of
    `min_per_second` retries per second (Finagle's RetryBudget; Envoy's default ratio is 20%).

    It stops a retry storm: when a dependency fails outright, traffic to it grows by at most
    `ratio` instead of multiplying by the number of attempts.
    """

    ratio: float = 0.2
    min_per_second: float = 10.0
    ttl: float = 10.0

    RULES: ClassVar[_validate.Rules] = {
        "ratio": _validate.ratio(zero=True),
        "min_per_second": _validate.Number(0, what="a number of retries per second"),
        "ttl": _validate.Number(1, high=60, what="a number of seconds"),
    }

    def __post_init__(self) -> None:
        _validate.fields(self, self.RULES)


class BudgetState:
    """The live balance of one dependency's retry budget (thread-safe)."""

    __slots__ = ("_budget", "_window", "_lock", "_reserve", "clock")
    _REQUESTS, _RETRIES = 0, 1

    def __init__(self, budget: RetryBudget) -> None:
        self._budget = budget
        self._window = TimeWindow(budget.ttl, fields=2)
        self._reserve = budget.min_per_second * budget.ttl
        self._lock = threading.Lock()
        #: What `balance()` reads without `now`: the policy's clock, set by the dependency
        #: that owns the budget (None for one made by hand: pass `now`).
        self.clock: Callable[[], float] | None = None

    def deposit(self, now: float) -> None:
        """Count one logical request."""
        lock = self._lock
        lock.acquire()  # not `with`: once per request, and a third cheaper
        try:
            self._window.add(now, self._REQUESTS)
        finally:
            lock.release()

    def try_withdraw(self, now: float) -> bool:
        """Take one retry from the budget, or say no."""
        with self._lock:
            window = self._window
            requests, retries = window.counts(now)
            if retries + 1 > self._budget.ratio * requests + self._reserve:
                return False
            window.add(now, self._RETRIES)
            return True

    @property
    def config(self) -> RetryBudget:
        return self._budget

    def reset(self) -> None:
        """Forget the requests and retries counted so far (a manual reset): the floor is left."""
        with self._lock:
            self._window.clear()

    def balance(self, now: float | None = None) -> float:
        """Retries still allowed at `now` (default: the policy's clock)."""
        if now is None:
            if self.clock is None:
                raise TypeError(
                    "this retry budget has no clock (it was not made by a Policy): pass `now`"
                )
            now = self.clock()
        with self._lock:
            requests, retries = self._window.counts(now)
        return self._budget.ratio * requests + self._reserve - retries

    def __repr__(self) -> str:
        """e.g. `<RetryBudget 112 retries left: 20% of requests + 10/s over 10s>`."""
        budget = self._budget
        left = "" if self.clock is None else f" {self.balance():.0f} retries left:"
        return (
            f"<RetryBudget{left} {budget.ratio:.0%} of requests + "
            f"{budget.min_per_second:g}/s over {budget.ttl:g}s>"
        )


#: Why retrying stopped (a Verdict's reason when delay is None; `RetryStopped.why`).
StopReason = Literal[
    "not_retryable",
    "attempts_exhausted",
    "unsafe_method",
    "body_not_replayable",
    "retry_after_too_long",
    "deadline",
    "budget_exhausted",
    "circuit_open",
]
NOT_RETRYABLE: Final = "not_retryable"
ATTEMPTS_EXHAUSTED: Final = "attempts_exhausted"
UNSAFE_METHOD: Final = "unsafe_method"
BODY_NOT_REPLAYABLE: Final = "body_not_replayable"
RETRY_AFTER_TOO_LONG: Final = "retry_after_too_long"
NO_TIME_LEFT: Final = "deadline"
BUDGET_EXHAUSTED: Final = "budget_exhausted"
CIRCUIT_OPEN: Final = "circuit_open"
RETRY: Final = "retry"  # the reason of a Verdict that retries


class Verdict(NamedTuple):
    """`delay` is the wait before the next attempt, or None to stop; `reason` says why."""

    delay: float | None
    reason: StopReason | Literal["retry"]


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """What a custom `Retry.predicate` is shown about a finished attempt."""

    attempt: int
    method: str
    status: int | None
    error: BaseException | None
    error_kind: ErrorKind | None
    response: Any


def _kind_hint(given: Any) -> str:
    """Names the ErrorKind a string stands for ('connect' is ErrorKind.CONNECT's value)."""
    found = next((kind for kind in ErrorKind if kind.value == given), None)
    return f" (ErrorKind.{found.name}?)" if found is not None else ""


@dataclass(frozen=True, slots=True)
class Retry:
    """When to retry.

    Only idempotent methods are retried (RFC 9110), unless the request carries an
    `Idempotency-Key` header or `unsafe_methods=True`; a failure that happened before the
    request was sent (connection refused, connect timeout) is retried whatever the method.
    `Retry-After` (seconds or HTTP-date) is waited for when it fits both `max_retry_after` and
    the time left; otherwise the request fails fast with the response it got.
    `predicate(AttemptInfo) -> bool | None` overrides whether an outcome is retryable (None
    keeps the default); the safety checks (method, body, budget, deadline) always apply.
    """

    max_attempts: int = 3
    backoff: Backoff = field(default_factory=Backoff.exponential)
    statuses: frozenset[int] = RETRY_STATUSES
    errors: frozenset[ErrorKind] = TRANSIENT
    methods: frozenset[str] = IDEMPOTENT_METHODS
    unsafe_methods: bool = False
    respect_retry_after: bool = True
    max_retry_after: float = 60.0
    budget: RetryBudget | None = field(default_factory=RetryBudget)
    predicate: Callable[[AttemptInfo], bool | None] | None = None

    RULES: ClassVar[_validate.Rules] = {
        "max_attempts": _validate.Count(),
        "backoff": _validate.Instance(Backoff, "a seawall.Backoff"),
        "statuses": _validate.STATUSES,
        "errors": _validate.Each("a collection of seawall.ErrorKind", ErrorKind, hint=_kind_hint),
        "methods": _validate.METHODS,
        "unsafe_methods": _validate.FLAG,
        "respect_retry_after": _validate.FLAG,
        "max_retry_after": _validate.seconds(),
        "budget": _validate.Instance(RetryBudget, "a seawall.RetryBudget", optional=True),
        "predicate": _validate.Function("a callable taking an AttemptInfo", optional=True),
    }

    def __post_init__(self) -> None:
        _validate.fields(self, self.RULES)

    def retryable(self, status: int | None, kind: ErrorKind | None) -> bool:
        """Whether this outcome is, by its nature, worth another attempt."""
        if status is not None:
            return status in self.statuses
        return kind in self.errors

    def decide(
        self,
        *,
        attempt: int,
        method_safe: bool,
        unsent: bool,
        retry_after: float | None,
        time_left: float,
        previous_delay: float,
        random: Callable[[], float],
        replayable: Callable[[], bool],
        withdraw_budget: Callable[[], bool],
        circuit_open: bool = False,
    ) -> Verdict:
        """After a retryable failure of attempt number `attempt` (1-based): retry, and after how
        long, or stop and why. The checks run cheapest first; `replayable` (which may rewind a
        body) and `withdraw_budget` (which spends) run only when everything else allows it."""
        if attempt >= self.max_attempts:
            return Verdict(None, ATTEMPTS_EXHAUSTED)
        if not (method_safe or unsent):
            return Verdict(None, UNSAFE_METHOD)
        delay = self.backoff.delay(attempt, previous_delay, random)
        if retry_after is not None and self.respect_retry_after:
            if retry_after > self.max_retry_after:
                return Verdict(None, RETRY_AFTER_TOO_LONG)
            delay = max(delay, retry_after)
        if delay >= time_left:
            return Verdict(None, NO_TIME_LEFT)
        if circuit_open:
            return Verdict(None, CIRCUIT_OPEN)
        if not replayable():
            return Verdict(None, BODY_NOT_REPLAYABLE)
        if not withdraw_budget():
            return Verdict(None, BUDGET_EXHAUSTED)
        return Verdict(delay, RETRY)

    def method_safe(self, method: str, has_idempotency_key: bool) -> bool:
        return self.unsafe_methods or method in self.methods or has_idempotency_key


def parse_retry_after(value: str | None, wall_now: float) -> float | None:
    """Seconds to wait from a `Retry-After` value, or None when it is absent or cannot be read
    (never an error: the header is the upstream's input, not the caller's).

    delta-seconds are ASCII digits only (`str.isdigit()` also takes "²" or "٥"). An HTTP-date
    may come in any of the three forms of RFC 9110 section 5.6.7: IMF-fixdate
    (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37
    GMT`) and asctime (`Sun Nov  6 08:49:37 1994`, which has no zone: read as UTC, as urllib3
    does). A date in the past means "now" (0); `wall_now` is the wall clock's time.time()."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # asctime (or -0000): HTTP dates are always UTC
            when = when.replace(tzinfo=datetime.UTC)
        return max(0.0, when.timestamp() - wall_now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # not a date, or one past what datetime can hold
