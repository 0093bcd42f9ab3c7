"""Bounded metric cardinality: what keeps the label sets of a metric few, whatever the traffic.

Every attribute seawall puts on a metric is bounded on its own (`seawall.dependency` by
`max_dependencies`, `server.address`/`server.port` by `FirstValues`, methods by `_OTHER`), and
each metric fed by the request path also holds at most `LabelSets.limit` label sets: past it, a
new combination is recorded under the OpenTelemetry overflow set `{otel.metric.overflow: true}`
(the SDK's own cardinality limit, which the Python SDK does not have), so totals stay exact.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

#: The attribute set of the OpenTelemetry specification's overflow series.
OVERFLOW: dict[str, Any] = {"otel.metric.overflow": True}


class LabelSets:
    """The attribute dicts one metric records, by a key that determines them; at most `limit`
    of them (then `OVERFLOW`). The dicts are shared and must not be changed: the SDK reads them
    without keeping them."""

    __slots__ = ("_lock", "_sets", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sets: dict[Hashable, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> dict[str, Any] | None:
        """The attributes recorded for `key`, or None if it is new (then call `add`)."""
        return self._sets.get(key)

    def add(self, key: Hashable, attributes: dict[str, Any]) -> dict[str, Any]:
        """`attributes` as the set for `key`, or `OVERFLOW` when the metric has `limit` sets."""
        with self._lock:
            found = self._sets.get(key)
            if found is None:
                if len(self._sets) >= self.limit:
                    return OVERFLOW
                found = self._sets[key] = attributes
            return found

    def __len__(self) -> int:
        return len(self._sets)


class FirstValues:
    """Of the values seen under each label, the first `limit` are reported as they are (for
    `server.address`/`server.port` per dependency: a named dependency spread over many hosts,
    or the shared `_other`, would otherwise give a label set per host)."""

    __slots__ = ("_lock", "_seen", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: dict[str, set[Hashable]] = {}
        self._lock = threading.Lock()

    def admits(self, label: str, value: Hashable) -> bool:
        seen = self._seen.get(label)
        if seen is not None and value in seen:
            return True
        with self._lock:
            seen = self._seen.setdefault(label, set())
            if value in seen or len(seen) < self.limit:
                seen.add(value)
                return True
            return False
