"""Each dependency's own thread pool, for protected sync calls awaited from asyncio
(`seawall.protect(..., in_thread=True)`).

A pool is as large as the dependency's bulkhead (`Bulkhead.max_concurrent`; `DEFAULT_SIZE`
without one), so a dependency that hangs holds at most that many threads, and never the loop's
default executor that the rest of the program shares. It is made at the first such call and
goes with the dependency's state.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

from .policies.bulkhead import Bulkhead
from .state import DependencyState

#: The pool size of a dependency without a bulkhead: a default bulkhead's limit.
DEFAULT_SIZE = Bulkhead().max_concurrent

_pools: weakref.WeakKeyDictionary[DependencyState, ThreadPoolExecutor] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def pool_for(state: DependencyState) -> ThreadPoolExecutor:
    """The thread pool of the dependency whose live state is `state`."""
    found = _pools.get(state)
    if found is None:
        with _lock:
            found = _pools.get(state)
            if found is None:
                size = state.bulkhead.config.max_concurrent if state.bulkhead else DEFAULT_SIZE
                found = _pools[state] = ThreadPoolExecutor(
                    size, thread_name_prefix=f"seawall-{state.name}"
                )
    return found
