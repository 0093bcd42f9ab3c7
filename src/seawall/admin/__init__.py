"""Operating seawall at run time: the snapshot, health, manual controls and the admin surface.

    seawall.status()                         # one JSON-ready snapshot of every live policy
    seawall.admin.health()                   # the rollup, as application/health+json
    seawall.admin.isolate("payments", reason="failover drill", by="alice")
    app = seawall.admin.asgi_app(read_token=..., control_token=...)   # Starlette / FastAPI
    app = seawall.admin.wsgi_app(read_token=..., control_token=...)   # Flask / Django
    server = seawall.admin.serve(port=9901, read_token=..., control_token=...)  # standalone

Every function takes `policies=` (default: every live policy of the process).
See docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .controls import ControlError
from .snapshot import status

if TYPE_CHECKING:
    from ..pipeline import Policy
    from .core import Admin
    from .fronts import AdminServer, asgi_app, serve, wsgi_app
    from .rollup import HealthRules

#: Imported on first use, so that `import seawall` stays light (the fronts bring wsgiref).
_LAZY = {
    "Admin": "core",
    "AdminServer": "fronts",
    "asgi_app": "fronts",
    "serve": "fronts",
    "wsgi_app": "fronts",
    "HealthRules": "rollup",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reset(
    dependency: str,
    *,
    key: str | None = None,
    reason: str = "",
    by: str = "",
    policies: Iterable[Policy] | None = None,
    scope: str = "process",
) -> dict[str, Any]:
    """Close the dependency's breaker(s) and clear their windows (lifts isolate and disable).
    `scope="fleet"`: in every process of its `seawall.Fleet` (so for isolate and disable)."""
    from . import controls

    return controls.breaker(
        policies, dependency, "reset", key=key, reason=reason, by=by, scope=scope
    )


def isolate(
    dependency: str,
    *,
    key: str | None = None,
    reason: str = "",
    by: str = "",
    policies: Iterable[Policy] | None = None,
    scope: str = "process",
) -> dict[str, Any]:
    """Hold the dependency's breaker(s) open until `reset`."""
    from . import controls

    return controls.breaker(
        policies, dependency, "isolate", key=key, reason=reason, by=by, scope=scope
    )


def disable(
    dependency: str,
    *,
    key: str | None = None,
    reason: str = "",
    by: str = "",
    policies: Iterable[Policy] | None = None,
    scope: str = "process",
) -> dict[str, Any]:
    """Let every call through the dependency's breaker(s), still counting, until `reset`."""
    from . import controls

    return controls.breaker(
        policies, dependency, "disable", key=key, reason=reason, by=by, scope=scope
    )


def reset_bulkhead(
    dependency: str, *, reason: str = "", by: str = "", policies: Iterable[Policy] | None = None
) -> dict[str, Any]:
    from . import controls

    return controls.bulkhead(policies, dependency, reason=reason, by=by)


def reset_retry_budget(
    dependency: str, *, reason: str = "", by: str = "", policies: Iterable[Policy] | None = None
) -> dict[str, Any]:
    from . import controls

    return controls.retry_budget(policies, dependency, reason=reason, by=by)


def health(
    policies: Iterable[Policy] | None = None,
    rules: HealthRules | None = None,
    *,
    service: str | None = None,
) -> dict[str, Any]:
    """The health rollup (application/health+json) of the live policies."""
    from .rollup import HealthRules, rollup

    return rollup(status(policies, service=service), rules or HealthRules())


__all__ = [
    "Admin",
    "AdminServer",
    "ControlError",
    "HealthRules",
    "asgi_app",
    "disable",
    "health",
    "isolate",
    "reset",
    "reset_bulkhead",
    "reset_retry_budget",
    "serve",
    "status",
    "wsgi_app",
]
