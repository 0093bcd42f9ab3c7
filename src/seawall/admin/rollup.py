"""The health rollup of a snapshot (`seawall.admin.health()`): healthy, degraded or critical,
served as `application/health+json` (draft-inadarei-api-health-check: pass / warn / fail).

- healthy (pass, HTTP 200): every breaker closed, no bulkhead rejecting;
- degraded (warn, HTTP 200): a breaker open, half-open, isolated or disabled, or a bulkhead
  that turned a caller away in the last `rejecting_within` seconds;
- critical (fail, HTTP 503): more than `critical_share` of the dependencies open (a dependency
  is open while any of its breakers is open or isolated), or any dependency named in
  `critical` open.

An open breaker is seawall doing its job, so by default it degrades, it does not fail: point a
readiness probe at /health (503 only when critical), never a liveness probe (resilience4j #607).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

HEALTHY, DEGRADED, CRITICAL = "healthy", "degraded", "critical"
STATUS = {HEALTHY: "pass", DEGRADED: "warn", CRITICAL: "fail"}
HTTP_STATUS = {HEALTHY: 200, DEGRADED: 200, CRITICAL: 503}
MEDIA_TYPE = "application/health+json"
_OPEN = ("open", "isolated")


@dataclass(frozen=True)
class HealthRules:
    """When the rollup says critical. `critical`: dependency names whose breaker being open
    makes the whole service critical; `critical_share`: the share of open dependencies above
    which it is critical anyway; `rejecting_within`: how recent a bulkhead rejection must be
    to count as rejecting (seconds)."""

    critical: frozenset[str] = field(default_factory=frozenset)
    critical_share: float = 0.5
    rejecting_within: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.critical, str) or not isinstance(self.critical, Iterable):
            raise TypeError(
                f"HealthRules: critical must be a collection of dependency names, "
                f"got {self.critical!r}"
            )
        object.__setattr__(self, "critical", frozenset(self.critical))
        if not (isinstance(self.critical_share, (int, float)) and 0 <= self.critical_share < 1):
            raise ValueError(
                f"HealthRules: critical_share must be a number from 0 to below 1, "
                f"got {self.critical_share!r}"
            )
        if not (isinstance(self.rejecting_within, (int, float)) and self.rejecting_within > 0):
            raise ValueError(
                f"HealthRules: rejecting_within must be a number of seconds > 0, "
                f"got {self.rejecting_within!r}"
            )


def rollup(snapshot: dict[str, Any], rules: HealthRules = HealthRules()) -> dict[str, Any]:
    """The health+json document of `snapshot` (its `seawall.level` is healthy, degraded or
    critical; `http_status(document)` gives the HTTP status to answer with)."""
    checks: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    deps = snapshot["dependencies"]
    opened = 0
    level = HEALTHY
    for dep in deps:
        name = dep["name"]
        states = [b["state"] for b in dep["breakers"]]
        is_open = any(s in _OPEN for s in states)
        opened += is_open
        status = "pass"
        if any(s != "closed" for s in states):
            status = "warn"
        if is_open and name in rules.critical:
            status = "fail"
            notes.append(f"{name} is marked critical and its circuit breaker is open")
        checks[f"{name}:circuit_breaker"] = [
            {
                "componentId": name,
                "componentType": "dependency",
                "observedValue": _summary(states),
                "status": status,
                "time": snapshot["time"],
                **(
                    {"output": f"circuit breaker {', '.join(sorted(set(states)))}"}
                    if status != "pass"
                    else {}
                ),
            }
        ]
        bulkhead = dep["bulkhead"]
        if bulkhead is not None:
            ago = bulkhead["last_rejected_ago"]
            rejecting = ago is not None and ago <= rules.rejecting_within
            checks[f"{name}:bulkhead"] = [
                {
                    "componentId": name,
                    "componentType": "dependency",
                    "observedValue": bulkhead["active"],
                    "observedUnit": "requests",
                    "status": "warn" if rejecting else "pass",
                    "time": snapshot["time"],
                    **(
                        {"output": f"rejected callers in the last {rules.rejecting_within:g} s"}
                        if rejecting
                        else {}
                    ),
                }
            ]
        for entries in (checks[f"{name}:circuit_breaker"], checks.get(f"{name}:bulkhead", [])):
            for entry in entries:
                if entry["status"] == "fail":
                    level = CRITICAL
                elif entry["status"] == "warn" and level == HEALTHY:
                    level = DEGRADED
    if deps and opened / len(deps) > rules.critical_share:
        level = CRITICAL
        notes.append(
            f"{opened} of {len(deps)} dependencies have an open circuit breaker "
            f"(more than {rules.critical_share:.0%})"
        )
    return {
        "status": STATUS[level],
        "serviceId": snapshot["service"],
        "description": f"seawall's dependencies of {snapshot['service']} "
        f"(pid {snapshot['pid']} on {snapshot['host']})",
        "notes": notes,
        "checks": checks,
        "seawall": {
            "level": level,
            "pid": snapshot["pid"],
            "host": snapshot["host"],
            "scope": snapshot["scope"],
        },
    }


def http_status(document: dict[str, Any]) -> int:
    return HTTP_STATUS[document["seawall"]["level"]]


def _summary(states: list[str]) -> str:
    if len(states) == 1:
        return states[0]
    if not states:
        return "no breaker"
    return ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
