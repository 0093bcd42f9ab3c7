"""A retry budget in a fleet: the ratio stays local (<= 20 % of each process's requests is
<= 20 % of the fleet's), the per-second floor is shared: each process keeps the configured floor
divided by the processes that reported calls to the dependency in the fleet window, so the
fleet as a whole retries at most `min_per_second` a second on the floor, not N times it.
The flusher sets the divisor after each flush; while Redis is unreachable each process keeps
the whole floor (fail open: it decides alone)."""

from __future__ import annotations

from ..policies.retry import BudgetState, RetryBudget


class FleetBudget(BudgetState):
    """A `BudgetState` whose floor the fleet divides (see the module doc). The request path
    is `BudgetState`'s own."""

    __slots__ = ("__weakref__", "dependency", "reporters")

    def __init__(self, config: RetryBudget, dependency: str) -> None:
        super().__init__(config)
        self.dependency = dependency
        #: The divisor in force: processes reporting calls to the dependency (1: alone).
        self.reporters = 1

    def share(self, reporters: int) -> None:
        """Keep `1 / reporters` of the configured floor (at least 1 reporter: this one)."""
        reporters = max(1, reporters)
        config = self.config
        with self._lock:
            self.reporters = reporters
            self._reserve = config.min_per_second * config.ttl / reporters

    def active(self, now: float) -> bool:
        """Whether requests were counted in the window (a flush has a divisor to learn)."""
        with self._lock:
            return self._window.counts(now)[0] > 0

    @property
    def floor(self) -> float:
        """Retries per second this process keeps on the floor now."""
        return self.config.min_per_second / self.reporters


__all__ = ["FleetBudget"]
