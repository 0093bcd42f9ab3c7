"""A scenario: hosts, the offered load, a trigger, and the policy variants to compare."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..policies.breaker import CircuitBreaker
from .driver import Client, Outcome, Recorder, make_policy
from .engine import Loop
from .report import Summary, summarize
from .server import Server, ServerModel


@dataclass(frozen=True)
class Variant:
    """One policy to try: the keyword arguments of `seawall.Policy` (retry, breaker,
    bulkhead, timeouts), used by each of `clients` processes (each with its own state)."""

    label: str
    parts: dict[str, Any]
    clients: int = 1
    #: (loop, clients, hosts) -> None, to add what the policy alone does not do (probes)
    extra: Callable[[Loop, list[Client], dict[str, Server], random.Random], None] | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    hosts: dict[str, ServerModel]
    rate: float  # logical requests per second, all clients together (Poisson arrivals)
    duration: float  # arrivals stop then; requests still running are let finish
    variants: tuple[Variant, ...]
    trigger: tuple[float, float] | None = None  # when the fault that is simulated starts, ends
    fan_out: bool = False  # a logical request calls every host at once, and needs them all
    #: which host a (non fan-out) request goes to; default: one at random
    pick: Callable[[random.Random, list[str]], str] | None = None
    #: what to sample every second of a variant's run, for the plots: name -> reader
    samples: dict[str, Callable[[list[Client]], float]] = field(default_factory=dict)
    drain: float = 60.0


@dataclass
class Run:
    """A variant's figures, and the series the plots draw (per second)."""

    summary: Summary
    attempts: list[int]
    successes: list[int]
    samples: dict[str, list[float]]


def run_variant(scenario: Scenario, variant: Variant, seed: int = 0) -> Run:
    rng = random.Random(seed)
    loop = Loop()
    recorder = Recorder()
    hosts = {
        name: Server(model, loop, random.Random(rng.random()))
        for name, model in scenario.hosts.items()
    }
    names = list(hosts)
    clients = [
        Client(
            i,
            make_policy(
                loop,
                random.Random(rng.random()),
                None if scenario.fan_out else "dependency",
                **_seeded(variant.parts, rng),
            ),
            loop,
            hosts,
            recorder,
        )
        for i in range(variant.clients)
    ]
    if variant.extra is not None:
        variant.extra(loop, clients, hosts, rng)
    pages: list[Outcome] = []
    arrivals = random.Random(rng.random())
    pick = scenario.pick or (lambda r, hs: hs[int(r.random() * len(hs))])

    def arrive(client: Client) -> None:
        if loop.now >= scenario.duration:
            return
        if scenario.fan_out:
            _fan_out(client, names, loop.now, pages)
        else:
            client.request(pick(arrivals, names))
        loop.after(arrivals.expovariate(scenario.rate / len(clients)), arrive, client)

    for client in clients:
        loop.after(arrivals.expovariate(scenario.rate / len(clients)), arrive, client)
    series: dict[str, list[float]] = {name: [] for name in scenario.samples}

    def sample() -> None:
        for name, read in scenario.samples.items():
            series[name].append(read(clients))
        if loop.now + 1 < scenario.duration:
            loop.after(1.0, sample)

    loop.after(0.0, sample)
    loop.run(scenario.duration + scenario.drain)
    recorder.close_books(loop.now)
    outcomes = pages if scenario.fan_out else recorder.outcomes
    summary = summarize(
        variant.label,
        recorder,
        outcomes,
        scenario.duration,
        scenario.trigger,
        len(clients),
        len(recorder.outcomes),
    )
    seconds = int(scenario.duration)
    attempts = [0] * seconds
    for t in recorder.attempt_times:
        if t < seconds:
            attempts[int(t)] += 1
    successes = [0] * seconds
    for o in outcomes:
        if o.result == "success" and o.ended < seconds:
            successes[int(o.ended)] += 1
    return Run(summary, attempts, successes, series)


def _seeded(parts: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The parts with a throttle drawing from the run's seeded generator (one per client)."""
    breaker = parts.get("breaker")
    if not isinstance(breaker, CircuitBreaker) or breaker.throttle is None:
        return parts
    throttle = dataclasses.replace(breaker.throttle, random=random.Random(rng.random()).random)
    return {**parts, "breaker": dataclasses.replace(breaker, throttle=throttle)}


def _fan_out(client: Client, hosts: list[str], started: float, pages: list[Outcome]) -> None:
    """One page: a call to every host at once; it succeeds when they all do."""
    left = [len(hosts)]
    failed = [False]
    attempts = [0]

    def done(outcome: Outcome) -> None:
        left[0] -= 1
        attempts[0] += outcome.attempts
        failed[0] = failed[0] or outcome.result != "success"
        if left[0] == 0:
            rejected = failed[0] and outcome.result == "rejected"
            pages.append(
                Outcome(
                    started,
                    outcome.ended,
                    attempts[0],
                    "rejected" if rejected else "failure" if failed[0] else "success",
                    "page",
                )
            )

    for host in hosts:
        client.request(host, done)


def run_scenario(
    scenario: Scenario, seed: int = 0, variants: tuple[Variant, ...] | None = None
) -> list[Run]:
    return [run_variant(scenario, v, seed) for v in (variants or scenario.variants)]
