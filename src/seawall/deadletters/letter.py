"""What a dead letter holds, and how one is taken from a request that failed for good.

Nothing secret is kept: URL user-info and sensitive query values are redacted
(`seawall.telemetry.redact`), denylisted headers are left out, error texts have their URLs
redacted; credentials come back at replay through the user's `on_replay` hook.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeGuard

from ..errors import BulkheadFullError, CircuitOpenError, DeadlineExceeded, RetryBudgetExhausted
from ..telemetry.redact import redact_url

#: Why a request was recorded (`DeadLetters(record_on=...)`).
Reason = Literal["failure", "breaker", "budget", "deadline", "bulkhead"]
REASONS: Final = frozenset({"failure", "breaker", "budget", "deadline", "bulkhead"})
#: An entry's life: pending -> replaying -> resolved | failed (failed can be replayed again).
State = Literal["pending", "replaying", "resolved", "failed"]
PENDING: Final = "pending"
REPLAYING: Final = "replaying"
RESOLVED: Final = "resolved"
FAILED: Final = "failed"
STATES: Final = (PENDING, REPLAYING, RESOLVED, FAILED)


def is_state(value: object) -> TypeGuard[State]:
    return value in STATES


#: Headers never stored, whatever is configured (compared case-insensitively).
DENIED_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
#: Query keys whose values are removed besides OpenTelemetry's list (`redact.SENSITIVE_QUERY_KEYS`).
SENSITIVE_QUERY_KEYS: Final = frozenset(
    {"token", "access_token", "api_key", "apikey", "password", "secret", "client_secret"}
)
ERROR_TEXT_CAP: Final = 500
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """One replay attempt of an entry: when, and how it ended."""

    at: float  # Unix time
    ok: bool
    status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead letter. Times are Unix seconds; `body` is None when it was not kept (larger
    than the cap, or streamed: then `replayable` is False and `body_size` says what is known)."""

    id: str
    dependency: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    body_size: int | None
    replayable: bool
    reason: Reason
    status: int | None
    error: str | None
    attempts: int
    first_at: float
    last_at: float
    trace_id: str | None = None
    span_id: str | None = None
    idempotency_key: str | None = None
    state: State = PENDING
    resolution: str | None = None
    replays: tuple[ReplayOutcome, ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        """The entry as JSON-ready data (the body as its size only)."""
        return {
            "id": self.id,
            "dependency": self.dependency,
            "method": self.method,
            "url": self.url,
            "reason": self.reason,
            "status": self.status,
            "error": self.error,
            "attempts": self.attempts,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "state": self.state,
            "replayable": self.replayable,
            "body_size": self.body_size,
            "idempotency_key": self.idempotency_key,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "resolution": self.resolution,
        }

    def detail(self) -> dict[str, Any]:
        """`summary()` plus the headers, the body (as text when it is UTF-8) and the replays."""
        body: str | None = None
        if self.body is not None:
            body = self.body.decode("utf-8", "backslashreplace")
        return {
            **self.summary(),
            "headers": [list(pair) for pair in self.headers],
            "body": body,
            "replays": [
                {"at": r.at, "ok": r.ok, "status": r.status, "error": r.error} for r in self.replays
            ],
        }


def reason_for(outcome: str, error: BaseException | None) -> Reason | None:
    """Why a finished request would be recorded, from its outcome and error; None: it succeeded,
    was cancelled, or a fallback answered."""
    if outcome == "failure":
        return "failure"
    if outcome != "rejected":
        return None
    if isinstance(error, CircuitOpenError):
        return "breaker"
    if isinstance(error, RetryBudgetExhausted):
        return "budget"
    if isinstance(error, DeadlineExceeded):
        return "deadline"
    if isinstance(error, BulkheadFullError):
        return "bulkhead"
    return None


def redact_text(text: str, query_keys: frozenset[str]) -> str:
    """An error's text with every URL in it redacted, cut to ERROR_TEXT_CAP characters."""
    text = _URL_IN_TEXT.sub(lambda found: redact_url(found.group(), query_keys), text)
    return text if len(text) <= ERROR_TEXT_CAP else text[: ERROR_TEXT_CAP - 1] + "…"


def describe(error: BaseException | None, query_keys: frozenset[str]) -> str | None:
    if error is None:
        return None
    return redact_text(f"{type(error).__qualname__}: {error}", query_keys)


def new_id() -> str:
    return uuid.uuid4().hex


def take(
    exchange: Any,
    *,
    dependency: str,
    reason: Reason,
    status: int | None,
    error: BaseException | None,
    attempts: int,
    first_at: float,
    last_at: float,
    denied_headers: frozenset[str],
    query_keys: frozenset[str],
    body_cap: int,
    trace_id: str | None,
    span_id: str | None,
) -> Letter:
    """The letter of a finished request, read from its exchange (on the request's thread)."""
    headers = tuple(
        (name, value) for name, value in exchange.headers() if name.lower() not in denied_headers
    )
    key = next((value for name, value in headers if name.lower() == "idempotency-key"), None)
    body = exchange.body()
    size = None if body is None else len(body)
    kept = body if body is not None and len(body) <= body_cap else None
    return Letter(
        id=new_id(),
        dependency=dependency,
        method=exchange.method,
        url=redact_url(exchange.url(), query_keys),
        headers=headers,
        body=kept,
        body_size=size,
        replayable=kept is not None,
        reason=reason,
        status=status,
        error=describe(error, query_keys),
        attempts=attempts,
        first_at=first_at,
        last_at=last_at,
        trace_id=trace_id,
        span_id=span_id,
        idempotency_key=key,
    )
