"""The shared store: PostgreSQL through psycopg 3, for a fleet of processes (same schema)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .letter import Letter, ReplayOutcome, State
from .store import COLUMNS, EVERYTHING, Query, letter_of, row_of

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    seq BIGSERIAL UNIQUE, id TEXT PRIMARY KEY, dependency TEXT NOT NULL, method TEXT NOT NULL,
    url TEXT NOT NULL, headers TEXT NOT NULL, body BYTEA, body_size BIGINT,
    replayable INTEGER NOT NULL, reason TEXT NOT NULL, status INTEGER, error TEXT,
    attempts INTEGER NOT NULL, first_at DOUBLE PRECISION NOT NULL,
    last_at DOUBLE PRECISION NOT NULL, trace_id TEXT, span_id TEXT, idempotency_key TEXT,
    state TEXT NOT NULL, resolution TEXT);
CREATE INDEX IF NOT EXISTS dead_letters_last_at ON dead_letters (last_at);
CREATE INDEX IF NOT EXISTS dead_letters_dependency ON dead_letters (dependency, state);
CREATE TABLE IF NOT EXISTS dead_letter_replays (
    seq BIGSERIAL, letter_id TEXT NOT NULL REFERENCES dead_letters (id) ON DELETE CASCADE,
    at DOUBLE PRECISION NOT NULL, ok INTEGER NOT NULL, status INTEGER, error TEXT);
CREATE INDEX IF NOT EXISTS dead_letter_replays_letter ON dead_letter_replays (letter_id);
"""
_INSERT = (
    f"INSERT INTO dead_letters ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)})"
)
_BEYOND_CAP = (
    "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters "
    "ORDER BY last_at DESC, seq DESC OFFSET %s)"
)
_INSERT_REPLAY = (
    "INSERT INTO dead_letter_replays (letter_id, at, ok, status, error) VALUES (%s, %s, %s, %s, %s)"
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM dead_letters"
#: Serialises the schema's creation across processes (CREATE ... IF NOT EXISTS can race).
_SCHEMA_LOCK = 0x5EA3A11


class PostgresStore:
    """Dead letters in PostgreSQL at `dsn` (a libpq connection string or URL). Every process
    of a fleet may share it; each `DeadLetters` still writes through its one writer thread.
    `connect_timeout` in seconds. Needs `psycopg` (3.x): `pip install 'psycopg[binary]'`."""

    def __init__(self, dsn: str, *, connect_timeout: float = 5.0) -> None:
        if not isinstance(dsn, str):
            raise TypeError(f"PostgresStore: dsn must be a str, not {type(dsn).__name__}")
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, (int, float)):
            raise TypeError(
                f"PostgresStore: connect_timeout must be a number of seconds, not "
                f"{type(connect_timeout).__name__}"
            )
        try:
            import psycopg
        except ImportError:
            raise ImportError(
                "PostgresStore needs psycopg 3: pip install 'psycopg[binary]'"
            ) from None
        self._lock = threading.Lock()
        self._db = psycopg.connect(
            dsn, autocommit=True, connect_timeout=max(1, round(connect_timeout))
        )
        self._dsn_host = self._db.info.host  # for repr: never the password
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in filter(str.strip, SCHEMA.split(";")):
                self._db.execute(statement)

    def __repr__(self) -> str:
        return f"PostgresStore(host={self._dsn_host!r})"

    def _write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        changed = []
        with self._lock, self._db.transaction():
            for sql, values in statements:
                changed.append(self._db.execute(sql, values).rowcount)
        return changed

    def insert(self, letters: Sequence[Letter], *, max_entries: int, oldest: float) -> None:
        statements: list[tuple[str, Sequence[Any]]] = [(_INSERT, row_of(x)) for x in letters]
        statements.append(("DELETE FROM dead_letters WHERE last_at < %s", (oldest,)))
        statements.append((_BEYOND_CAP, (max_entries,)))
        self._write(statements)

    def get(self, letter_id: str) -> Letter | None:
        with self._lock:
            row = self._db.execute(f"{_SELECT} WHERE id = %s", (letter_id,)).fetchone()
            if row is None:
                return None
            replays = self._db.execute(
                "SELECT at, ok, status, error FROM dead_letter_replays WHERE letter_id = %s "
                "ORDER BY at, seq",
                (letter_id,),
            ).fetchall()
        return letter_of(row, replays)

    def list(self, query: Query = EVERYTHING, limit: int = 100) -> list[Letter]:
        where, values = query.where("%s")
        with self._lock:
            rows = self._db.execute(
                f"{_SELECT}{where} ORDER BY last_at DESC, seq DESC LIMIT %s", (*values, limit)
            ).fetchall()
        return [letter_of(row) for row in rows]

    def count(self, query: Query = EVERYTHING) -> int:
        where, values = query.where("%s")
        with self._lock:
            row = self._db.execute(f"SELECT count(*) FROM dead_letters{where}", values).fetchone()
        return int(row[0]) if row else 0

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT dependency, state, count(*) FROM dead_letters GROUP BY dependency, state"
            ).fetchall()
        return {(dependency, state): int(n) for dependency, state, n in rows}

    def move(
        self, letter_id: str, from_states: Sequence[State], to: State, resolution: str | None = None
    ) -> bool:
        sql = (
            "UPDATE dead_letters SET state = %s, resolution = coalesce(%s, resolution) "
            "WHERE id = %s AND state = ANY(%s)"
        )
        return self._write([(sql, (to, resolution, letter_id, list(from_states)))])[0] == 1

    def add_replay(self, letter_id: str, outcome: ReplayOutcome) -> None:
        self._write(
            [
                (
                    _INSERT_REPLAY,
                    (letter_id, outcome.at, int(outcome.ok), outcome.status, outcome.error),
                )
            ]
        )

    def purge(self, query: Query = EVERYTHING) -> int:
        where, values = query.where("%s")
        return self._write([(f"DELETE FROM dead_letters{where}", values)])[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
