"""Timeouts: per attempt and in total (the pipeline keeps each request's deadline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from . import _validate


@dataclass(frozen=True, slots=True)
class Timeouts:
    """`attempt`: the longest one try may take (it reaches the client's connect/read/write/pool
    timeouts, so a slow attempt is really cut; a body that keeps trickling never trips it);
    `total`: the whole logical request from the moment it reaches seawall: the bulkhead queue
    wait, retries and backoff, and the reading of the response body, also a streamed one the
    caller reads later (docs/policies.md). None means no limit from seawall (the client's own
    timeouts still apply).

    `caller_first`: a request whose calling code set its own timeout (`httpx.Client(timeout=60)`,
    `requests.get(url, timeout=60)`) gets that timeout alone, not these. seawall's defaults
    (`Policy()`, or a configuration without `timeouts`) are `caller_first`; timeouts chosen for
    seawall are not, unless asked. aiohttp's middleware cannot see the caller's timeout: these
    apply there."""

    attempt: float | None = 10.0
    total: float | None = 30.0
    caller_first: bool = False

    RULES: ClassVar[_validate.Rules] = {
        "attempt": _validate.seconds(above_zero=True, optional=True),
        "total": _validate.seconds(above_zero=True, optional=True),
        "caller_first": _validate.FLAG,
    }

    def __post_init__(self) -> None:
        _validate.fields(self, self.RULES)
        if self.attempt is not None and self.total is not None and self.attempt > self.total:
            raise ValueError(
                f"Timeouts: attempt ({self.attempt!r} s) must not exceed total "
                f"({self.total!r} s): the total would cut every slow attempt first"
            )


#: seawall's own timeouts, used when none were chosen (`Policy()` or a configuration without
#: `timeouts`): a timeout the calling code set on its client or request wins over these.
DEFAULTS = Timeouts(caller_first=True)
