"""The embedded store: one SQLite file (WAL; synchronous=NORMAL, or FULL when asked)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .sql import SQLStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY, dependency TEXT NOT NULL, method TEXT NOT NULL, url TEXT NOT NULL,
    headers TEXT NOT NULL, body BLOB, body_size INTEGER, replayable INTEGER NOT NULL,
    reason TEXT NOT NULL, status INTEGER, error TEXT, attempts INTEGER NOT NULL,
    first_at REAL NOT NULL, last_at REAL NOT NULL, trace_id TEXT, span_id TEXT,
    idempotency_key TEXT, state TEXT NOT NULL, resolution TEXT);
CREATE INDEX IF NOT EXISTS dead_letters_last_at ON dead_letters (last_at);
CREATE INDEX IF NOT EXISTS dead_letters_dependency ON dead_letters (dependency, state);
CREATE TABLE IF NOT EXISTS dead_letter_replays (
    letter_id TEXT NOT NULL REFERENCES dead_letters (id) ON DELETE CASCADE,
    at REAL NOT NULL, ok INTEGER NOT NULL, status INTEGER, error TEXT);
CREATE INDEX IF NOT EXISTS dead_letter_replays_letter ON dead_letter_replays (letter_id);
"""


class SQLiteStore(SQLStore):
    """Dead letters in the SQLite file at `path`, created with mode 0600 (its WAL files follow
    the file's mode). `synchronous`: "NORMAL" survives a crash of the process (the default);
    "FULL" also survives losing power, at an fsync per commit. `busy_timeout` in seconds."""

    mark = "?"
    order = "rowid"
    no_limit = "LIMIT -1"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"SQLiteStore: path must be a str or a path, not {type(path).__name__}")
        if not isinstance(synchronous, str):
            raise TypeError(
                f"SQLiteStore: synchronous must be a str, not {type(synchronous).__name__}"
            )
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError(
                f"SQLiteStore: synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}"
            )
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
            raise TypeError(
                f"SQLiteStore: busy_timeout must be a number of seconds, not "
                f"{type(busy_timeout).__name__}"
            )
        if not busy_timeout >= 0:
            raise ValueError(
                f"SQLiteStore: busy_timeout must be >= 0 seconds, not {busy_timeout!r}"
            )
        self.path = Path(path)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # the mode, before SQLite
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout, check_same_thread=False, isolation_level=None
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        self._db.execute("PRAGMA foreign_keys = ON")
        with self._lock:
            self._db.executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run the statements in one transaction; the rows each changed."""
        changed = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, values in statements:
                    changed.append(self._db.execute(sql, values).rowcount)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return changed
