"""Health probes in the background: a thread for sync clients, an asyncio task for async ones.

Each probe is sent straight through the client's own transport (not through the policy: a
probe must not be retried, rejected by the breaker it informs, or counted as traffic). Its
result goes to the dependency's `HealthState` (`policies.health`); when the verdict changes,
`update_health` holds the breaker open (unhealthy) or lets it half-open (healthy). The prober
stops when the client is closed (an aiohttp session has no close hook for its middleware: its
prober holds the session weakly, and ends at its first wake after the close, or when the
session is collected).
"""

from __future__ import annotations

import asyncio
import random as _random
import threading
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from . import events as ev
from .policies.health import HealthCheck, HealthState

_DEFAULT_PORTS = {"http": 80, "https": 443}


def update_health(
    policy: Any,
    healthy: bool,
    *,
    dependency: str | None = None,
    reason: str = "",
    source: str = "manual",
) -> None:
    """Mark a dependency unhealthy (its breakers held open, `reason` shown in rejections and
    status) or healthy again (they may half-open; real traffic closes them)."""
    if not isinstance(healthy, bool):
        raise TypeError(
            f"update_health: healthy must be a bool, got {type(healthy).__name__} {healthy!r}"
        )
    name = dependency if dependency is not None else policy.name
    if not isinstance(name, str) or not name:
        raise ValueError(
            "update_health: dependency must name the dependency (a non-empty "
            f"string) when the policy has no name, got {name!r}"
        )
    state = policy.dependency(name)
    now = policy.now()
    why = reason or ("healthy" if healthy else "unhealthy")
    for breaker in state.breakers():
        if healthy:
            breaker.health_up(now)
        else:
            breaker.health_down(now, f"{source}: {why}")
    if ev.HealthChanged in policy._on:
        policy._emit(ev.HealthChanged(state.name, healthy, why, source, now))


def dependency_of(policy: Any, check: HealthCheck) -> str:
    """The dependency a probe informs: the policy's name, else the probe URL's origin (the
    name an unnamed policy gives that origin's requests)."""
    if policy.name:
        return str(policy.name)
    parts = urlsplit(check.url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or _DEFAULT_PORTS[parts.scheme]}"


class _Prober:
    """What both probers share: counting results and telling the policy."""

    def __init__(
        self, policy: Any, check: HealthCheck, random: Callable[[], float] = _random.random
    ) -> None:
        self.policy = policy
        self.check = check
        self.state = HealthState(check)
        self.dependency = dependency_of(policy, check)
        self._random = random

    def _wait(self) -> float:
        return self.check.next_wait(self._random)

    def _result(self, status: int | None, error: BaseException | None, started: float) -> None:
        passed = error is None and self.state.passed(status)
        policy = self.policy
        if ev.HealthProbed in policy._on:
            error_type = None if error is None else type(error).__qualname__
            now = policy.now()
            policy._emit(
                ev.HealthProbed(self.dependency, passed, status, error_type, now - started, now)
            )
        verdict = self.state.record(passed)
        if verdict is not None:
            what = (
                f"{self.check.healthy_after} probes passed"
                if verdict
                else f"{self.check.unhealthy_after} probes failed in a row (last: "
                f"{status if error is None else type(error).__qualname__})"
            )
            update_health(policy, verdict, dependency=self.dependency, reason=what, source="probe")


class ThreadProber(_Prober):
    """Probes on a daemon thread with `send(url, timeout) -> status` until `stop()`."""

    def __init__(
        self,
        policy: Any,
        check: HealthCheck,
        send: Callable[[str, float], int],
        random: Callable[[], float] = _random.random,
    ) -> None:
        super().__init__(policy, check, random)
        self._send = send
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"seawall-probe-{self.dependency}", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(self._wait()):
            started = self.policy.now()
            try:
                status, error = self._send(self.check.url, self.check.timeout), None
            except Exception as failed:  # noqa: BLE001 (any failure of a probe is a failed probe)
                status, error = None, failed
            if not self._stopped.is_set():
                self._result(status, error, started)

    def stop(self, timeout: float | None = None) -> None:
        self._stopped.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(self.check.timeout + 1 if timeout is None else timeout)


class TaskProber(_Prober):
    """Probes in an asyncio task with `await send(url, timeout) -> status`; the task starts
    with `ensure_started()` (on the running loop) and ends with `await stop()`, `cancel()`, or
    by itself when `alive()` (asked before each probe and before its result counts) says
    the client is gone."""

    def __init__(
        self,
        policy: Any,
        check: HealthCheck,
        send: Callable[[str, float], Awaitable[int]],
        random: Callable[[], float] = _random.random,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(policy, check, random)
        self._send = send
        self._alive = alive
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name=f"seawall-probe-{self.dependency}"
            )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._wait())
            if not self._alive():
                return  # the client was closed: no probe of a closed client
            started = self.policy.now()
            try:
                async with asyncio.timeout(self.check.timeout):
                    status, error = await self._send(self.check.url, self.check.timeout), None
            except asyncio.CancelledError:
                raise
            except Exception as failed:  # noqa: BLE001 (any failure of a probe is a failed probe)
                status, error = None, failed
            if self._alive():  # (a probe cut short by the client's close does not count)
                self._result(status, error, started)

    def cancel(self) -> None:
        """Stop the task from anywhere, without waiting (a finalizer's way)."""
        task = self._task
        if task is not None and not task.done():
            try:
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # its loop is closed: the task is gone with it
                pass

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


def probed(policy: Any) -> list[Any]:
    """The policies whose health a client probes: the policy itself, or each policy of a
    `seawall.config.Router` (one per dependency of the file) that has a `health` check."""
    found = policy.policies() if hasattr(policy, "policies") else [policy]
    return [p for p in found if isinstance(getattr(p, "health", None), HealthCheck)]


class ThreadProbers:
    """The started thread probers of one client, stopped together."""

    def __init__(self, probers: list[ThreadProber]) -> None:
        self.probers = probers

    def stop(self, timeout: float | None = None) -> None:
        for prober in self.probers:
            prober.stop(timeout)


class TaskProbers:
    """The task probers of one client, started (on the running loop) and stopped together."""

    def __init__(self, probers: list[TaskProber]) -> None:
        self.probers = probers

    def ensure_started(self) -> None:
        for prober in self.probers:
            prober.ensure_started()

    def cancel(self) -> None:
        for prober in self.probers:
            prober.cancel()

    async def stop(self) -> None:
        for prober in self.probers:
            await prober.stop()


def thread_for(policy: Any, send: Callable[[str, float], int]) -> ThreadProbers | None:
    """Started probers for the policy's `health` check(s), or None when it has none."""
    found = probed(policy)
    return ThreadProbers([ThreadProber(p, p.health, send) for p in found]) if found else None


def task_for(
    policy: Any,
    send: Callable[[str, float], Awaitable[int]],
    alive: Callable[[], bool] = lambda: True,
) -> TaskProbers | None:
    """Probers to start on the loop for the policy's `health` check(s), or None."""
    found = probed(policy)
    if not found:
        return None
    return TaskProbers([TaskProber(p, p.health, send, alive=alive) for p in found])
