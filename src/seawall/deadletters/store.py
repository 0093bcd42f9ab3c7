"""Where dead letters are kept: the `Store` protocol, and the schema every store shares."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .letter import Letter, ReplayOutcome, State

#: The columns of an entry, in the order stores write and read them.
COLUMNS = (
    "id",
    "dependency",
    "method",
    "url",
    "headers",
    "body",
    "body_size",
    "replayable",
    "reason",
    "status",
    "error",
    "attempts",
    "first_at",
    "last_at",
    "trace_id",
    "span_id",
    "idempotency_key",
    "state",
    "resolution",
)


@dataclass(frozen=True, slots=True)
class Query:
    """Which entries: all of them, or those matching every given field (times are Unix
    seconds, on `last_at`: since <= last_at < until)."""

    dependency: str | None = None
    state: State | None = None
    since: float | None = None
    until: float | None = None

    def where(self, mark: str) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters, with `mark` as the placeholder ("?", "%s")."""
        parts, values = [], []
        for column, op, value in (
            ("dependency", "=", self.dependency),
            ("state", "=", self.state),
            ("last_at", ">=", self.since),
            ("last_at", "<", self.until),
        ):
            if value is not None:
                parts.append(f"{column} {op} {mark}")
                values.append(value)
        return (" WHERE " + " AND ".join(parts)) if parts else "", values


#: Every entry.
EVERYTHING = Query()


class Store(Protocol):
    """A dead-letter store. `insert` is called by the one writer thread; the rest from anywhere
    (the store serialises them)."""

    def insert(self, letters: Sequence[Letter], *, max_entries: int, oldest: float) -> None:
        """Add the letters, then drop the entries last seen before `oldest` and, beyond
        `max_entries`, the oldest ones; all in one transaction."""

    def get(self, letter_id: str) -> Letter | None: ...
    def list(self, query: Query = EVERYTHING, limit: int = 100) -> list[Letter]: ...  # newest first
    def count(self, query: Query = EVERYTHING) -> int: ...
    def counts(self) -> dict[tuple[str, str], int]: ...  # (dependency, state) -> entries
    def move(
        self, letter_id: str, from_states: Sequence[State], to: State, resolution: str | None = None
    ) -> bool:
        """Change the entry's state if it is in one of `from_states` (atomically); whether it did."""

    def add_replay(self, letter_id: str, outcome: ReplayOutcome) -> None: ...
    def purge(self, query: Query = EVERYTHING) -> int: ...  # entries deleted
    def close(self) -> None: ...


def row_of(letter: Letter) -> tuple[Any, ...]:
    return (
        letter.id,
        letter.dependency,
        letter.method,
        letter.url,
        json.dumps([list(pair) for pair in letter.headers]),
        letter.body,
        letter.body_size,
        int(letter.replayable),
        letter.reason,
        letter.status,
        letter.error,
        letter.attempts,
        letter.first_at,
        letter.last_at,
        letter.trace_id,
        letter.span_id,
        letter.idempotency_key,
        letter.state,
        letter.resolution,
    )


def letter_of(row: Sequence[Any], replays: Sequence[Sequence[Any]] = ()) -> Letter:
    values = dict(zip(COLUMNS, row))
    values["headers"] = tuple(
        (str(name), str(value)) for name, value in json.loads(values["headers"])
    )
    values["replayable"] = bool(values["replayable"])
    if values["body"] is not None:
        values["body"] = bytes(values["body"])
    return Letter(
        **values,
        replays=tuple(
            ReplayOutcome(at, bool(ok), status, error) for at, ok, status, error in replays
        ),
    )
