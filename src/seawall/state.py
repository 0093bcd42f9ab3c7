"""The live state of each dependency (bulkhead, retry budget, circuit breakers), and the store
seam behind which breaker and retry-budget state is kept.

A `Store` builds the objects a dependency decides on. `LOCAL`, the default and today the only
store, keeps them in this process. A shared store (Redis, for a fleet of processes) plugs in
here and nowhere else: it returns a `Breaker` and a `BudgetState` that still decide on local
state at once and exchange counts with the store in the background, so the request path never
waits on it and the policies do not change. The bulkhead stays local on purpose: it bounds the
concurrency of this process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from .exchange import AsyncExchange, Exchange
from .policies.breaker import Breaker, CircuitBreaker, State, TransitionListener
from .policies.bulkhead import Bulkhead, BulkheadState
from .policies.retry import BudgetState, RetryBudget

#: on_transition(dependency, breaker_key, from_state, to_state, now)
DependencyTransition = Callable[[str, str, State, State, float], None]


class Store(Protocol):
    """Where breaker and retry-budget state lives (see the module docstring)."""

    def breaker(
        self, dependency: str, key: str, config: CircuitBreaker, on_transition: TransitionListener
    ) -> Breaker: ...
    def budget(self, dependency: str, config: RetryBudget) -> BudgetState: ...


class LocalStore:
    """State in this process only: nothing is shared with other processes."""

    def breaker(
        self, dependency: str, key: str, config: CircuitBreaker, on_transition: TransitionListener
    ) -> Breaker:
        return Breaker(config, key, on_transition)

    def budget(self, dependency: str, config: RetryBudget) -> BudgetState:
        return BudgetState(config)


LOCAL = LocalStore()


class DependencyState:
    """The live state one dependency owns: its bulkhead, retry budget and breaker(s).

    One breaker serves the whole dependency unless the breaker configuration has a `key`
    function; then there is one per key (at most `max_keys`, least recently used dropped)."""

    def __init__(
        self,
        name: str,
        *,
        bulkhead: Bulkhead | None,
        budget: RetryBudget | None,
        breaker: CircuitBreaker | None,
        on_transition: DependencyTransition,
        store: Store = LOCAL,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        #: The policy's clock: what the breakers' and the budget's queries read without `now`.
        self.clock = clock
        self.bulkhead = BulkheadState(bulkhead, name) if bulkhead else None
        self.budget = store.budget(name, budget) if budget else None
        if self.budget is not None:
            self.budget.clock = clock
        self._store = store
        self._config = breaker
        self._on_transition = on_transition
        self._lock = threading.Lock()
        self._breakers: OrderedDict[str, Breaker] = OrderedDict()
        #: Whether breakers are per key (`breaker_for`); otherwise `shared_breaker` is the one.
        self.keyed = breaker is not None and breaker.key is not None
        self.shared_breaker = None if breaker is None or self.keyed else self._new_breaker(name)

    def breaker(self, key: str | None = None) -> Breaker | None:
        """The breaker for `key` (the dependency's own breaker when no key function is set)."""
        if not self.keyed:
            return self.shared_breaker
        key = self.name if key is None else key
        with self._lock:
            found = self._breakers.get(key)
            if found is None:
                found = self._breakers[key] = self._new_breaker(key)
                assert self._config is not None
                if len(self._breakers) > self._config.max_keys:
                    self._breakers.popitem(last=False)
            else:
                self._breakers.move_to_end(key)
            return found

    def breaker_for(self, exchange: Exchange[Any] | AsyncExchange[Any]) -> Breaker | None:
        """The breaker a request goes through (its target is only read for keyed breakers)."""
        if not self.keyed:
            return self.shared_breaker
        assert self._config is not None and self._config.key is not None
        return self.breaker(str(self._config.key(exchange.target())))

    def breakers(self) -> list[Breaker]:
        if not self.keyed:
            return [self.shared_breaker] if self.shared_breaker else []
        with self._lock:
            return list(self._breakers.values())

    def _new_breaker(self, key: str) -> Breaker:
        assert self._config is not None
        breaker = self._store.breaker(self.name, key, self._config, self._transitioned)
        breaker.clock = self.clock
        return breaker

    def __repr__(self) -> str:
        """e.g. `<DependencyState 'api' breaker=closed failures=0/12 bulkhead=3/20 queued=0
        budget=112 retries left>`: each part's state, read at the policy's clock."""
        parts = [f"<DependencyState {self.name!r}"]
        breakers = self.breakers()
        if not self.keyed and breakers:
            view = breakers[0].view() if self.clock else None
            if view is not None:
                parts.append(f"breaker={view.state.value} failures={view.failures}/{view.calls}")
        elif self.keyed:
            states = [b.state().value for b in breakers] if self.clock else []
            opened = sum(state != "closed" for state in states)
            parts.append(f"breakers={len(breakers)} keys ({opened} not closed)")
        else:
            parts.append("breaker=none")
        bulkhead = self.bulkhead
        if bulkhead is None:
            parts.append("bulkhead=none")
        else:
            parts.append(
                f"bulkhead={bulkhead.active}/{bulkhead.config.max_concurrent} "
                f"queued={bulkhead.queued}/{bulkhead.config.max_queued}"
            )
        if self.budget is None:
            parts.append("budget=none")
        elif self.clock is not None:
            parts.append(f"budget={self.budget.balance():.0f} retries left")
        return " ".join(parts) + ">"

    def _transitioned(self, key: str, before: State, after: State, now: float) -> None:
        self._on_transition(self.name, key, before, after, now)


__all__ = ["DependencyState", "DependencyTransition", "LOCAL", "LocalStore", "Store"]
