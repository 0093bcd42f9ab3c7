"""Connection-pool limits, translated by each adapter into its client's own settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from . import _validate


@dataclass(frozen=True, slots=True)
class Pool:
    """Connections kept per client: at most `max_connections` open, `max_keepalive` idle ones
    kept for reuse, each dropped after `keepalive_expiry` idle seconds (httpx's defaults)."""

    max_connections: int = 100
    max_keepalive: int = 20
    keepalive_expiry: float = 5.0

    RULES: ClassVar[_validate.Rules] = {
        "max_connections": _validate.Count(),
        "max_keepalive": _validate.Count(0),
        "keepalive_expiry": _validate.seconds(),
    }

    def __post_init__(self) -> None:
        _validate.fields(self, self.RULES)
