"""Simulated clients: a real `seawall.Policy` on the virtual clock, driven the way
`Policy.run` drives it (the same `_Run` decisions: breaker, retry, budget, deadline), except
that an attempt is a job on a simulated server and every wait is a scheduled event.

Only the waiting differs from the real drivers: the bulkhead queue and the backoff are timers,
and an attempt timeout is a timer that abandons the job (the server still serves it).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import events as ev
from ..errors import PLAIN, BulkheadFullError, CircuitOpenError, ResilienceError
from ..exchange import Target
from ..pipeline import Policy, _Run
from ..policies.breaker import State
from ..policies.bulkhead import Admission, BulkheadState
from ..policies.classify import ErrorKind
from ..policies.health import HealthCheck
from ..probes import _Prober
from ..telemetry import logs
from .engine import Loop, Timer
from .server import Job, Server


class AttemptTimeout(Exception):
    """An attempt outlived its timeout (a read timeout, to the policies)."""


class SimExchange:
    """One logical request as the pipeline sees it: a GET to `host`; a response is its status."""

    method = "GET"
    request = None
    errors = PLAIN
    telemetry = None

    __slots__ = ("_origin", "_target")

    def __init__(self, host: str) -> None:
        self._target = Target("GET", "http", host, 80, "/")
        self._origin = f"http://{host}:80"

    def origin(self) -> str:
        return self._origin

    def target(self) -> Target:
        return self._target

    def has_header(self, name: str) -> bool:
        return False

    def status(self, response: int) -> int:
        return response

    def header(self, response: int, name: str) -> str | None:
        return None

    def discard(self, response: int) -> None:
        pass

    def hold(self, response: int, time_left: float, dependency: str) -> None:
        pass  # a simulated response has no body to read

    def rewind(self) -> bool:
        return True

    def error_kind(self, error: BaseException) -> ErrorKind | None:
        return ErrorKind.READ_TIMEOUT if isinstance(error, AttemptTimeout) else None

    def send(self, timeout: float, time_left: float) -> int:
        raise NotImplementedError("a simulated attempt is a job on a simulated server")

    def url(self) -> str:
        return self._origin + "/"

    def set_header(self, name: str, value: str) -> None:
        pass

    def protocol(self, response: int) -> str | None:
        return "1.1"

    def caller_timeout(self) -> bool:
        return False

    def peer(self, response: int) -> tuple[str, int] | None:
        return None

    def headers(self) -> list[tuple[str, str]]:
        return []

    def body(self) -> bytes | None:
        return None


@dataclass
class Outcome:
    """One finished logical request."""

    started: float
    ended: float
    attempts: int
    result: str  # "success" | "failure" | "rejected"
    host: str


class Recorder:
    """What every simulated request did, and when each breaker was not closed."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.attempt_times: list[float] = []
        self.not_closed: dict[tuple[int, str], float] = {}  # breaker -> since when
        self.open_time = 0.0
        self.transitions: list[tuple[float, int, str, str]] = []  # (at, client, key, to)

    def transition(self, client: int, event: ev.Event) -> None:
        assert isinstance(event, ev.CircuitTransition)
        key = (client, event.key)
        self.transitions.append((event.at, client, event.key, event.to_state.value))
        if event.to_state is State.CLOSED:
            since = self.not_closed.pop(key, None)
            if since is not None:
                self.open_time += event.at - since
        else:
            self.not_closed.setdefault(key, event.at)

    def close_books(self, now: float) -> None:
        for since in self.not_closed.values():
            self.open_time += now - since
        self.not_closed.clear()


class _Waiter:
    """A bulkhead waiter whose wake-up is an event on the loop."""

    __slots__ = ("go", "loop", "timer")

    def __init__(self, loop: Loop, go: Callable[[], None]) -> None:
        self.loop = loop
        self.go = go
        self.timer: Timer | None = None

    def wake(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.loop.after(0.0, self.go)


class Client:
    """One process's policy against the simulated hosts."""

    def __init__(
        self, number: int, policy: Policy, loop: Loop, hosts: dict[str, Server], recorder: Recorder
    ) -> None:
        self.number = number
        self.policy = policy
        self.loop = loop
        self.hosts = hosts
        self.recorder = recorder
        policy.unsubscribe(logs.log_event)  # a simulation logs nothing
        policy.subscribe(
            lambda e: recorder.transition(number, e),
            ev.CircuitTransition,
        )

    def request(self, host: str, done: Callable[[Outcome], None] | None = None) -> None:
        """Start one logical request to `host`; `done(outcome)` when it ends."""
        _Request(self, host, done).start()


class _Request:
    __slots__ = ("bulkhead", "client", "done", "ex", "host", "job", "run", "timer")

    def __init__(self, client: Client, host: str, done: Callable[[Outcome], None] | None) -> None:
        self.client = client
        self.host = host
        self.done = done
        self.ex = SimExchange(host)
        self.run: _Run[int] = _Run(client.policy, self.ex)
        self.bulkhead: BulkheadState | None = self.run.dep.bulkhead
        self.job: Job | None = None
        self.timer: Timer | None = None

    def start(self) -> None:
        bulkhead, run = self.bulkhead, self.run
        if bulkhead is None or bulkhead.try_acquire():
            self.attempt()
            return
        waiter = _Waiter(self.client.loop, self._admitted)
        admission = bulkhead.enqueue(waiter)
        if admission is Admission.REJECTED:
            self.bulkhead = None  # no slot to give back
            self._give_up(run.bulkhead_rejected("queue_full"))
        elif admission is Admission.ADMITTED:
            self.attempt()
        elif bulkhead.config.queue_timeout is not None:
            waiter.timer = self.client.loop.after(
                bulkhead.config.queue_timeout, self._queue_timeout, waiter
            )

    def _admitted(self) -> None:
        self.run.admitted(queued=True)
        self.attempt()

    def _queue_timeout(self, waiter: _Waiter) -> None:
        assert self.bulkhead is not None
        if self.bulkhead.withdraw(waiter):
            self.bulkhead = None
            self._give_up(self.run.bulkhead_rejected("queue_timeout"))

    def attempt(self) -> None:
        timeout = self.run.before_attempt()
        if timeout is None:
            self._give_up()
            return
        client = self.client
        client.recorder.attempt_times.append(client.loop.now)
        self.job = client.hosts[self.host].submit(self._answered)
        if timeout != float("inf"):
            self.timer = client.loop.after(timeout, self._timed_out)

    def _answered(self, status: int) -> None:
        if self.timer is not None:
            self.timer.cancel()
        delay = self.run.after_response(status)
        if delay is None:
            response, _ = self.run.finish(status)
            self._end("success" if response < 500 else "failure")
        else:
            self.client.loop.after(delay, self.attempt)

    def _timed_out(self) -> None:
        assert self.job is not None
        self.job.abandoned = True
        delay = self.run.after_error(AttemptTimeout())
        if delay is None:
            self._give_up()
        else:
            self.client.loop.after(delay, self.attempt)

    def _give_up(self, error: BaseException | None = None) -> None:
        try:
            self.run.give_up(error)
        except (ResilienceError, AttemptTimeout) as raised:  # the end a caller would see
            # rejected: refused without going out (breaker, throttle, bulkhead)
            refused = isinstance(raised, (CircuitOpenError, BulkheadFullError))
            self._end("rejected" if refused else "failure")

    def _end(self, result: str) -> None:
        if self.bulkhead is not None:
            self.bulkhead.release()
            self.bulkhead = None
        client = self.client
        outcome = Outcome(self.run.started, client.loop.now, self.run.attempt, result, self.host)
        client.recorder.outcomes.append(outcome)
        if self.done is not None:
            self.done(outcome)


def make_policy(loop: Loop, rng: random.Random, name: str | None, **parts: Any) -> Policy:
    """A real Policy on the virtual clock, with no telemetry."""
    return Policy(
        name, telemetry=False, clock=loop.time, wall_clock=loop.time, random=rng.random, **parts
    )


class SimProber(_Prober):
    """Health probes on the virtual clock, fed to the real `HealthState` and `update_health`
    (`seawall.probes`): only the sending is simulated (the server's health endpoint)."""

    def __init__(
        self, policy: Policy, check: HealthCheck, loop: Loop, server: Server, rng: random.Random
    ) -> None:
        super().__init__(policy, check, rng.random)
        self.loop = loop
        self.server = server
        loop.after(self._wait(), self._probe)

    def _probe(self) -> None:
        self._result(200 if self.server.healthy_probe() else 503, None, self.loop.now)
        self.loop.after(self._wait(), self._probe)
