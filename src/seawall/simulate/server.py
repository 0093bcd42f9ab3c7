"""The server model: `workers` requests served at a time from a FIFO queue, each taking a
service time drawn from a distribution, slowed by a capacity factor and failing with an error
rate, both functions of time (the scenario's trigger).

It is closed-loop in the way that matters: an attempt the client gave up on (its timeout) stays
in the queue and is still served, so an overloaded server spends its capacity on answers nobody
waits for, and the retries of those attempts add to the queue: the sustaining effect of a
metastable failure (Bronson et al., HotOS'21).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .engine import Loop

#: A piecewise function of time: [(start, end, value)], `default` outside every piece.
Timeline = tuple[tuple[float, float, float], ...]


def at_time(timeline: Timeline, t: float, default: float) -> float:
    for start, end, value in timeline:
        if start <= t < end:
            return value
    return default


def ramp(start: float, end: float, low: float, high: float, steps: int = 60) -> Timeline:
    """A straight line from `low` at `start` to `high` at `end`, in `steps` flat pieces."""
    width = (end - start) / steps
    return tuple(
        (start + i * width, start + (i + 1) * width, low + (high - low) * (i + 0.5) / steps)
        for i in range(steps)
    )


@dataclass(frozen=True)
class ServerModel:
    """`workers` at a time, `service_time` mean seconds (`distribution` "exponential",
    "lognormal" with `sigma`, or "constant"); beyond `max_queue` waiting, an instant 503.
    `capacity(t)`: a factor on the speed (0.2 = the CPU cut by 80%); `error_rate(t)`: the share
    of requests that fail (503), after `failure_cost` of their service time."""

    workers: int = 10
    service_time: float = 0.05
    distribution: str = "exponential"
    sigma: float = 1.0
    max_queue: int | None = None
    capacity: Timeline = ()
    error_rate: Timeline = ()
    base_error_rate: float = 0.0
    failure_cost: float = 0.1
    health_failures: Timeline = field(default=())  # the health endpoint's failure share

    @property
    def throughput(self) -> float:
        """Requests per second it serves at full capacity."""
        return self.workers / self.service_time


class Job:
    __slots__ = ("abandoned", "answer")

    def __init__(self, answer: Callable[[int], None]) -> None:
        self.answer = answer
        self.abandoned = False  # the client stopped waiting (it is still served)


class Server:
    """One host, live."""

    def __init__(self, model: ServerModel, loop: Loop, rng: random.Random) -> None:
        self.model = model
        self.loop = loop
        self.rng = rng
        self.busy = 0
        self.queue: deque[Job] = deque()
        self.served = 0  # attempts that reached the server
        self.wasted = 0  # answers served after their client had given up

    def submit(self, answer: Callable[[int], None]) -> Job:
        job = Job(answer)
        self.served += 1
        limit = self.model.max_queue
        if self.busy < self.model.workers:
            self._start(job)
        elif limit is not None and len(self.queue) >= limit:
            self.loop.after(0.0, job.answer, 503)
        else:
            self.queue.append(job)
        return job

    def healthy_probe(self) -> bool:
        """Whether a health probe sent now passes (the health endpoint's own failures)."""
        share = at_time(self.model.health_failures, self.loop.now, 0.0)
        return not (share > 0 and self.rng.random() < share)

    def _start(self, job: Job) -> None:
        model, now = self.model, self.loop.now
        self.busy += 1
        speed = at_time(model.capacity, now, 1.0)
        duration = self._service_time() / max(speed, 1e-9)
        failing = at_time(model.error_rate, now, model.base_error_rate)
        status = 503 if failing > 0 and self.rng.random() < failing else 200
        if status == 503:
            duration *= model.failure_cost
        self.loop.after(duration, self._finish, job, status)

    def _finish(self, job: Job, status: int) -> None:
        self.busy -= 1
        if job.abandoned:
            self.wasted += 1
        else:
            job.answer(status)
        while self.queue and self.busy < self.model.workers:
            self._start(self.queue.popleft())

    def _service_time(self) -> float:
        model = self.model
        if model.distribution == "constant":
            return model.service_time
        if model.distribution == "lognormal":
            mu = math.log(model.service_time) - model.sigma**2 / 2  # mean = service_time
            return self.rng.lognormvariate(mu, model.sigma)
        return self.rng.expovariate(1.0 / model.service_time)
