"""One process of a fleet (run by tests/test_fleet.py): calls the upstream's /dep about every
`pace` seconds through a Policy whose store is a `seawall.Fleet`, and prints one JSON line per
call: when, the breaker state before it, the outcome, and whether the fleet is degraded.
Stops when stdin closes. Usage: python -m tests.fleet_worker sync|async UPSTREAM REDIS NS
[INTERVAL] (the flush interval, 0.2 s by default: tests stay short)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import seawall
from seawall.httpx import AsyncResilientTransport, ResilientTransport
from seawall.telemetry.otel import Telemetry

PACE = 0.05


def degraded_gauge(reader: InMemoryMetricReader) -> int | None:
    """What the `seawall.fleet.degraded` gauge reads now (None: not reported)."""
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "seawall.fleet.degraded":
                    return int(metric.data.data_points[0].value)
    return None


def main() -> None:
    logging.getLogger("seawall").setLevel(logging.ERROR)  # its lines are not the report
    mode, upstream, redis, namespace = sys.argv[1:5]
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.2
    fleet = seawall.Fleet(
        redis, namespace=namespace, interval=interval, window=10, redis_open_for=5 * interval
    )
    reader = InMemoryMetricReader()
    policy = seawall.Policy(
        "dep",
        retry=None,
        telemetry=Telemetry(meter_provider=MeterProvider(metric_readers=[reader])),
        store=fleet,
        timeouts=seawall.Timeouts(attempt=2, total=3),
        breaker=seawall.CircuitBreaker(min_calls=20, failure_rate=0.5, window=10, open_for=1.0),
    )
    breaker = policy.dependency("dep").shared_breaker
    assert breaker is not None
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()

    def report(before: str, outcome: str) -> None:
        print(
            json.dumps(
                {
                    "t": time.monotonic(),
                    "before": before,
                    "outcome": outcome,
                    "degraded": fleet.degraded,
                    "gauge": degraded_gauge(reader),
                }
            ),
            flush=True,
        )

    def outcome(call: object) -> str:
        return (
            "rejected"
            if isinstance(call, seawall.CircuitOpenError)
            else (
                "fail"
                if isinstance(call, Exception) or getattr(call, "status_code", 0) >= 500
                else "ok"
            )
        )

    if mode == "sync":
        with httpx.Client(transport=ResilientTransport(policy), base_url=upstream) as client:
            while not done.is_set():
                before = breaker.state(time.monotonic()).value
                try:
                    result: object = client.get("/dep")
                except Exception as error:  # noqa: BLE001 - reported as the outcome
                    result = error
                report(before, outcome(result))
                time.sleep(PACE)
    else:

        async def run() -> None:
            transport = AsyncResilientTransport(policy)
            async with httpx.AsyncClient(transport=transport, base_url=upstream) as client:
                while not done.is_set():
                    before = breaker.state(time.monotonic()).value
                    try:
                        result: object = await client.get("/dep")
                    except Exception as error:  # noqa: BLE001 - reported as the outcome
                        result = error
                    report(before, outcome(result))
                    await asyncio.sleep(PACE)

        asyncio.run(run())
    fleet.close()


if __name__ == "__main__":
    main()
