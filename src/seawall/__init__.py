"""seawall: resilient, observable HTTP clients (httpx, requests, aiohttp), and any other call
(`seawall.protect`, `seawall.retrying`).

The public API, re-exported here; the adapters live in `seawall.httpx`, `seawall.requests` and
`seawall.aiohttp`, loaded on first use (`seawall.httpx.ResilientTransport` works after `import
seawall`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import (
    _lazy,
    admin,  # seawall.admin: status, health, controls, the admin surface
)
from .deadletters import DeadLetters
from .errors import (
    BulkheadFullError,
    CircuitOpenError,
    DeadlineExceeded,
    ResilienceError,
    RetryBudgetExhausted,
)
from .fleet import Fleet
from .overrides import override
from .pipeline import FallbackContext, Policy, Target
from .policies.adaptive import AdaptiveThreshold, Throttle
from .policies.breaker import CircuitBreaker
from .policies.breaker import State as BreakerState
from .policies.bulkhead import Bulkhead
from .policies.classify import ErrorKind
from .policies.health import HealthCheck
from .policies.pool import Pool
from .policies.retry import AttemptInfo, Backoff, Retry, RetryBudget
from .policies.timeouts import Timeouts
from .protect import AttemptTimedOut, protect
from .retrying import retrying

if TYPE_CHECKING:
    from .instrumentation import SeawallInstrumentor

__version__ = "0.1.0"


class _Instrument:
    """`seawall.instrument(config=None)`: make every httpx, requests and aiohttp client created
    from now on resilient and observable, with no other code change; returns the instrumentor
    (`uninstrument()` undoes it). `config`: a path, a dict, a `seawall.config.Config` or
    `Router` (default: $SEAWALL_CONFIG). `seawall.instrument.SeawallInstrumentor` is the
    OpenTelemetry instrumentor behind it, registered for `opentelemetry-instrument`. Both live
    in `seawall.instrumentation`, imported on first use so that `import seawall` stays light."""

    def __call__(self, config: object = None) -> SeawallInstrumentor:
        from .instrumentation import instrument as _instrument

        return _instrument(config)

    @property
    def SeawallInstrumentor(self) -> type[SeawallInstrumentor]:  # noqa: N802 (a class)
        from .instrumentation import SeawallInstrumentor

        return SeawallInstrumentor

    def __repr__(self) -> str:
        return "<seawall.instrument(config=None)>"


instrument = _Instrument()

# `seawall.httpx.ResilientTransport` works after a plain `import seawall` (PEP 562).
__getattr__, __dir__ = _lazy.submodules(
    __name__,
    (
        "aiohttp",
        "config",
        "errors",
        "events",
        "exchange",
        "httpx",
        "instrumentation",
        "pipeline",
        "policies",
        "registry",
        "requests",
        "state",
        "telemetry",
        "testing",
    ),
    globals(),
)


def status(
    policies: Iterable[Policy] | None = None, *, service: str | None = None
) -> dict[str, Any]:
    """One JSON-ready snapshot of every live policy (or of `policies`): service (`service`, or
    $OTEL_SERVICE_NAME), pid, host, and per dependency its breakers, bulkhead, retry budget,
    pool and effective configuration. See `seawall.admin` and docs/operations.md."""
    from .admin.snapshot import status as _status

    return _status(policies, service=service)


__all__ = [
    "AdaptiveThreshold",
    "admin",
    "AttemptInfo",
    "AttemptTimedOut",
    "Backoff",
    "BreakerState",
    "Bulkhead",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitOpenError",
    "DeadLetters",
    "DeadlineExceeded",
    "ErrorKind",
    "FallbackContext",
    "Fleet",
    "HealthCheck",
    "Policy",
    "Pool",
    "ResilienceError",
    "Retry",
    "RetryBudget",
    "RetryBudgetExhausted",
    "Target",
    "Throttle",
    "Timeouts",
    "__version__",
    "instrument",
    "override",
    "protect",
    "retrying",
    "status",
]
