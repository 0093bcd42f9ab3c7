"""Health probes as an input to a breaker, not an override (sans-I/O).

`HealthCheck` says where and how often to probe one dependency; `HealthState` turns probe
results into a verdict: `unhealthy_after` failures in a row make the dependency unhealthy,
which forces its breaker open (no probe of real traffic gets through meanwhile);
`healthy_after` passes in a row make it healthy again, which only lets the breaker half-open:
real traffic closes it. A passing probe never closes a breaker that real traffic opened (the
Envoy bugs where an active health check un-ejected a failing host, envoy#28303).

The probing itself (a thread or an asyncio task that sends the probe straight through the
client's transport) lives in `seawall.probes`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from . import _validate


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """Probe `url` every `interval` seconds (each wait drawn from `interval` +- `jitter` of it,
    so many processes do not probe in step), each probe cut after `timeout` seconds. A probe
    passes on a status in `healthy_statuses` (any 2xx by default) within the timeout."""

    url: str
    interval: float = 10.0
    jitter: float = 0.1
    timeout: float = 2.0
    unhealthy_after: int = 3
    healthy_after: int = 2
    healthy_statuses: frozenset[int] = frozenset(range(200, 300))

    #: What each argument must be (checked, types first, when it is built).
    RULES: ClassVar[_validate.Rules] = {
        "url": _validate.Text(),
        "interval": _validate.seconds(above_zero=True),
        "jitter": _validate.ratio(zero=True),
        "timeout": _validate.seconds(above_zero=True),
        "unhealthy_after": _validate.Count(),
        "healthy_after": _validate.Count(),
        "healthy_statuses": _validate.STATUSES,
    }

    def __post_init__(self) -> None:
        _validate.fields(self, self.RULES)
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f"HealthCheck: url must be an http:// or https:// URL, got {self.url!r}"
            )

    def next_wait(self, random: Callable[[], float]) -> float:
        """Seconds until the next probe."""
        return self.interval * (1 + self.jitter * (2 * random() - 1))


class HealthState:
    """Consecutive probe results of one dependency, and the verdict they add up to (healthy
    until proven otherwise). Not thread-safe: one prober feeds it."""

    __slots__ = ("check", "failures", "healthy", "passes")

    def __init__(self, check: HealthCheck) -> None:
        self.check = check
        self.healthy = True
        self.failures = 0  # in a row
        self.passes = 0  # in a row

    def passed(self, status: int | None) -> bool:
        return status is not None and status in self.check.healthy_statuses

    def record(self, passed: bool) -> bool | None:
        """Count one probe; the new verdict when it changed (False: unhealthy, True: healthy),
        else None."""
        if passed:
            self.failures = 0
            self.passes += 1
            if not self.healthy and self.passes >= self.check.healthy_after:
                self.healthy = True
                return True
        else:
            self.passes = 0
            self.failures += 1
            if self.healthy and self.failures >= self.check.unhealthy_after:
                self.healthy = False
                return False
        return None
