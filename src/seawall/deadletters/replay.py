"""Replay: send a dead letter again through the policy that recorded it.

At least once: an entry moves pending|failed -> replaying (atomically, so two replays of one
entry cannot both start) -> resolved | failed, and every attempt's outcome is kept. The
request goes through the same policy (breaker, bulkhead, budget): while the breaker is open
the replay waits for it, up to `max_wait`. It carries the Idempotency-Key stored with the
entry, so an upstream that honours keys applies it once; an entry of a method that is not
idempotent and has no key is replayed only with `allow_unsafe=True`.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import CircuitOpenError
from ..policies.classify import IDEMPOTENT_METHODS
from .letter import FAILED, PENDING, REPLAYING, RESOLVED, Letter, ReplayOutcome, describe
from .store import Query

#: Set while a replay is being sent: its own failure is not recorded again.
REPLAYING_NOW: Final = contextvars.ContextVar("seawall_dead_letter_replay", default=False)
#: Headers the client sets itself for each send.
_PER_SEND = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "traceparent", "tracestate"}
)


class ReplayRefused(Exception):
    """The entry cannot be replayed (resolved already, being replayed, body not kept, or not
    safe to send again without `allow_unsafe`)."""


@dataclass
class ReplayRequest:
    """What a replay will send; `on_replay(request)` may change it (add credentials)."""

    letter: Letter
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class BulkReplay:
    """What a bulk replay did (or, for a dry run, would do: `matched` only)."""

    matched: int
    resolved: int = 0
    failed: int = 0
    refused: list[str] = field(default_factory=list)  # ids, with the reason in the log


def refusal(letter: Letter, allow_unsafe: bool) -> str | None:
    """Why the entry cannot be replayed now, or None."""
    if letter.state not in (PENDING, FAILED):
        return f"dead letter {letter.id} is {letter.state}"
    if not letter.replayable:
        return f"dead letter {letter.id} kept no body (larger than the cap, or streamed)"
    if (
        letter.method not in IDEMPOTENT_METHODS
        and letter.idempotency_key is None
        and not allow_unsafe
    ):
        return (
            f"dead letter {letter.id} is a {letter.method} without an Idempotency-Key: "
            f"replaying it may apply it twice (allow_unsafe=True to replay anyway)"
        )
    return None


def request_of(letter: Letter) -> ReplayRequest:
    headers = {name: value for name, value in letter.headers if name.lower() not in _PER_SEND}
    return ReplayRequest(letter, letter.method, letter.url, headers, letter.body or b"")


class Replayer:
    """Replays the entries of a `DeadLetters` (its `replay` and `replay_many` use one)."""

    def __init__(
        self,
        letters: Any,
        *,
        on_replay: Callable[[ReplayRequest], None] | None,
        rate: float,
        max_wait: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.letters = letters
        self.on_replay = on_replay
        self.rate = rate
        self.max_wait = max_wait
        self._sleep = sleep

    def replay(
        self, letter_id: str, *, allow_unsafe: bool = False, policy: Any = None
    ) -> ReplayOutcome:
        store = self.letters.store
        letter = store.get(letter_id)
        if letter is None:
            raise KeyError(f"no dead letter {letter_id!r}")
        why = refusal(letter, allow_unsafe)
        if why is not None:
            raise ReplayRefused(why)
        chosen = policy if policy is not None else self.letters.policy_for(letter.dependency)
        if not store.move(letter.id, (PENDING, FAILED), REPLAYING):
            raise ReplayRefused(f"dead letter {letter.id} is being replayed or was resolved")
        outcome = self._send(letter, chosen)
        store.add_replay(letter.id, outcome)
        store.move(
            letter.id,
            (REPLAYING,),
            RESOLVED if outcome.ok else FAILED,
            "replayed" if outcome.ok else None,
        )
        self.letters.count("replayed", letter.dependency)
        return outcome

    def replay_many(
        self, query: Query, *, dry_run: bool = False, allow_unsafe: bool = False, limit: int = 1000
    ) -> BulkReplay:
        candidates = [
            letter
            for state in (PENDING, FAILED)
            for letter in self.letters.store.list(
                Query(query.dependency, state, query.since, query.until), limit
            )
        ]
        ready = [x for x in candidates if refusal(x, allow_unsafe) is None][:limit]
        refused = [x.id for x in candidates if refusal(x, allow_unsafe) is not None]
        if dry_run:
            return BulkReplay(len(ready), refused=refused)
        resolved = failed = 0
        gap = 1.0 / self.rate
        next_at = time.monotonic()
        for letter in reversed(ready):  # oldest first
            wait = next_at - time.monotonic()
            if wait > 0:
                self._sleep(wait)
            next_at = max(next_at, time.monotonic()) + gap
            try:
                outcome = self.replay(letter.id, allow_unsafe=allow_unsafe)
            except ReplayRefused:  # (replayed or resolved meanwhile)
                refused.append(letter.id)
                continue
            if outcome.ok:
                resolved += 1
            else:
                failed += 1
        return BulkReplay(len(ready), resolved, failed, refused)

    def _send(self, letter: Letter, policy: Any) -> ReplayOutcome:
        import httpx  # replays use httpx whichever client recorded the request

        from ..httpx import ResilientTransport

        request = request_of(letter)
        if self.on_replay is not None:
            self.on_replay(request)
        keys = self.letters.query_keys
        token = REPLAYING_NOW.set(True)
        try:
            with (
                _linked_span(letter, policy),
                httpx.Client(transport=ResilientTransport(policy), timeout=None) as client,
            ):
                waited = 0.0
                while True:
                    try:
                        response = client.request(
                            request.method,
                            request.url,
                            headers=request.headers,
                            content=request.body,
                        )
                    except CircuitOpenError as error:  # wait for the breaker, then try again
                        if waited + error.retry_in > self.max_wait:
                            return ReplayOutcome(time.time(), False, None, describe(error, keys))
                        pause = max(error.retry_in, 0.001)
                        self._sleep(pause)
                        waited += pause
                        continue
                    except Exception as error:  # noqa: BLE001 - the outcome to keep
                        return ReplayOutcome(time.time(), False, None, describe(error, keys))
                    status = response.status_code
                    return ReplayOutcome(time.time(), 200 <= status < 400, status, None)
        finally:
            REPLAYING_NOW.reset(token)


def _linked_span(letter: Letter, policy: Any) -> Any:
    """A span around the replay (the parent of the policy's own spans for it) linked to the
    original request's trace; a no-op context when OpenTelemetry is not installed. The policy's
    tracer when its telemetry has one, else the global provider's."""
    import contextlib

    try:
        from opentelemetry import trace
    except ImportError:
        return contextlib.nullcontext()
    links = []
    if letter.trace_id and letter.span_id:
        original = trace.SpanContext(
            int(letter.trace_id, 16),
            int(letter.span_id, 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(1),
        )
        links.append(trace.Link(original))
    tracer = getattr(getattr(policy, "telemetry", None), "tracer", None) or trace.get_tracer(
        "seawall"
    )
    return tracer.start_as_current_span(
        f"seawall replay {letter.dependency}",
        links=links,
        attributes={"seawall.dead_letter.id": letter.id},
    )
