"""`python -m benchmarks.cardinality`: how many label sets seawall's metrics hold after traffic to
many distinct hosts, ports and methods (real sockets, the real SDK's in-memory reader).

Hosts are 127.0.0.x/127.0.x.y loopback aliases and ports are closed ones on 127.0.0.2: nothing
listens there, so each attempt is one refused connection (a real one, recorded like any other
failed attempt). Methods are extension tokens sent to a local upstream, which answers them all.
"""

from __future__ import annotations

import argparse
import socket
from collections import Counter
from typing import Any

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import seawall
from integrations.upstream import Upstream
from seawall.httpx import ResilientTransport
from seawall.telemetry.otel import Telemetry


def _alias(number: int) -> str:
    """The number-th loopback alias after 127.0.0.1 (127.0.0.2, ..., 127.0.0.254, 127.0.1.1, ...)."""
    third, fourth = divmod(number, 253)
    return f"127.0.{third}.{fourth + 2}"


def _closed_ports(count: int) -> list[int]:
    """Ports nothing listens on at 127.0.0.2 (only wildcard listeners could answer there)."""
    ports: list[int] = []
    for port in range(20000, 65000):
        if len(ports) == count:
            return ports
        with socket.socket() as probe:
            probe.settimeout(0.05)
            if probe.connect_ex(("127.0.0.2", port)) != 0:
                ports.append(port)
    raise RuntimeError(f"found only {len(ports)} closed ports")


def label_sets(reader: InMemoryMetricReader) -> Counter[str]:
    """Label sets per metric name."""
    counts: Counter[str] = Counter()
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                counts[metric.name] += len(metric.data.data_points)
    return counts


def drive(
    hosts: int, ports: int, methods: int, **telemetry: Any
) -> tuple[InMemoryMetricReader, Telemetry]:
    """Requests to `hosts` distinct hosts (one named dependency), `ports` distinct ports (an
    unnamed policy: each origin its own dependency, up to the caps) and `methods` extension
    methods; the reader and telemetry that recorded them."""
    reader = InMemoryMetricReader()
    watcher = Telemetry(meter_provider=MeterProvider(metric_readers=[reader]), **telemetry)
    plain: dict[str, Any] = {
        "retry": None,
        "breaker": None,
        "bulkhead": None,
        "telemetry": watcher,
        "timeouts": seawall.Timeouts(attempt=1, total=2),
    }
    spread = ResilientTransport(seawall.Policy("spread", **plain))
    with httpx.Client(transport=spread) as client:
        for number in range(hosts):
            try:
                client.get(f"http://{_alias(number)}:9/")  # the discard port: closed here
            except httpx.ConnectError:
                pass
    with httpx.Client(transport=ResilientTransport(seawall.Policy(**plain))) as client:
        for port in _closed_ports(ports):
            try:
                client.get(f"http://127.0.0.2:{port}/")
            except httpx.ConnectError:
                pass
    if methods:
        with (
            Upstream() as upstream,
            httpx.Client(
                transport=ResilientTransport(seawall.Policy("methods", **plain))
            ) as client,
        ):
            for number in range(methods):
                client.request(f"X-METHOD-{number}", upstream.url + "/m")  # aiohttp says 400
    return reader, watcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--methods", type=int, default=1000)
    args = parser.parse_args()
    reader, _ = drive(args.hosts, args.ports, args.methods)
    print(f"{args.hosts} hosts, {args.ports} ports, {args.methods} methods: label sets per metric")
    for name, count in sorted(label_sets(reader).items()):
        print(f"  {name:40} {count:6}")


if __name__ == "__main__":
    main()
