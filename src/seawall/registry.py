"""Every live `Policy` of the process, held weakly, in the order they were built: what
`seawall.status()` and the admin surface (`seawall.admin`) show.

A policy registers itself at construction. Besides the policy, the registry keeps a small
tally of what the policy's state cannot tell afterwards: how many calls each breaker and
bulkhead turned away, and when last. It listens only to rejection events, which the `seawall`
logger already has built, so a request that is let through costs nothing more.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import TYPE_CHECKING, Any

from . import events as ev

if TYPE_CHECKING:
    from .config.router import Router
    from .pipeline import Policy


class Tally:
    """Rejections per breaker key and per bulkhead of one policy (thread-safe)."""

    __slots__ = ("__weakref__", "_lock", "breakers", "bulkheads")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: (dependency, key) -> [rejected since the breaker last opened, last rejected at]
        self.breakers: dict[tuple[str, str], list[float]] = {}
        #: dependency -> [rejected since the last bulkhead reset, last rejected at]
        self.bulkheads: dict[str, list[float]] = {}

    def notice(self, event: ev.Event) -> None:
        with self._lock:
            if isinstance(event, ev.CircuitRejected):
                self._count(self.breakers, (event.dependency, event.key), event.at)
            elif isinstance(event, ev.BulkheadRejected):
                self._count(self.bulkheads, event.dependency, event.at)
            elif isinstance(event, ev.CircuitTransition) and event.from_state.value == "closed":
                self.breakers.pop((event.dependency, event.key), None)  # a new episode

    @staticmethod
    def _count(books: dict[Any, list[float]], name: object, at: float) -> None:
        entry = books.setdefault(name, [0, at])
        entry[0] += 1
        entry[1] = at

    def breaker(self, dependency: str, key: str) -> tuple[int, float | None]:
        with self._lock:
            count, at = self.breakers.get((dependency, key), (0, None))
        return int(count), at

    def bulkhead(self, dependency: str) -> tuple[int, float | None]:
        with self._lock:
            count, at = self.bulkheads.get(dependency, (0, None))
        return int(count), at

    def forget_bulkhead(self, dependency: str) -> None:
        with self._lock:
            self.bulkheads.pop(dependency, None)


_lock = threading.Lock()
_ids = itertools.count(1)
# Weak containers, never a callback of our own: the garbage collector may run a weakref
# callback on any allocation, inside `with _lock:` too, and a callback that took the lock
# would deadlock that thread (it did, when a test built and dropped thousands of policies).
_policies: weakref.WeakValueDictionary[int, Policy] = weakref.WeakValueDictionary()
_tallies: weakref.WeakKeyDictionary[Policy, Tally] = weakref.WeakKeyDictionary()
_ids_of: weakref.WeakKeyDictionary[Policy, int] = weakref.WeakKeyDictionary()


def register(policy: Policy) -> None:
    """Called by `Policy.__init__`."""
    tally = Tally()
    policy.subscribe(tally.notice, ev.CircuitRejected, ev.BulkheadRejected, ev.CircuitTransition)
    with _lock:
        number = next(_ids)
        _policies[number] = policy
        _tallies[policy] = tally
        _ids_of[policy] = number


def policies() -> list[Policy]:
    """The live policies, oldest first."""
    with _lock:
        return list(_policies.values())


def number(policy: Policy) -> int:
    """The policy's registration number (stable for its life, shown in the snapshot)."""
    return _ids_of.get(policy, 0)


def tally(policy: Policy) -> Tally:
    found = _tallies.get(policy)
    return found if found is not None else Tally()


_installed: Router | None = None


def install(router: Router | None) -> None:
    """Called by `seawall.instrument()` (None: by `uninstrument()`): the configuration in
    which `seawall.protect("name")` finds its dependency."""
    global _installed
    _installed = router


def installed() -> Router | None:
    """The configuration `seawall.instrument()` installed, if any."""
    return _installed
