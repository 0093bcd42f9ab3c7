"""Dead letters: the requests that failed for good, kept to be replayed (docs/dead-letters.md)."""

from .letter import FAILED, PENDING, REPLAYING, RESOLVED, Letter, ReplayOutcome
from .recorder import DeadLetters
from .replay import BulkReplay, ReplayRefused, ReplayRequest
from .sqlite import SQLiteStore
from .store import Query, Store

__all__ = [
    "FAILED",
    "PENDING",
    "REPLAYING",
    "RESOLVED",
    "BulkReplay",
    "DeadLetters",
    "Letter",
    "Query",
    "ReplayOutcome",
    "ReplayRefused",
    "ReplayRequest",
    "SQLiteStore",
    "Store",
]
