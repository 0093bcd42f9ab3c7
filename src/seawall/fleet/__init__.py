"""Fleet mode: breaker verdicts shared by every process of a service, through Redis
(docs/fleet.md). Requests decide on local state; a background flusher aggregates in Redis."""

from .breaker import FleetBreaker, FleetView
from .keys import BreakerKeys
from .store import Fleet

__all__ = ["BreakerKeys", "Fleet", "FleetBreaker", "FleetView"]
