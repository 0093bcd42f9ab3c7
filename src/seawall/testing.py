"""Testing code that uses seawall: the test switch and a fake clock (docs/testing.md).

    seawall.testing.set_testing(True)             # every policy: one attempt, no wait, no breaker
    seawall.testing.set_testing(True, attempts=3)  # three attempts (at most the policy's: cap=True)
    seawall.testing.set_testing(False)            # back to the policies' own

    with seawall.testing.set_testing(True):       # the same, undone when the block ends
        ...

The switch is process-wide (every thread, every event loop), as stamina's `set_testing`: code
under test often makes its requests on threads the test never sees. Under pytest, the
`seawall_testing` fixture (`seawall.pytest_plugin`, loaded by pytest on its own) turns it on
for one test. What the switch does to a request:

- attempts: `attempts` (1 by default) for a policy that retries; a policy without a `Retry`
  still makes one. What is retried is unchanged: a POST without an `Idempotency-Key` is still
  not retried, so tests see the same retry decisions as production, only fewer and at once.
- no waiting: no backoff, and `Retry-After` is not waited for (nor does it stop a retry).
- no breaker: none is asked and none is told, so none opens, and the retry budget is not
  spent. A breaker already held open by hand does not refuse calls either.
- unchanged: bulkheads, timeouts, fallbacks, events, spans and metrics.

It costs nothing when off: a request reads one context variable whether or not the switch or a
`seawall.override` is in force (`seawall.overrides`).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from . import overrides
from .overrides import Override, Testing
from .policies import _validate

_RULES: _validate.Rules = {"testing": _validate.FLAG}


class _Switched:
    """What `set_testing` returns: as a context manager, it puts back the switch as it was."""

    __slots__ = ("_before",)

    def __init__(self, before: Override | None) -> None:
        self._before = before

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        overrides.TESTING = self._before


def set_testing(testing: bool, *, attempts: int = 1, cap: bool = False) -> _Switched:
    """Turn the test switch on (every policy: `attempts` attempts, or at most its own number
    with `cap=True`; no waiting; no breaker) or off. Used as a context manager, the switch is
    put back as it was when the block ends."""
    _validate.arguments("seawall.testing.set_testing", _RULES, {"testing": testing})
    settings = Testing(attempts, cap)  # checks attempts and cap
    before = overrides.TESTING
    overrides.TESTING = Override(testing=settings) if testing else None
    return _Switched(before)


def is_testing() -> bool:
    """Whether the test switch is on."""
    return overrides.TESTING is not None


def settings() -> Testing | None:
    """The switch's settings (`attempts`, `cap`) while it is on, else None."""
    return None if overrides.TESTING is None else overrides.TESTING.testing


class FakeClock:
    """A clock that moves only when told to, or when a policy sleeps on it:

        clock = seawall.testing.FakeClock()
        policy = seawall.Policy("api", **clock.policy_args())
        ...
        clock.advance(5.0)  # an open breaker's `open_for` is up
        assert clock.sleeps == [...]  # the waits between attempts, in order

    `now` is the monotonic time (seconds), `wall()` the matching Unix time (for `Retry-After`
    dates); `sleep` and `async_sleep` return at once, having moved the clock."""

    def __init__(self, now: float = 1000.0, *, wall: float = 1_700_000_000.0) -> None:
        self.now = float(now)
        self._wall_offset = wall - self.now
        #: Every wait asked for, in order.
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self._wall_offset

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # still a suspension point, as a real wait is

    def policy_args(self) -> dict[str, Any]:
        """The `Policy` arguments that put a policy on this clock."""
        return {
            "clock": self,
            "wall_clock": self.wall,
            "sleep": self.sleep,
            "async_sleep": self.async_sleep,
        }

    def __repr__(self) -> str:
        return f"<FakeClock now={self.now:g} sleeps={len(self.sleeps)}>"


__all__ = ["FakeClock", "is_testing", "set_testing", "settings"]
