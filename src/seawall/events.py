"""Typed events the pipeline emits, for telemetry and tests to subscribe to.

Events are built only when someone listens (`Policy.subscribe`), so they cost nothing otherwise.
Every event names its `dependency`; times are the policy clock's (monotonic seconds).
`exchange` is the adapter's view of the request (`.method`, `.target()`, `.request`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from .policies.breaker import State
from .policies.bulkhead import RejectReason
from .policies.classify import ErrorKind
from .policies.retry import StopReason

#: How a logical request ended (`RequestFinished.outcome`).
Outcome = Literal["success", "failure", "rejected", "fallback", "cancelled"]
#: What an attempt told the circuit breaker (`AttemptEnded.breaker_result`).
BreakerResult = Literal["success", "failure", "ignored"]
SUCCESS: Final = "success"
FAILURE: Final = "failure"
REJECTED: Final = "rejected"  # refused by seawall: breaker, bulkhead, budget, deadline
FALLBACK: Final = "fallback"  # the fallback's response replaced the failure
CANCELLED: Final = "cancelled"  # interrupted by the caller (asyncio cancellation, ...)
IGNORED: Final = "ignored"  # no verdict for the breaker (cancelled, or not the upstream's fault)


@dataclass(frozen=True, slots=True)
class DependencyAdded:
    """`policy` saw a dependency for the first time; `state` is its live state (bulkhead,
    breakers, budget), for listeners that report each dependency from its start (telemetry
    creates its counters at 0, so that the first event is an increase)."""

    dependency: str
    policy: Any
    state: Any
    at: float


@dataclass(frozen=True, slots=True)
class RequestStarted:
    dependency: str
    exchange: Any
    at: float


@dataclass(frozen=True, slots=True)
class BulkheadAdmitted:
    """A slot was taken; `waited` seconds in the queue (0 when a slot was free)."""

    dependency: str
    waited: float
    at: float


@dataclass(frozen=True, slots=True)
class BulkheadRejected:
    dependency: str
    reason: RejectReason
    waited: float
    at: float


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    dependency: str
    exchange: Any
    attempt: int  # 1 for the first try
    timeout: float  # inf when unlimited
    at: float


@dataclass(frozen=True, slots=True)
class AttemptEnded:
    dependency: str
    exchange: Any
    attempt: int
    status: int | None
    error: BaseException | None
    error_kind: ErrorKind | None
    breaker_result: BreakerResult
    slow: bool
    duration: float
    at: float
    response: Any = None  # the client's response, when there is one


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    dependency: str
    attempt: int  # the attempt that failed
    delay: float
    reason: str  # the status code, or the error's type
    retry_after: float | None
    at: float


@dataclass(frozen=True, slots=True)
class RetryStopped:
    """A retryable failure that was not retried: `why` is a retry.Verdict reason
    ("attempts_exhausted", "budget_exhausted", "deadline", "unsafe_method", ...)."""

    dependency: str
    attempt: int
    why: StopReason
    at: float


@dataclass(frozen=True, slots=True)
class CircuitRejected:
    """`reason`: "open", "half_open" (its probes are all out) or "throttled" (a closed
    breaker's client-side throttling turned the call away)."""

    dependency: str
    key: str
    retry_in: float
    at: float
    reason: str = "open"


@dataclass(frozen=True, slots=True)
class CircuitTransition:
    dependency: str
    key: str
    from_state: State
    to_state: State
    at: float


@dataclass(frozen=True, slots=True)
class RequestFinished:
    """The one terminal event of a logical request. `outcome`: "success" (a response that is not
    a failure), "failure" (a failing status, an error, or an error raised while deciding: a
    predicate or fallback of the user's), "rejected" (refused by seawall:
    breaker, bulkhead, budget, deadline), "fallback", or "cancelled" (interrupted by the
    caller, e.g. asyncio cancellation)."""

    dependency: str
    exchange: Any
    outcome: Outcome
    attempts: int
    status: int | None
    error: BaseException | None
    duration: float
    at: float


#: What `ManualChange` can say: each part, and the actions it takes.
MANUAL_ACTIONS: dict[str, tuple[str, ...]] = {
    "circuit_breaker": ("reset", "isolate", "disable"),
    "bulkhead": ("reset",),
    "retry_budget": ("reset",),
}


@dataclass(frozen=True, slots=True)
class ManualChange:
    """A person changed live state by hand (`seawall.admin.controls`): `part` is
    "circuit_breaker" (`key` names the breaker), "bulkhead" or "retry_budget"; `action` is
    "reset", "isolate" or "disable"; `by` is the name of the token that asked, `reason` why."""

    dependency: str
    part: str
    key: str
    action: str
    reason: str
    by: str
    at: float
    scope: str = "process"  # "fleet": every process of a seawall.Fleet (docs/fleet.md)


@dataclass(frozen=True, slots=True)
class HealthProbed:
    """A health probe of `dependency` ended: `passed`, the `status` it got (None when it
    failed with an error, named by `error_type`), how long it took."""

    dependency: str
    passed: bool
    status: int | None
    error_type: str | None
    duration: float
    at: float


@dataclass(frozen=True, slots=True)
class HealthChanged:
    """The health verdict of `dependency` changed (`source`: "probe" or "manual"). Unhealthy
    holds its breaker open with `reason`; healthy only lets it half-open."""

    dependency: str
    healthy: bool
    reason: str
    source: str
    at: float


Event = (
    DependencyAdded
    | RequestStarted
    | BulkheadAdmitted
    | BulkheadRejected
    | AttemptStarted
    | AttemptEnded
    | RetryScheduled
    | RetryStopped
    | CircuitRejected
    | CircuitTransition
    | RequestFinished
    | ManualChange
    | HealthProbed
    | HealthChanged
)

#: Every event class, for subscribers that want them all.
ALL: tuple[type[Event], ...] = (
    DependencyAdded,
    RequestStarted,
    BulkheadAdmitted,
    BulkheadRejected,
    AttemptStarted,
    AttemptEnded,
    RetryScheduled,
    RetryStopped,
    CircuitRejected,
    CircuitTransition,
    RequestFinished,
    ManualChange,
    HealthProbed,
    HealthChanged,
)
