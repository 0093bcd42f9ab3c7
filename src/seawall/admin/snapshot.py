"""One JSON-ready snapshot of every live policy: what `seawall.status()` returns and what the
admin surface serves, pages and rolls up into health.

Every time is given twice: as seconds from now (`retry_in`) or as a UTC timestamp (`since`,
`open_until`), never as the policy's monotonic clock, which means nothing outside the process.
The state shown is the one that applies now: an open breaker whose `open_for` is up reads
`half_open` with `probe_due: true` (the bug of pybreaker #15 was to keep showing it open).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import os
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import registry
from ..policies.breaker import Breaker, CircuitBreaker
from ..telemetry.redact import redact_url

if TYPE_CHECKING:
    from ..pipeline import Policy
    from ..state import DependencyState


def service_name(given: str | None = None) -> str:
    """`given`, else $OTEL_SERVICE_NAME, else OpenTelemetry's default."""
    return given or os.environ.get("OTEL_SERVICE_NAME") or "unknown_service:python"


def status(
    policies: Iterable[Policy] | None = None, *, service: str | None = None
) -> dict[str, Any]:
    """The snapshot of `policies` (default: every live policy of the process)."""
    chosen = registry.policies() if policies is None else list(policies)
    dependencies = []
    claims: dict[str, list[int]] = {}
    for policy in chosen:
        for state in _states(policy):
            entry = dependency(policy, state)
            dependencies.append(entry)
            claims.setdefault(entry["name"], []).append(entry["policy"])
    conflicts = [
        {
            "dependency": name,
            "policies": numbers,
            "problem": f"{len(numbers)} policies claim the dependency {name!r}: each keeps "
            "its own breaker, bulkhead and budget, and controls by name are "
            "refused until the names differ",
        }
        for name, numbers in claims.items()
        if len(numbers) > 1
    ]
    return {
        "service": service_name(service),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "scope": "process",
        "time": _iso(_wall_now(chosen)),
        "dependencies": dependencies,
        "conflicts": conflicts,
    }


def _states(policy: Policy) -> list[DependencyState]:
    states = policy.dependencies()
    if policy.name is not None and not states:
        states = [policy.dependency(policy.name)]  # a named one is shown before its first request
    return states


def dependency(policy: Policy, state: DependencyState) -> dict[str, Any]:
    """The snapshot of one dependency of `policy`."""
    now, wall = policy.now(), policy._wall_clock()
    tally = registry.tally(policy)
    pool = policy.pool_counts().get(state.name)  # this dependency's connections
    return {
        "name": _safe(state.name),
        "policy": registry.number(policy),
        "breakers": [
            breaker_view(breaker, state.name, now, wall, tally) for breaker in state.breakers()
        ],
        "bulkhead": None if state.bulkhead is None else _bulkhead(state, now, wall, tally),
        "retry_budget": None
        if state.budget is None
        else {
            "left": round(state.budget.balance(now), 3),
            "ratio": state.budget.config.ratio,
            "floor_per_second": state.budget.config.min_per_second,
            "ttl": state.budget.config.ttl,
            # a seawall.Fleet shares the floor: this process's part of it, and among how many
            **_fleet_budget(state.budget),
        },
        "pool": None if pool is None else {"active": pool[0], "idle": pool[1]},
        "config": {
            part: config(getattr(policy, part))
            for part in ("retry", "timeouts", "breaker", "bulkhead", "pool")
        },
    }


def breaker_view(
    breaker: Breaker, dependency: str, now: float, wall: float, tally: registry.Tally
) -> dict[str, Any]:
    view = breaker.view(now)
    rejected, last_rejected = tally.breaker(dependency, breaker.key)
    cfg: CircuitBreaker = breaker.config
    open_until = None if view.retry_in in (0.0, math.inf) else wall + view.retry_in
    manual = view.manual
    fleet = getattr(breaker, "fleet_status", None)  # a seawall.Fleet breaker (docs/fleet.md)
    return {
        "key": _safe(breaker.key),
        "state": view.state.value,
        "probe_due": view.probe_due,
        "since": None if view.changed_at is None else _iso(wall - (now - view.changed_at)),
        "open_until": None if open_until is None else _iso(open_until),
        "retry_in": None if view.retry_in == math.inf else round(view.retry_in, 3),
        "window": {
            "calls": view.calls,
            "failures": view.failures,
            "slow": view.slow,
            "rejected": rejected,
            "failure_rate": round(view.failures / view.calls, 4) if view.calls else 0.0,
            "slow_rate": round(view.slow / view.calls, 4) if view.calls else 0.0,
        },
        "last_rejected": None if last_rejected is None else _iso(wall - (now - last_rejected)),
        # held open by health checks: why (policies.health), else None
        "unhealthy": _safe(breaker.unhealthy) if breaker.unhealthy is not None else None,
        # failure_rate: the one in force (an adaptive threshold moves it)
        "thresholds": {
            "failure_rate": breaker.failure_rate,
            "slow_call_rate": cfg.slow_call_rate,
            "slow_call_duration": cfg.slow_call_duration,
            "min_calls": cfg.min_calls,
            "consecutive_failures": cfg.consecutive_failures,
            "window": cfg.window,
            "window_type": cfg.window_type,
            "open_for": cfg.open_for,
            "adaptive": cfg.adaptive is not None,
            "throttle": cfg.throttle is not None,
        },
        "manual": None
        if manual is None
        else {
            "action": manual.action,
            "reason": manual.reason,
            "by": manual.by,
            "at": _iso(wall - (now - manual.at)),
            "scope": manual.scope,  # "process", or "fleet": asked of every process
        },
        **({} if fleet is None else {"fleet": _fleet(fleet(), now, wall)}),
    }


def _bulkhead(
    state: DependencyState, now: float, wall: float, tally: registry.Tally
) -> dict[str, Any]:
    bulkhead = state.bulkhead
    assert bulkhead is not None
    rejected, last = tally.bulkhead(state.name)
    return {
        "active": bulkhead.active,
        "queued": bulkhead.queued,
        "limit": bulkhead.config.max_concurrent,
        "max_queued": bulkhead.config.max_queued,
        "rejected": rejected,
        "last_rejected": None if last is None else _iso(wall - (now - last)),
        "last_rejected_ago": None if last is None else round(now - last, 3),
    }


def config(value: Any) -> Any:
    """A policy part as JSON: its fields, status sets as ranges, callables by name."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (frozenset, set)):
        if all(isinstance(x, int) for x in value):
            from ..config.router import _ranges

            return _ranges(frozenset(value))
        return sorted(str(config(x)) for x in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: config(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if callable(value):
        return "custom: " + getattr(value, "__qualname__", type(value).__name__)
    return str(value)


def _safe(name: str) -> str:
    """Names and keys may be built from URLs: never show their user-info or secrets."""
    return redact_url(name) if "://" in name else name


def _wall_now(policies: list[Policy]) -> float:
    return policies[0]._wall_clock() if policies else datetime.datetime.now().timestamp()


def _fleet(view: dict[str, Any], now: float, wall: float) -> dict[str, Any]:
    """The fleet side of a breaker, its last flush as a time like the others."""
    flushed = view["last_flush"]
    return {**view, "last_flush": None if flushed is None else _iso(wall - (now - flushed))}


def _fleet_budget(budget: Any) -> dict[str, Any]:
    reporters = getattr(budget, "reporters", None)  # a seawall.Fleet budget (fleet/budget.py)
    if reporters is None:
        return {}
    return {"fleet": {"reporters": reporters, "floor_per_second": round(budget.floor, 3)}}


def _iso(timestamp: float) -> str:
    return (
        datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
