"""What the SQL stores share: every statement, written once with the store's placeholder.

A store subclass opens `_db` (a DB-API connection in autocommit mode), creates `_lock`, and
says how it runs statements in one transaction (`_write`); the SQL dialects differ only in the
three class attributes below.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from .letter import Letter, ReplayOutcome, State
from .store import COLUMNS, EVERYTHING, Query, letter_of, row_of

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM dead_letters"


class SQLStore:
    #: The parameter placeholder ("?" for sqlite3, "%s" for psycopg).
    mark: ClassVar[str]
    #: The column that orders rows inserted at the same time (SQLite's rowid, a sequence).
    order: ClassVar[str]
    #: A LIMIT that keeps every row, so that OFFSET may follow it.
    no_limit: ClassVar[str]

    _db: Any
    _lock: threading.Lock

    def _write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run the statements in one transaction; the rows each changed."""
        raise NotImplementedError

    def _marks(self, count: int) -> str:
        return ", ".join(self.mark for _ in range(count))

    def insert(self, letters: Sequence[Letter], *, max_entries: int, oldest: float) -> None:
        insert = (
            f"INSERT INTO dead_letters ({', '.join(COLUMNS)}) VALUES ({self._marks(len(COLUMNS))})"
        )
        beyond_cap = (
            f"DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters ORDER BY "
            f"last_at DESC, {self.order} DESC {self.no_limit} OFFSET {self.mark})"
        )
        statements: list[tuple[str, Sequence[Any]]] = [(insert, row_of(x)) for x in letters]
        statements.append((f"DELETE FROM dead_letters WHERE last_at < {self.mark}", (oldest,)))
        statements.append((beyond_cap, (max_entries,)))
        self._write(statements)

    def get(self, letter_id: str) -> Letter | None:
        with self._lock:
            row = self._db.execute(f"{_SELECT} WHERE id = {self.mark}", (letter_id,)).fetchone()
            if row is None:
                return None
            replays = self._db.execute(
                f"SELECT at, ok, status, error FROM dead_letter_replays "
                f"WHERE letter_id = {self.mark} ORDER BY at, {self.order}",
                (letter_id,),
            ).fetchall()
        return letter_of(row, replays)

    def list(self, query: Query = EVERYTHING, limit: int = 100) -> list[Letter]:
        where, values = query.where(self.mark)
        with self._lock:
            rows = self._db.execute(
                f"{_SELECT}{where} ORDER BY last_at DESC, {self.order} DESC LIMIT {self.mark}",
                (*values, limit),
            ).fetchall()
        return [letter_of(row) for row in rows]

    def count(self, query: Query = EVERYTHING) -> int:
        where, values = query.where(self.mark)
        with self._lock:
            row = self._db.execute(f"SELECT count(*) FROM dead_letters{where}", values).fetchone()
        return int(row[0])

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT dependency, state, count(*) FROM dead_letters GROUP BY dependency, state"
            ).fetchall()
        return {(dependency, state): int(n) for dependency, state, n in rows}

    def move(
        self, letter_id: str, from_states: Sequence[State], to: State, resolution: str | None = None
    ) -> bool:
        m = self.mark
        sql = (
            f"UPDATE dead_letters SET state = {m}, resolution = coalesce({m}, resolution) "
            f"WHERE id = {m} AND state IN ({self._marks(len(from_states))})"
        )
        return self._write([(sql, (to, resolution, letter_id, *from_states))])[0] == 1

    def add_replay(self, letter_id: str, outcome: ReplayOutcome) -> None:
        sql = (
            f"INSERT INTO dead_letter_replays (letter_id, at, ok, status, error) "
            f"VALUES ({self._marks(5)})"
        )
        values = (letter_id, outcome.at, int(outcome.ok), outcome.status, outcome.error)
        self._write([(sql, values)])

    def purge(self, query: Query = EVERYTHING) -> int:
        where, values = query.where(self.mark)
        return self._write([(f"DELETE FROM dead_letters{where}", values)])[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
