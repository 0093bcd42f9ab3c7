"""Connection-pool limits, translated by each adapter into its client's own settings."""

from __future__ import annotations

from dataclasses import dataclass

from . import _validate


@dataclass(frozen=True, slots=True)
class Pool:
    """Connections kept per client: at most `max_connections` open, `max_keepalive` idle ones
    kept for reuse, each dropped after `keepalive_expiry` idle seconds (httpx's defaults)."""

    max_connections: int = 100
    max_keepalive: int = 20
    keepalive_expiry: float = 5.0

    def __post_init__(self) -> None:
        _validate.count("Pool", "max_connections", self.max_connections)
        _validate.count("Pool", "max_keepalive", self.max_keepalive, minimum=0)
        _validate.seconds("Pool", "keepalive_expiry", self.keepalive_expiry)
