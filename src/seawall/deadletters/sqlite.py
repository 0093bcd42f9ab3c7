"""The embedded store: one SQLite file (WAL; synchronous=NORMAL, or FULL when asked)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .letter import Letter, ReplayOutcome, State
from .store import COLUMNS, EVERYTHING, Query, letter_of, row_of

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
_INSERT = (
    f"INSERT INTO dead_letters ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)
_BEYOND_CAP = (
    "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters "
    "ORDER BY last_at DESC, rowid DESC LIMIT -1 OFFSET ?)"
)
_INSERT_REPLAY = (
    "INSERT INTO dead_letter_replays (letter_id, at, ok, status, error) VALUES (?, ?, ?, ?, ?)"
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM dead_letters"


class SQLiteStore:
    """Dead letters in the SQLite file at `path`, created with mode 0600 (its WAL files follow
    the file's mode). `synchronous`: "NORMAL" survives a crash of the process (the default);
    "FULL" also survives losing power, at an fsync per commit. `busy_timeout` in seconds."""

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

    def insert(self, letters: Sequence[Letter], *, max_entries: int, oldest: float) -> None:
        statements: list[tuple[str, Sequence[Any]]] = [(_INSERT, row_of(x)) for x in letters]
        statements.append(("DELETE FROM dead_letters WHERE last_at < ?", (oldest,)))
        statements.append((_BEYOND_CAP, (max_entries,)))
        self._write(statements)

    def get(self, letter_id: str) -> Letter | None:
        with self._lock:
            row = self._db.execute(f"{_SELECT} WHERE id = ?", (letter_id,)).fetchone()
            if row is None:
                return None
            replays = self._db.execute(
                "SELECT at, ok, status, error FROM dead_letter_replays WHERE letter_id = ? "
                "ORDER BY at, rowid",
                (letter_id,),
            ).fetchall()
        return letter_of(row, replays)

    def list(self, query: Query = EVERYTHING, limit: int = 100) -> list[Letter]:
        where, values = query.where("?")
        with self._lock:
            rows = self._db.execute(
                f"{_SELECT}{where} ORDER BY last_at DESC, rowid DESC LIMIT ?", (*values, limit)
            ).fetchall()
        return [letter_of(row) for row in rows]

    def count(self, query: Query = EVERYTHING) -> int:
        where, values = query.where("?")
        with self._lock:
            found: int = self._db.execute(
                f"SELECT count(*) FROM dead_letters{where}", values
            ).fetchone()[0]
        return found

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT dependency, state, count(*) FROM dead_letters GROUP BY dependency, state"
            ).fetchall()
        return {(dependency, state): n for dependency, state, n in rows}

    def move(
        self, letter_id: str, from_states: Sequence[State], to: State, resolution: str | None = None
    ) -> bool:
        marks = ", ".join("?" for _ in from_states)
        sql = (
            f"UPDATE dead_letters SET state = ?, resolution = coalesce(?, resolution) "
            f"WHERE id = ? AND state IN ({marks})"
        )
        changed = self._write([(sql, (to, resolution, letter_id, *from_states))])
        return changed[0] == 1

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
        where, values = query.where("?")
        return self._write([(f"DELETE FROM dead_letters{where}", values)])[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
