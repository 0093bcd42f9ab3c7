"""Export proven end to end: OTLP/HTTP to a local receiver that decodes the protobuf, and the
Prometheus exporter's endpoint scraped over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import seawall
from integrations.upstream import respond
from seawall.httpx import ResilientTransport
from seawall.telemetry.otel import Telemetry

FAST = seawall.Backoff.constant(0.001)


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP receiver on 127.0.0.1 that keeps the raw protobuf bodies by path."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[bytes]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.setdefault(self.path, []).append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def faulty_traffic(upstream, telemetry: Telemetry) -> None:
    """Retries, an exhausted request, a budget refusal, a breaker opening, a bulkhead rejection."""
    upstream.script(
        "/x",
        respond(503),
        respond(200),
        respond(503),
        respond(503),
        respond(503),
        then=respond(200),
    )
    policy = seawall.Policy(
        "payments",
        telemetry=telemetry,
        retry=seawall.Retry(max_attempts=3, backoff=FAST),
        breaker=seawall.CircuitBreaker(consecutive_failures=3, open_for=30),
        bulkhead=seawall.Bulkhead(max_concurrent=1, max_queued=0),
    )
    stingy = seawall.Policy(
        "stingy",
        telemetry=telemetry,
        retry=seawall.Retry(backoff=FAST, budget=seawall.RetryBudget(ratio=0, min_per_second=0)),
    )
    with httpx.Client(transport=ResilientTransport(policy)) as client:
        client.get(upstream.url + "/x")
        client.get(upstream.url + "/x")
        with pytest.raises(seawall.CircuitOpenError):
            client.get(upstream.url + "/x")
    upstream.default = respond(503)
    with httpx.Client(transport=ResilientTransport(stingy)) as client:
        client.get(upstream.url + "/y")
    upstream.default = respond(200, delay=0.2)
    bulky = seawall.Policy(
        "bulky",
        telemetry=telemetry,  # the second request queues, in vain
        bulkhead=seawall.Bulkhead(max_concurrent=1, max_queued=1, queue_timeout=0.02),
    )
    with httpx.Client(transport=ResilientTransport(bulky)) as client:
        worker = threading.Thread(target=client.get, args=(upstream.url + "/z",))
        worker.start()
        for _ in range(200):  # until the first request holds the only slot
            if upstream.in_flight:
                break
            time.sleep(0.005)
        with pytest.raises(seawall.BulkheadFullError):
            client.get(upstream.url + "/z")
        worker.join()


def test_otlp_http_export_carries_every_span_and_metric(upstream, receiver):
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.url + "/v1/traces"))
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=receiver.url + "/v1/metrics"), export_interval_millis=600_000
    )
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    faulty_traffic(upstream, telemetry)
    # the pool gauge reports the pools of clients that are alive when metrics are collected
    with httpx.Client(
        transport=ResilientTransport(seawall.Policy("alive", telemetry=telemetry))
    ) as alive:
        alive.get(upstream.url + "/alive")
        meter_provider.force_flush()
    tracer_provider.shutdown()
    meter_provider.shutdown()

    spans = []
    for body in receiver.bodies["/v1/traces"]:
        request = ExportTraceServiceRequest.FromString(body)
        spans += [
            span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans
        ]
    assert {"seawall payments", "seawall stingy", "seawall bulky", "GET"} <= {s.name for s in spans}
    attempt_ids = {s.span_id for s in spans if s.name == "GET"}

    metrics, exemplars = {}, []
    for body in receiver.bodies["/v1/metrics"]:  # the flush, then the export at shutdown
        request = ExportMetricsServiceRequest.FromString(body)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    metrics[metric.name] = metric
                    if metric.name == "http.client.request.duration":
                        # exemplars are reset after each collection: gather them all
                        exemplars += [e for p in metric.histogram.data_points for e in p.exemplars]
    assert set(metrics) >= {
        "http.client.request.duration",
        "seawall.request.duration",
        "seawall.retry.attempts",
        "seawall.retry.exhausted",
        "seawall.retry.budget.rejected",
        "seawall.circuit_breaker.state",
        "seawall.circuit_breaker.transitions",
        "seawall.circuit_breaker.calls",
        "seawall.bulkhead.active",
        "seawall.bulkhead.queued",
        "seawall.bulkhead.limit",
        "seawall.bulkhead.rejections",
        "seawall.bulkhead.queue.duration",
        "seawall.pool.connections",
    }
    assert metrics["http.client.request.duration"].unit == "s"
    # exemplars tie the attempt histogram to the attempt spans
    assert exemplars and {e.span_id for e in exemplars} <= attempt_ids


def test_prometheus_exporter_shows_the_translated_names(upstream):
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    reader = PrometheusMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    server, thread = start_http_server(0, addr="127.0.0.1")
    telemetry = Telemetry(meter_provider=meter_provider)
    try:
        faulty_traffic(upstream, telemetry)
        # the pool gauge reports the pools of clients that are alive at scrape time
        with httpx.Client(
            transport=ResilientTransport(seawall.Policy("alive", telemetry=telemetry))
        ) as alive:
            alive.get(upstream.url + "/alive")
            text = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics").text
    finally:
        server.shutdown()
        thread.join(5)
        meter_provider.shutdown()
    for name in (
        "seawall_retry_attempts_total",
        "http_client_request_duration_seconds_bucket",
        "seawall_request_duration_seconds_bucket",
        "seawall_retry_exhausted_total",
        "seawall_retry_budget_rejected_total",
        "seawall_circuit_breaker_state",
        "seawall_circuit_breaker_transitions_total",
        "seawall_circuit_breaker_calls_total",
        "seawall_bulkhead_active",
        "seawall_bulkhead_queued",
        "seawall_bulkhead_limit",
        "seawall_bulkhead_rejections_total",
        "seawall_bulkhead_queue_duration_seconds_bucket",
        "seawall_pool_connections",
    ):
        assert f"\n{name}{{" in text, name
    assert 'seawall_dependency="payments"' in text
    assert (
        'seawall_circuit_breaker_state{seawall_breaker_state="open",seawall_dependency="payments"'
        in text
        or 'seawall_breaker_state="open"' in text
    )
    assert "_ratio" not in text  # no gauge with unit 1
