"""The Redis keys of one fleet breaker.

Every part is length-prefixed, so no two (namespace, dependency, key) triples can spell the
same key (pybreaker #88: two breakers must never share state by accident), and the whole
identity is one hash tag `{...}`, so all of a breaker's keys live in one Redis Cluster slot
(the script touches them all in one call). A `}` inside a name only ends the tag early; the
tag is still the same prefix for all of that breaker's keys.
"""

from __future__ import annotations

from typing import NamedTuple


class BreakerKeys(NamedTuple):
    namespace: str
    dependency: str
    key: str

    @property
    def tag(self) -> str:
        parts = (self.namespace, self.dependency, self.key)
        return "{sw:" + ":".join(f"{len(p)}:{p}" for p in parts) + "}"

    def all(self) -> tuple[str, str, str, str, str]:
        """(window hash, state hash, reporters sorted set, probe key, manual hash): the
        scripts' KEYS."""
        tag = self.tag
        return (f"{tag}:w", f"{tag}:s", f"{tag}:r", f"{tag}:probe", f"{tag}:m")

    @property
    def budget(self) -> str:
        """The reporters of a retry budget without a breaker (`key` empty: one a dependency)."""
        return f"{self.tag}:b"


__all__ = ["BreakerKeys"]
