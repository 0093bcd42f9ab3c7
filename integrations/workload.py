"""A steady workload for dashboards and alerts: the fault-injecting upstream and all three
clients, shaped so that every panel has something to show at every moment.

    python -m integrations.workload --prometheus-port 9464 --seconds 30   # for a Prometheus scrape
    python -m integrations.workload                                       # OTLP, per OTEL_* env

Dependencies (one seawall policy each):
- payments: 30% of responses are 503 -> retries, a few exhausted;
- search: a bulkhead of 2 in front of a slow upstream, 8 callers -> queue waits, rejections;
- flaky: always 500, a breaker that opens after 3 failures for 0.5 s -> transitions, rejections;
  a stingy retry budget -> budget refusals; an operator resets its breaker by hand every
  second (seawall.admin) -> manual changes; its failed requests are kept as dead letters (an
  SQLite store in a temporary directory) and an operator replays two a second, which fail again
  -> dead letters pending and failed, recorded and replayed (and dropped, at 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import requests

import seawall
import seawall.aiohttp
import seawall.requests
from integrations.upstream import Upstream, respond
from seawall.deadletters import DeadLetters
from seawall.httpx import AsyncResilientTransport
from seawall.telemetry.otel import Telemetry


def telemetry(prometheus_port: int | None) -> tuple[Telemetry, Any]:
    """Providers for the workload, a Prometheus endpoint or OTLP/HTTP as OTEL_* says: the
    policies' Telemetry and the meter provider (for the dead letters)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "seawall-workload")}
    )
    if prometheus_port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        start_http_server(prometheus_port, addr="127.0.0.1")
        meters = MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
        return Telemetry(
            tracer_provider=TracerProvider(resource=resource), meter_provider=meters
        ), meters
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=5000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meters), meters


def policies(tel: Telemetry, letters: DeadLetters) -> dict[str, seawall.Policy]:
    fast = seawall.Backoff.exponential(base=0.01, cap=0.05)
    return {
        "payments": seawall.Policy(
            "payments", telemetry=tel, retry=seawall.Retry(max_attempts=3, backoff=fast)
        ),
        "search": seawall.Policy(
            "search",
            telemetry=tel,
            retry=None,
            bulkhead=seawall.Bulkhead(max_concurrent=2, max_queued=3, queue_timeout=0.05),
        ),
        "flaky": seawall.Policy(
            "flaky",
            telemetry=tel,
            retry=seawall.Retry(
                max_attempts=2,
                backoff=fast,
                budget=seawall.RetryBudget(ratio=0.0, min_per_second=0.2, ttl=5),
            ),
            breaker=seawall.CircuitBreaker(consecutive_failures=3, open_for=0.5),
            dead_letters=letters,
        ),
    }


async def run(seconds: float, prometheus_port: int | None) -> None:
    tel, meters = telemetry(prometheus_port)
    kept = tempfile.TemporaryDirectory(prefix="seawall-workload-")
    letters = DeadLetters(
        Path(kept.name) / "dead-letters.db", replay_rate=10.0, replay_max_wait=0.2, telemetry=meters
    )
    chosen = policies(tel, letters)
    with kept, Upstream() as up, ThreadPoolExecutor(max_workers=8) as threads:
        up.script("/search", then=respond(200, delay=0.05))
        up.script("/flaky", then=respond(500))
        urls = {
            "payments": up.url + "/chaos?fail=0.3&delay=0.005",
            "search": up.url + "/search",
            "flaky": up.url + "/flaky",
        }
        sessions = {name: seawall.requests.session(p) for name, p in chosen.items()}
        async with seawall.aiohttp.session(chosen["payments"]) as aio:
            clients = {
                name: httpx.AsyncClient(transport=AsyncResilientTransport(p))
                for name, p in chosen.items()
            }
            stop_at = time.monotonic() + seconds

            async def caller(name: str, kind: int) -> None:
                loop = asyncio.get_running_loop()
                while time.monotonic() < stop_at:
                    try:
                        if kind == 0:
                            await (await clients[name].get(urls[name])).aread()
                        elif kind == 1 and name == "payments":
                            async with aio.get(urls[name]) as response:
                                await response.read()
                        else:
                            await loop.run_in_executor(
                                threads, lambda: sessions[name].get(urls[name], timeout=5).content
                            )
                    except (httpx.HTTPError, aiohttp.ClientError, requests.RequestException):
                        await asyncio.sleep(0.02)
                    await asyncio.sleep(0.01)

            callers = [caller("payments", k % 3) for k in range(3)]
            callers += [caller("search", 0) for _ in range(6)] + [
                caller("search", 2) for _ in range(2)
            ]
            callers += [caller("flaky", k % 3) for k in range(2)]

            async def operator() -> None:
                while time.monotonic() < stop_at:
                    await asyncio.sleep(1)
                    seawall.admin.reset(
                        "flaky",
                        reason="workload: a manual change to show",
                        by="workload",
                        policies=[chosen["flaky"]],
                    )

            async def replayer() -> None:  # replays the oldest two, which fail again
                loop = asyncio.get_running_loop()
                while time.monotonic() < stop_at:
                    await asyncio.sleep(1)
                    await loop.run_in_executor(
                        threads, lambda: letters.replay_many(dependency="flaky", limit=2)
                    )

            await asyncio.gather(*callers, operator(), replayer())
            for client in clients.values():
                await client.aclose()
        for session in sessions.values():
            session.close()
        letters.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=float("inf"))
    parser.add_argument("--prometheus-port", type=int)
    args = parser.parse_args()
    print(f"workload running for {args.seconds} s", flush=True)
    asyncio.run(run(args.seconds, args.prometheus_port))


if __name__ == "__main__":
    main()
