"""The shared store: PostgreSQL through psycopg 3, for a fleet of processes (same schema)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .sql import SQLStore

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
#: Serialises the schema's creation across processes (CREATE ... IF NOT EXISTS can race).
_SCHEMA_LOCK = 0x5EA3A11


class PostgresStore(SQLStore):
    """Dead letters in PostgreSQL at `dsn` (a libpq connection string or URL). Every process
    of a fleet may share it; each `DeadLetters` still writes through its one writer thread.
    `connect_timeout` in seconds. Needs `psycopg` (3.x): `pip install 'psycopg[binary]'`."""

    mark = "%s"
    order = "seq"
    no_limit = "LIMIT ALL"

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
