"""The demo: a fault-injecting upstream and a workload going through seawall with all three
clients at once (httpx, aiohttp and requests, sharing one policy).

Five phases (healthy, flaky, outage, recovery, burst) show retries absorbing errors, the circuit
breaker opening and recovering, and the bulkhead turning a burst away, with a live summary
built only from the events seawall emits. An order POSTed during the outage is kept as a dead
letter (an SQLite file in a temporary directory) and replayed, with its Idempotency-Key, once
the upstream has recovered. Run it with `make demo` (about 15 seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import requests

import seawall
import seawall.aiohttp
import seawall.requests
from integrations.upstream import Upstream, respond
from seawall import events as ev
from seawall.deadletters import DeadLetters
from seawall.httpx import AsyncResilientTransport


@dataclass
class Tally:
    """What seawall did in one phase, counted from its events."""

    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    attempts: int = 0
    retries: int = 0
    rejections: collections.Counter[str] = field(default_factory=collections.Counter)
    transitions: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    clients: collections.Counter[str] = field(default_factory=collections.Counter)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RequestFinished):
            self.outcomes[event.outcome] += 1
            self.clients[type(event.exchange).__module__.rsplit(".", 1)[-1]] += 1
            self.latencies.append(event.duration)
            if event.outcome == "rejected" and event.error is not None:
                self.rejections[type(event.error).__name__] += 1
        elif isinstance(event, ev.AttemptStarted):
            self.attempts += 1
        elif isinstance(event, ev.RetryScheduled):
            self.retries += 1
        elif isinstance(event, ev.CircuitTransition):
            self.transitions.append(f"{event.from_state.value}->{event.to_state.value}")

    def line(self, breaker: str) -> str:
        done = sum(self.outcomes.values())
        ordered = sorted(self.latencies)
        p95 = ordered[int(len(ordered) * 0.95)] * 1000 if ordered else 0.0
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(self.rejections.items())) or "none"
        return (
            f"requests {done:4d} | ok {self.outcomes['success']:4d} "
            f"failed {self.outcomes['failure']:3d} rejected {self.outcomes['rejected']:4d} | "
            f"attempts {self.attempts:4d} retries {self.retries:3d} | p95 {p95:6.1f} ms | "
            f"breaker {breaker:9s} | rejections: {rejected}"
        )


@dataclass
class Phase:
    title: str
    explain: str
    setup: Callable[[Upstream], None]
    seconds: float
    concurrency: int
    path: str = "/work"


PHASES = [
    Phase(
        "healthy",
        "no faults: every request passes straight through",
        lambda up: setattr(up, "default", respond(200, body=b"ok", delay=0.005)),
        2.0,
        6,
    ),
    Phase(
        "flaky",
        "30% of responses are 503: retries absorb them",
        lambda up: None,
        3.0,
        6,
        path="/chaos?fail=0.3&delay=0.005",
    ),
    Phase(
        "outage",
        "every response is 500: the breaker opens and callers fail fast",
        lambda up: setattr(up, "default", respond(500, delay=0.005)),
        3.0,
        6,
    ),
    Phase(
        "recovery",
        "the upstream heals: after open_for a probe passes and the breaker closes",
        lambda up: setattr(up, "default", respond(200, delay=0.005)),
        3.0,
        6,
    ),
    Phase(
        "burst",
        "60 callers at once, upstream slow: the bulkhead caps concurrency at 10",
        lambda up: setattr(up, "default", respond(200, delay=0.2)),
        2.0,
        60,
    ),
]


def build_policy() -> seawall.Policy:
    return seawall.Policy(
        "demo-upstream",
        retry=seawall.Retry(
            max_attempts=3, backoff=seawall.Backoff.exponential(base=0.02, cap=0.2)
        ),
        breaker=seawall.CircuitBreaker(failure_rate=0.5, window=2.0, min_calls=20, open_for=1.0),
        bulkhead=seawall.Bulkhead(max_concurrent=10, max_queued=10, queue_timeout=0.1),
        timeouts=seawall.Timeouts(attempt=1.0, total=3.0),
    )


def build_orders(letters: DeadLetters) -> seawall.Policy:
    """The orders service: a POST that fails for good is kept to be replayed."""
    return seawall.Policy(
        "demo-orders",
        retry=None,
        breaker=None,
        timeouts=seawall.Timeouts(attempt=1.0, total=3.0),
        dead_letters=letters,
    )


async def order_during_outage(orders: httpx.AsyncClient, letters: DeadLetters, url: str) -> None:
    answer = await orders.post(url + "/orders", content=b'{"sku": 42, "quantity": 1}')
    await asyncio.to_thread(letters.flush)  # (the writer thread stores it a moment later)
    [kept] = letters.list()
    print(
        f"  dead letter kept: {kept.method} /orders answered {answer.status_code} after "
        f"{kept.attempts} attempt (a POST is not retried); {kept.state}, "
        f"Idempotency-Key {kept.idempotency_key}"
    )


async def replay_after_recovery(letters: DeadLetters, up: Upstream) -> None:
    done = await asyncio.to_thread(letters.replay_many, dependency="demo-orders")
    [replayed] = letters.list()
    sent = [r for r in up.requests if r.path == "/orders"]
    same_key = bool(sent) and sent[-1].headers.get("idempotency-key") == replayed.idempotency_key
    print(
        f"  dead letters replayed: {done.resolved} of {done.matched} now {replayed.state}; the "
        f"upstream got the order again {'with the same' if same_key else 'WITHOUT its'} "
        f"Idempotency-Key"
    )


@dataclass
class Clients:
    """One client of each kind, all on the same policy (so one bulkhead, one breaker)."""

    httpx: httpx.AsyncClient
    aiohttp: aiohttp.ClientSession
    requests: requests.Session
    threads: ThreadPoolExecutor

    async def get(self, kind: int, url: str) -> None:
        """One request with client number `kind % 3`; errors are the tally's business."""
        try:
            if kind % 3 == 0:
                await (await self.httpx.get(url)).aread()
            elif kind % 3 == 1:
                async with self.aiohttp.get(url) as response:
                    await response.read()
            else:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self.threads, lambda: self.requests.get(url).content)
        except (httpx.HTTPError, aiohttp.ClientError, requests.RequestException):
            await asyncio.sleep(0.01)  # rejected fast: do not spin


async def run_phase(
    clients: Clients, url: str, phase: Phase, tally: Tally, policy: seawall.Policy, live: bool
) -> None:
    stop_at = time.monotonic() + phase.seconds

    async def caller(kind: int) -> None:
        while time.monotonic() < stop_at:
            await clients.get(kind, url)

    async def report() -> None:
        while time.monotonic() < stop_at:
            await asyncio.sleep(0.5)
            if live:
                print("\r  " + tally.line(breaker_state(policy)), end="", flush=True)

    await asyncio.gather(report(), *(caller(i) for i in range(phase.concurrency)))
    print(("\r  " if live else "  ") + tally.line(breaker_state(policy)))
    print("  by client: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.clients.items())))
    if tally.transitions:
        print(f"  breaker transitions: {' '.join(tally.transitions)}")


def breaker_state(policy: seawall.Policy) -> str:
    breaker = policy.dependency("demo-upstream").breaker()
    return breaker.state(time.monotonic()).value if breaker else "-"


async def main(speed: float) -> None:
    policy = build_policy()
    live = sys.stdout.isatty()
    kept = tempfile.TemporaryDirectory(prefix="seawall-demo-")
    letters = DeadLetters(Path(kept.name) / "dead-letters.db", telemetry=False)
    with (
        kept,
        Upstream() as up,
        seawall.requests.session(policy) as rq,
        ThreadPoolExecutor(max_workers=30) as threads,
    ):
        print(
            f"seawall demo: upstream on {up.url}; policy {policy.name!r}: 3 attempts with "
            f"backoff, breaker at 50% failures over 2 s, bulkhead of 10 (+10 queued); "
            f"callers take turns with httpx, aiohttp and requests\n"
        )
        async with (
            httpx.AsyncClient(transport=AsyncResilientTransport(policy)) as hx,
            seawall.aiohttp.session(policy) as aio,
            httpx.AsyncClient(transport=AsyncResilientTransport(build_orders(letters))) as orders,
        ):
            clients = Clients(hx, aio, rq, threads)
            for phase in PHASES:
                up.clear()
                phase.setup(up)
                tally = Tally()
                policy.subscribe(tally)
                print(f"[{phase.title}] {phase.explain}")
                await run_phase(
                    clients,
                    up.url + phase.path,
                    dataclasses.replace(phase, seconds=phase.seconds * speed),
                    tally,
                    policy,
                    live,
                )
                policy.unsubscribe(tally)
                if phase.title == "outage":
                    await order_during_outage(orders, letters, up.url)
                elif phase.title == "recovery":
                    await replay_after_recovery(letters, up)
                print(
                    f"  upstream saw {up.hits(phase.path.split('?')[0])} requests, at most "
                    f"{up.max_in_flight} at once\n"
                )
        letters.close()
    print(
        "done: retries hid the flaky 503s, the breaker shed load during the outage and "
        "closed again, the order lost in the outage was kept and replayed, the bulkhead kept "
        "the burst to 10 in flight."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="multiply every phase's length (e.g. 0.3 for a quick look)",
    )
    asyncio.run(main(parser.parse_args().speed))
