"""seawall: resilient, observable HTTP clients (httpx, requests, aiohttp).

The public API, re-exported here; the adapters live in `seawall.httpx`, `seawall.requests` and
`seawall.aiohttp`.
"""

from .errors import (BulkheadFullError, CircuitOpenError, DeadlineExceeded, ResilienceError,
                     RetryBudgetExhausted)
from .pipeline import FallbackContext, Policy, Target
from .policies.breaker import CircuitBreaker
from .policies.breaker import State as BreakerState
from .policies.bulkhead import Bulkhead
from .policies.classify import ErrorKind
from .policies.retry import AttemptInfo, Backoff, Retry, RetryBudget
from .policies.timeouts import Timeouts
from .pool import Pool

__version__ = "0.1.0"


def instrument(config: object = None) -> object:
    """Make every httpx, requests and aiohttp client created from now on resilient and
    observable, with no other code change (see `seawall.instrumentation`)."""
    from .instrumentation import instrument as _instrument
    return _instrument(config)


__all__ = [
    "AttemptInfo", "Backoff", "BreakerState", "Bulkhead", "BulkheadFullError", "CircuitBreaker",
    "CircuitOpenError", "DeadlineExceeded", "ErrorKind", "FallbackContext", "Policy", "Pool",
    "ResilienceError", "Retry", "RetryBudget", "RetryBudgetExhausted", "Target", "Timeouts",
    "__version__", "instrument",
]
