"""seawall's own rejections.

Each adapter module declares client-flavoured subclasses and names them in `flavours()`: a
`seawall.httpx.CircuitOpenError` is both a `seawall.CircuitOpenError` and an
`httpx.TransportError`, so existing `except httpx.HTTPError` clauses keep working (and a type
checker sees the class in `except seawall.httpx.CircuitOpenError`).
"""

from __future__ import annotations

from typing import Any

from .policies.bulkhead import QUEUE_FULL, RejectReason


class ResilienceError(Exception):
    """A request seawall refused or gave up on. `dependency` names the dependency."""

    def __init__(self, message: str, *, dependency: str = "", **details: Any) -> None:
        super().__init__(message)
        self.dependency = dependency
        for name, value in details.items():
            setattr(self, name, value)


class CircuitOpenError(ResilienceError):
    """The dependency's circuit breaker is open (`key`, and `retry_in` seconds until a probe).
    `reason` says why the call was refused: "open", "half_open" (every probe is out) or
    "throttled" (client-side throttling, `seawall.Throttle`)."""

    key: str = ""
    retry_in: float = 0.0
    reason: str = "open"


class BulkheadFullError(ResilienceError):
    """No concurrency slot: the queue was full (`reason="queue_full"`) or the wait for a slot
    ran out (`reason="queue_timeout"`)."""

    reason: RejectReason = QUEUE_FULL


class RetryBudgetExhausted(ResilienceError):
    """A retry was needed but the dependency's retry budget was spent; the failed attempt's
    error is the `__cause__`."""


class DeadlineExceeded(ResilienceError):
    """The request's total timeout ran out; the last attempt's error, if any, is the
    `__cause__`."""


REJECTIONS: tuple[type[ResilienceError], ...] = (
    CircuitOpenError,
    BulkheadFullError,
    RetryBudgetExhausted,
    DeadlineExceeded,
)

ErrorTypes = dict[type[ResilienceError], type[ResilienceError]]


def flavours(*classes: type[ResilienceError]) -> ErrorTypes:
    """The table the pipeline raises from: each seawall rejection to the one of `classes` (an
    adapter's client-flavoured subclasses) that derives from it."""
    table = {base: cls for cls in classes for base in REJECTIONS if issubclass(cls, base)}
    missing = [base.__name__ for base in REJECTIONS if base not in table]
    if missing or len(classes) != len(REJECTIONS):
        raise TypeError(
            f"flavours: expected one subclass of each of "
            f"{', '.join(base.__name__ for base in REJECTIONS)}, got {classes!r}"
        )
    return table


def body_deadline(
    table: ErrorTypes, dependency: str, cause: BaseException | None = None
) -> ResilienceError:
    """The error of a response body still being read when its request's total deadline ran
    out (the adapters raise it from the body reads they keep the deadline for, after the
    pipeline has returned the response); `cause`: the read's own timeout, if it had one."""
    error = table[DeadlineExceeded](
        "total timeout ran out while the response body was being read", dependency=dependency
    )
    error.__cause__ = cause
    return error


#: The plain classes, for code that drives the pipeline without a client.
PLAIN: ErrorTypes = {cls: cls for cls in REJECTIONS}
