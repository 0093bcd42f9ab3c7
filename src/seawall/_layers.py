"""A client that already retries, wrapped by seawall, multiplies attempts (4 upstream requests
become 8): say so once per client, when seawall wraps it."""

from __future__ import annotations

import logging
from typing import Any

_logger = logging.getLogger("seawall")


def own_retries(wrapped: Any) -> int:
    """How many times `wrapped` (a requests adapter or an httpx transport) retries by itself."""
    retries = getattr(wrapped, "max_retries", None)  # requests' HTTPAdapter: a urllib3 Retry
    if retries is not None and hasattr(retries, "total"):
        if retries.total is None:
            return max((n or 0) for n in (retries.connect, retries.read, retries.status))
        return 0 if retries.total is False else int(retries.total)
    pool = getattr(wrapped, "_pool", None)  # httpx's HTTPTransport(retries=N): httpcore's pool
    if pool is not None and isinstance(getattr(pool, "_retries", None), int):
        return int(pool._retries)
    retry = getattr(wrapped, "retry", None)  # httpx-retries' RetryTransport(retry=Retry(...))
    if type(wrapped).__name__ == "RetryTransport" and retry is not None:
        return int(getattr(retry, "total", 1) or 1)
    return 0


def warn_if_retrying(owner: str, wrapped: Any) -> None:
    retries = own_retries(wrapped)
    if retries > 0:
        _logger.warning(
            "seawall: %s wraps %s, which retries by itself (%d times): each of seawall's "
            "attempts becomes up to %d upstream requests. Keep one layer: set the wrapped "
            "client's retries to 0, or seawall's Retry(max_attempts=1)",
            owner,
            type(wrapped).__name__,
            retries,
            retries + 1,
        )
