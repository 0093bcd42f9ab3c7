"""`DeadLetters`: record the requests of a policy that failed for good, off the request path.

The policy's terminal event (`RequestFinished`) is read on the request's thread; a letter to
keep is put on one bounded queue, and one writer thread stores it. A full queue never holds a
request: the letter is counted as dropped and logged.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Final

from .. import events as ev
from ..exchange import CALL
from ..policies import _validate
from ..policies.classify import FAILURE_STATUSES, IDEMPOTENCY_KEY, IDEMPOTENT_METHODS
from . import letter as letters
from .letter import FAILED, PENDING, RESOLVED, Letter, Reason, ReplayOutcome
from .replay import REPLAYING_NOW, BulkReplay, Replayer, ReplayRefused, ReplayRequest
from .sqlite import SQLiteStore
from .store import EVERYTHING, Query, Store

logger = logging.getLogger("seawall.deadletters")

DAY: Final = 86_400.0
#: Recorded by default: all but a full bulkhead (load shedding the caller asked for).
DEFAULT_RECORD_ON: Final[frozenset[Reason]] = frozenset(
    {"failure", "breaker", "budget", "deadline"}
)
_STOP = object()
_BATCH = 100  # letters per transaction at most


#: URL schemes of a PostgreSQL store given as a string (`DeadLetters("postgresql://...")`).
POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


class _StoreRule(_validate.Rule):
    expected = (
        "a path to an SQLite file, a postgresql:// URL, or a dead-letter store "
        "(SQLiteStore, PostgresStore)"
    )

    def type_problem(self, value: Any) -> str | None:
        if isinstance(value, (str, os.PathLike)):
            return None
        if all(hasattr(value, name) for name in ("insert", "get", "list", "move")):
            return None
        return type(value).__name__  # (never the value: a store URL can hold a password)

    def value_problem(self, value: Any) -> str | None:
        return "an empty path" if isinstance(value, str) and not value.strip() else None


def open_store(store: Any) -> Store:
    """The store `store` names: itself, a PostgresStore for a postgresql:// URL, else an
    SQLiteStore at that path."""
    if isinstance(store, str) and store.startswith(POSTGRES_SCHEMES):
        from .postgres import PostgresStore

        return PostgresStore(store)
    if isinstance(store, (str, os.PathLike)):
        return SQLiteStore(store)
    found: Store = store
    return found


class DeadLetters:
    """Keep the requests that failed for good, to replay once the dependency heals.

    `store`: a `seawall.deadletters.SQLiteStore` (or a path for one) or a `PostgresStore` (or
    a postgresql:// URL for one).
    `record_on`: which endings are kept, of "failure" (a failing status or an error after the
    last allowed attempt), "breaker", "budget", "deadline", "bulkhead". `statuses`: the failing
    statuses kept (by default the failure statuses: 408, 429 and 5xx; a 4xx that is not
    retried never ends as a failure). `max_entries` and `max_age` (seconds) cap the store on
    every insert, oldest first. `body_cap`: larger bodies are kept as their size only, and
    are not replayable. `header_denylist` adds to the headers never stored (Authorization,
    Proxy-Authorization, Cookie, X-Api-Key); `query_denylist` to the query keys whose values
    are removed. `generate_keys`: a request of a method that is not idempotent and has no
    Idempotency-Key is sent with one that seawall made, so the upstream can recognise a replay
    (that key does not make the request retryable: only a key the caller sent does).
    `queue_size`: letters waiting for the writer; beyond it they are dropped.

    Replay (`replay`, `replay_many`): `on_replay(ReplayRequest)` is called before each replay
    is sent, to put back the credentials that were never stored; `replay_rate` is the most
    replays a second in bulk; `replay_max_wait` how long (seconds) a replay waits for an open
    breaker before it counts as failed.

    `telemetry`: True reports the entries (by dependency and state) and the recorded, dropped
    and replayed counts to the global OpenTelemetry meter provider when opentelemetry-api is
    installed (`seawall.deadletters.metrics`); a MeterProvider to choose it; False for none.
    """

    RULES: ClassVar[_validate.Rules] = {
        "store": _StoreRule(),
        "record_on": _validate.Each(
            f"a collection of {', '.join(sorted(letters.REASONS))}",
            str,
            valid=lambda reason: reason in letters.REASONS,
        ),
        "statuses": _validate.STATUSES,
        "max_entries": _validate.Count(1),
        "max_age": _validate.seconds(above_zero=True),
        "body_cap": _validate.Count(0),
        "header_denylist": _validate.Each("a collection of header names (str)", str),
        "query_denylist": _validate.Each("a collection of query keys (str)", str),
        "generate_keys": _validate.FLAG,
        "queue_size": _validate.Count(1),
        "on_replay": _validate.Function("a callable taking a ReplayRequest", optional=True),
        "replay_rate": _validate.Number(0, above=True, what="a number of replays a second"),
        "replay_max_wait": _validate.seconds(above_zero=True),
        "telemetry": _validate.HasMembers(
            ("get_meter",), "True, False, None or a MeterProvider", also=(True, False, None)
        ),
        "clock": _validate.Function("a callable returning Unix time in seconds"),
    }

    def __init__(
        self,
        store: Store | str | os.PathLike[str],
        *,
        record_on: Iterable[Reason] = DEFAULT_RECORD_ON,
        statuses: Iterable[int] = FAILURE_STATUSES,
        max_entries: int = 10_000,
        max_age: float = 7 * DAY,
        body_cap: int = 1 << 20,
        header_denylist: Iterable[str] = (),
        query_denylist: Iterable[str] = (),
        generate_keys: bool = True,
        queue_size: int = 1000,
        on_replay: Callable[[ReplayRequest], None] | None = None,
        replay_rate: float = 10.0,
        replay_max_wait: float = 300.0,
        telemetry: Any = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        checked = _validate.arguments(
            "DeadLetters",
            self.RULES,
            {
                "store": store,
                "record_on": record_on,
                "statuses": statuses,
                "max_entries": max_entries,
                "max_age": max_age,
                "body_cap": body_cap,
                "header_denylist": header_denylist,
                "query_denylist": query_denylist,
                "generate_keys": generate_keys,
                "queue_size": queue_size,
                "on_replay": on_replay,
                "replay_rate": replay_rate,
                "replay_max_wait": replay_max_wait,
                "telemetry": telemetry,
                "clock": clock,
            },
        )
        self.record_on = checked["record_on"]
        self.statuses = checked["statuses"]
        store = open_store(store)
        self.store: Store = store
        self.max_entries = max_entries
        self.max_age = float(max_age)
        self.body_cap = body_cap
        self.denied_headers = letters.DENIED_HEADERS | {
            name.lower() for name in checked["header_denylist"]
        }
        self.query_keys = letters.SENSITIVE_QUERY_KEYS | checked["query_denylist"]
        self.generate_keys = generate_keys
        self._clock = clock
        self._queue: queue.Queue[Any] = queue.Queue(queue_size)
        self.recorded = 0  # letters stored
        self.dropped = 0  # letters lost to a full queue (or a failing store)
        self.replayed = 0  # replay attempts made
        #: The same three counts by dependency (the metrics' series; 0 from when it is seen).
        self.counts: dict[str, Counter[str]] = {
            "recorded": Counter(),
            "dropped": Counter(),
            "replayed": Counter(),
        }
        self._last_drop_log = 0.0
        self._policies: weakref.WeakSet[Any] = weakref.WeakSet()
        self._replayer = Replayer(
            self, on_replay=on_replay, rate=float(replay_rate), max_wait=float(replay_max_wait)
        )
        self._writer = threading.Thread(
            target=self._write, name="seawall-dead-letters", daemon=True
        )
        self._writer.start()
        if telemetry is not False and telemetry is not None:
            try:
                from . import metrics
            except ImportError:  # no opentelemetry-api: nothing to report to
                pass
            else:
                metrics.instrument(self, None if telemetry is True else telemetry)

    def __repr__(self) -> str:
        return f"DeadLetters({self.store!r}, record_on={sorted(self.record_on)})"

    # -- on the request path ---------------------------------------------------------------
    def watch(self, policy: Any) -> None:
        """Record the requests of `policy` (the Policy does this for `Policy(dead_letters=)`)."""
        self._policies.add(policy)
        if self.generate_keys:
            policy.subscribe(self._started, ev.RequestStarted)
        policy.subscribe(self._finished, ev.RequestFinished)
        policy.subscribe(self._added, ev.DependencyAdded)

    def _added(self, event: ev.Event) -> None:
        assert isinstance(event, ev.DependencyAdded)
        self.count("recorded", event.dependency, 0)

    def _started(self, event: ev.Event) -> None:
        assert isinstance(event, ev.RequestStarted)
        exchange = event.exchange
        if REPLAYING_NOW.get():
            return  # a replay carries its stored key (or, allowed explicitly, none)
        if exchange.method not in IDEMPOTENT_METHODS and not exchange.has_header(IDEMPOTENCY_KEY):
            exchange.set_header("Idempotency-Key", uuid.uuid4().hex)

    def _finished(self, event: ev.Event) -> None:
        assert isinstance(event, ev.RequestFinished)
        reason = letters.reason_for(event.outcome, event.error)
        if reason is None or reason not in self.record_on:
            return
        if event.exchange.target().scheme == CALL:
            return  # a protected call (seawall.protect) is not an HTTP request to replay
        if event.status is not None and event.status not in self.statuses:
            return
        if REPLAYING_NOW.get():
            return  # a failed replay stays the same entry, marked failed
        now = self._clock()
        trace_id, span_id = _current_span_ids()
        letter = letters.take(
            event.exchange,
            dependency=event.dependency,
            reason=reason,
            status=event.status,
            error=event.error,
            attempts=event.attempts,
            first_at=now - event.duration,
            last_at=now,
            denied_headers=self.denied_headers,
            query_keys=self.query_keys,
            body_cap=self.body_cap,
            trace_id=trace_id,
            span_id=span_id,
        )
        try:
            self._queue.put_nowait(letter)
        except queue.Full:
            self._drop([letter.dependency], "the writer's queue is full")

    def count(self, what: str, dependency: str, n: int = 1) -> None:
        """Add `n` to the `what` count ("recorded", "dropped", "replayed") of `dependency`;
        every count of a dependency starts at 0 when it is first seen."""
        if dependency not in self.counts[what]:
            for counted in self.counts.values():
                counted.setdefault(dependency, 0)
        self.counts[what][dependency] += n
        if what == "recorded":
            self.recorded += n
        elif what == "dropped":
            self.dropped += n
        else:
            self.replayed += n

    def _drop(self, dependencies: list[str], why: str) -> None:
        for dependency in dependencies:
            self.count("dropped", dependency)
        now = time.monotonic()
        if now - self._last_drop_log >= 1.0:  # at most one line a second under a flood
            self._last_drop_log = now
            logger.warning("dead letters dropped (%d so far): %s", self.dropped, why)

    # -- the writer thread -----------------------------------------------------------------
    def _write(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            found: list[Letter] = [item for item in batch if item is not _STOP]
            if found:
                try:
                    self.store.insert(
                        found, max_entries=self.max_entries, oldest=self._clock() - self.max_age
                    )
                    for letter in found:
                        self.count("recorded", letter.dependency)
                except Exception as error:  # noqa: BLE001 - the writer must outlive a bad store
                    self._drop(
                        [x.dependency for x in found],
                        f"the store refused them: {type(error).__name__}",
                    )
            for _ in batch:
                self._queue.task_done()
            if stop:
                return

    # -- reading, replaying, resolving ------------------------------------------------------
    def get(self, letter_id: str) -> Letter | None:
        return self.store.get(letter_id)

    def list(self, query: Query = EVERYTHING, limit: int = 100) -> list[Letter]:
        return self.store.list(query, limit)

    def policy_for(self, dependency: str) -> Any:
        """The watched policy whose requests to `dependency` are recorded."""
        policies = list(self._policies)
        named = [policy for policy in policies if policy.name == dependency]
        unnamed = [policy for policy in policies if policy.name is None]
        found = named or unnamed
        if len(found) != 1:
            raise LookupError(
                f"DeadLetters: {len(found)} policies record {dependency!r}; "
                f"give the one to replay through: replay(..., policy=)"
            )
        return found[0]

    def replay(
        self, letter_id: str, *, allow_unsafe: bool = False, policy: Any = None
    ) -> ReplayOutcome:
        """Send the entry again through its policy (waiting while its breaker is open); the
        outcome is kept and the entry becomes resolved or failed. Raises `ReplayRefused` for
        an entry resolved or being replayed, without a body, or of a method that is not
        idempotent with no Idempotency-Key (unless `allow_unsafe`); KeyError for no entry."""
        return self._replayer.replay(letter_id, allow_unsafe=allow_unsafe, policy=policy)

    def replay_many(
        self,
        *,
        dependency: str | None = None,
        since: float | None = None,
        until: float | None = None,
        dry_run: bool = False,
        allow_unsafe: bool = False,
        limit: int = 1000,
    ) -> BulkReplay:
        """Replay the pending and failed entries matching (oldest first, at most
        `replay_rate` a second); with `dry_run`, only count them."""
        return self._replayer.replay_many(
            Query(dependency, None, since, until),
            dry_run=dry_run,
            allow_unsafe=allow_unsafe,
            limit=limit,
        )

    def resolve(self, letter_id: str, reason: str) -> None:
        """Mark the entry resolved by hand, saying why (it will not be replayed)."""
        if not isinstance(reason, str):
            raise TypeError(
                f"DeadLetters.resolve: reason must be a str, not {type(reason).__name__}"
            )
        if not reason.strip():
            raise ValueError("DeadLetters.resolve: reason must say why, not be empty")
        if not self.store.move(letter_id, (PENDING, FAILED), RESOLVED, reason):
            found = self.store.get(letter_id)
            if found is None:
                raise KeyError(f"no dead letter {letter_id!r}")
            raise ReplayRefused(f"dead letter {letter_id} is {found.state}")

    def purge(self, query: Query = EVERYTHING) -> int:
        """Delete the entries matching `query` (all of them by default); how many."""
        return self.store.purge(query)

    def flush(self) -> None:
        """Wait until every letter recorded so far is stored (or dropped)."""
        self._queue.join()

    def close(self) -> None:
        """Store what is queued, stop the writer, close the store."""
        if self._writer.is_alive():
            self._queue.put(_STOP)
            self._writer.join()
        self.store.close()


def _current_span_ids() -> tuple[str | None, str | None]:
    """The trace and span ids of the current OpenTelemetry span (the request's own, while its
    terminal event is handled), or None when OpenTelemetry is not there or not recording."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None, None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
