"""Bulkhead: at most `max_concurrent` requests in flight per dependency, a bounded FIFO queue.

This module only keeps the books (slots, the waiting order); the pipeline does the waiting,
with a thread event or an asyncio future. A released slot is handed straight to the oldest
waiter, so nobody can barge in ahead of the queue, and a waiter that gives up (timeout or
cancellation) either leaves the queue or, if a slot was handed to it meanwhile, passes that slot
on: a slot is never lost (the bug class of cpython#90155 and anyio#947).
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import ClassVar, Final, Literal, Protocol

from . import _validate


@dataclass(frozen=True, slots=True)
class Bulkhead:
    """Concurrency limit for one dependency. Callers over the limit wait in a FIFO queue of at
    most `max_queued` for at most `queue_timeout` seconds (None: no limit), then are rejected
    with `BulkheadFullError`. The slot is held across retries."""

    max_concurrent: int = 100
    max_queued: int = 100
    queue_timeout: float | None = 1.0

    RULES: ClassVar[_validate.Rules] = {
        "max_concurrent": _validate.Count(),
        "max_queued": _validate.Count(0),
        "queue_timeout": _validate.seconds(optional=True),
    }

    def __post_init__(self) -> None:
        _validate.fields(self, self.RULES)


#: Why a caller was turned away (`BulkheadFullError.reason`, `BulkheadRejected.reason`).
RejectReason = Literal["queue_full", "queue_timeout"]
QUEUE_FULL: Final = "queue_full"  # no room left in the queue
QUEUE_TIMEOUT: Final = "queue_timeout"  # no slot was freed within the queue timeout


class Waiter(Protocol):
    def wake(self) -> None:
        """Called (from any thread) once a slot has been handed to this waiter."""


class Admission(enum.Enum):
    ADMITTED = "admitted"
    QUEUED = "queued"
    REJECTED = "rejected"


class BulkheadState:
    """The live slots and queue of one dependency (thread-safe, shared by sync and async)."""

    __slots__ = ("config", "name", "active", "_waiters", "_lock")

    def __init__(self, config: Bulkhead, name: str = "") -> None:
        self.config = config
        self.name = name  # the dependency's
        self.active = 0
        self._waiters: dict[Waiter, None] = {}  # insertion-ordered: the FIFO queue
        self._lock = threading.Lock()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def __repr__(self) -> str:
        """e.g. `<Bulkhead 'api' active=3/20 queued=0/50 queue_timeout=1s>`."""
        config = self.config
        wait = "none" if config.queue_timeout is None else f"{config.queue_timeout:g}s"
        return (
            f"<Bulkhead {self.name!r} active={self.active}/{config.max_concurrent} "
            f"queued={self.queued}/{config.max_queued} queue_timeout={wait}>"
        )

    def try_acquire(self) -> bool:
        """Take a free slot if there is one and nobody is waiting for it."""
        lock = self._lock
        lock.acquire()  # not `with`: once per request, and a third cheaper
        try:
            if self.active < self.config.max_concurrent and not self._waiters:
                self.active += 1
                return True
            return False
        finally:
            lock.release()

    def enqueue(self, waiter: Waiter) -> Admission:
        """Take a slot, or join the queue, or be turned away when the queue is full."""
        with self._lock:
            if self.active < self.config.max_concurrent and not self._waiters:
                self.active += 1
                return Admission.ADMITTED
            if len(self._waiters) >= self.config.max_queued:
                return Admission.REJECTED
            self._waiters[waiter] = None
            return Admission.QUEUED

    def withdraw(self, waiter: Waiter) -> bool:
        """A waiter gives up: True if it left the queue, False if it already holds a slot
        (which it must then `release`)."""
        with self._lock:
            return self._waiters.pop(waiter, False) is None

    def release(self) -> None:
        """Give a slot back: to the oldest waiter if any (woken after the lock is dropped)."""
        lock = self._lock
        lock.acquire()
        try:
            if not self._waiters:
                self.active -= 1
                return
            waiter = next(iter(self._waiters))
            del self._waiters[waiter]
        finally:
            lock.release()
        waiter.wake()
