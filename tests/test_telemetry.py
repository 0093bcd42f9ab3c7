"""Spans, metrics and logs tell the truth: a real OpenTelemetry SDK (in-memory exporters) over
real sockets, for every client flavour."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import seawall
from integrations.upstream import reset, respond, retry_after
from seawall.telemetry.otel import DURATION_BUCKETS, Telemetry

FAST = seawall.Backoff.constant(0.001)


@dataclass
class Otel:
    tracer_provider: TracerProvider
    spans: InMemorySpanExporter
    meter_provider: MeterProvider
    reader: InMemoryMetricReader
    telemetry: Telemetry

    def policy(self, **overrides: Any) -> seawall.Policy:
        options: dict[str, Any] = dict(
            retry=seawall.Retry(max_attempts=3, backoff=FAST),
            breaker=None,
            bulkhead=seawall.Bulkhead(max_concurrent=10, max_queued=100, queue_timeout=5),
            timeouts=seawall.Timeouts(attempt=5, total=10),
        )
        options.update(overrides)
        return seawall.Policy("upstream", telemetry=self.telemetry, **options)

    def finished(self, kind: SpanKind) -> list[Any]:
        return [s for s in self.spans.get_finished_spans() if s.kind == kind]

    def metric(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, point) of every data point of the named metric."""
        found = []
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes), p) for p in metric.data.data_points]
        return found

    def total(self, name: str, **match: Any) -> float:
        """Sum of a counter's values (or a histogram's counts) over the matching points."""
        total = 0.0
        for attributes, point in self.metric(name):
            if all(attributes.get(k.replace("_", ".")) == v for k, v in match.items()):
                total += point.count if hasattr(point, "count") else point.value
        return total


def in_memory_otel(**telemetry_options: Any) -> Iterator[Otel]:
    """A real SDK with in-memory exporters, and a `Telemetry` on it (the fixtures' body)."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Otel(
        tracer_provider,
        spans,
        meter_provider,
        reader,
        Telemetry(
            tracer_provider=tracer_provider, meter_provider=meter_provider, **telemetry_options
        ),
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def otel() -> Iterator[Otel]:
    yield from in_memory_otel(redact_query=["token"])


def test_one_internal_span_and_one_client_span_per_attempt(flavour, upstream, otel):
    upstream.script("/t", respond(503), reset(), respond(200))
    url = upstream.url.replace("http://", "http://user:secret@") + "/t?sig=abc&token=xyz&q=1"
    with flavour.client(otel.policy()) as client:
        assert client.request("GET", url).status == 200
    (logical,) = otel.finished(SpanKind.INTERNAL)
    attempts = sorted(otel.finished(SpanKind.CLIENT), key=lambda s: s.start_time)
    assert len(attempts) == 3 == upstream.hits("/t")
    assert logical.name == "seawall upstream"
    assert logical.attributes["seawall.outcome"] == "success"
    assert logical.attributes["seawall.attempts"] == 3
    for number, span in enumerate(attempts):
        assert span.parent.span_id == logical.context.span_id
        assert span.name == "GET"
        assert span.attributes["http.request.method"] == "GET"
        assert span.attributes["server.address"] == "127.0.0.1"
        assert span.attributes["server.port"] == upstream.port
        assert span.attributes["seawall.dependency"] == "upstream"
        assert span.attributes.get("http.request.resend_count") == (number or None)
        full = span.attributes["url.full"]
        assert "secret" not in full and "abc" not in full and "xyz" not in full
        # aiohttp moves user-info into basic auth itself, so there may be none left to redact
        assert full.startswith(("http://REDACTED:REDACTED@127.0.0.1", "http://127.0.0.1"))
        assert "sig=REDACTED&token=REDACTED&q=1" in full
    assert attempts[0].attributes["http.response.status_code"] == 503
    assert attempts[0].attributes["error.type"] == "503"
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert attempts[1].attributes["error.type"].endswith(("Error", "Disconnected"))
    assert attempts[2].attributes["http.response.status_code"] == 200
    assert attempts[2].attributes["network.protocol.version"] == "1.1"
    assert "error.type" not in attempts[2].attributes
    # each attempt carried its own span's traceparent to the upstream
    sent = [r.headers.get("traceparent", "")[:-3] for r in upstream.requests]  # minus the flags
    expected = [f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}" for s in attempts]
    assert sent == expected


def test_logical_span_records_what_happened_between_attempts(flavour, upstream, otel):
    upstream.script("/e", retry_after(503, "0"), respond(500), then=respond(500))
    policy = otel.policy(breaker=seawall.CircuitBreaker(consecutive_failures=3, open_for=30))
    with flavour.client(policy) as client:
        assert client.request("GET", upstream.url + "/e").status == 500
        with pytest.raises(seawall.CircuitOpenError):
            client.request("GET", upstream.url + "/e")
    first, second = sorted(otel.finished(SpanKind.INTERNAL), key=lambda s: s.start_time)
    names = [e.name for e in first.events]
    assert names.count("seawall.retry") == 2
    retry = next(e for e in first.events if e.name == "seawall.retry")
    assert retry.attributes["seawall.retry.reason"] == "503"
    assert retry.attributes["seawall.retry.retry_after"] == 0.0
    assert "seawall.retry.stopped" in names
    assert first.status.status_code is StatusCode.ERROR
    transitions = [
        e
        for s in otel.spans.get_finished_spans()
        for e in s.events
        if e.name == "seawall.circuit_breaker.transition"
    ]
    assert [
        (e.attributes["seawall.breaker.from"], e.attributes["seawall.breaker.to"])
        for e in transitions
    ] == [("closed", "open")]
    assert [e.name for e in second.events] == ["seawall.circuit_breaker.rejected"]
    assert second.attributes["seawall.outcome"] == "rejected"
    assert second.attributes["error.type"].endswith("CircuitOpenError")


def test_metric_totals_equal_what_the_upstream_saw(flavour, upstream, otel):
    upstream.script(
        "/m",
        respond(503),
        respond(503),
        respond(503),  # 1: exhausted (2 retries)
        reset(),
        respond(200),  # 2: one retry
        respond(404),  # 3: not retried
        respond(500),
        respond(200),
    )  # 4: one retry
    policy = otel.policy(breaker=seawall.CircuitBreaker(consecutive_failures=5, open_for=30))
    with flavour.client(policy) as client:
        results = [client.request("GET", upstream.url + "/m").status for _ in range(4)]
        policy.dependency("upstream").breaker().force_open(policy.now())
        with pytest.raises(seawall.CircuitOpenError):
            client.request("GET", upstream.url + "/m")
    assert results == [503, 200, 404, 200]
    hits = upstream.hits("/m")
    assert otel.total("http.client.request.duration") == hits == 8
    assert otel.total("seawall.retry.attempts") == hits - 4 == 4
    assert otel.total("seawall.retry.attempts", error_type="503") == 2
    assert otel.total("seawall.retry.exhausted") == 1
    assert otel.total("seawall.request.duration") == 5
    assert otel.total("seawall.request.duration", seawall_outcome="rejected") == 1
    assert otel.total("seawall.request.duration", seawall_outcome="failure") == 1
    assert otel.total("seawall.circuit_breaker.calls", seawall_breaker_result="failure") == 5
    assert otel.total("seawall.circuit_breaker.calls", seawall_breaker_result="success") == 3
    assert otel.total("seawall.circuit_breaker.calls", seawall_breaker_result="rejected") == 1
    assert otel.total("seawall.circuit_breaker.transitions") == 1
    state = {
        a["seawall.breaker.state"]: p.value for a, p in otel.metric("seawall.circuit_breaker.state")
    }
    assert state == {"closed": 0, "open": 0, "half_open": 0, "isolated": 1, "disabled": 0}
    statuses = {
        a.get("http.response.status_code") for a, _ in otel.metric("http.client.request.duration")
    }
    assert statuses == {503, 200, 404, 500, None}


def test_bulkhead_metrics(flavour, upstream, otel):
    upstream.default = respond(200, delay=0.6)  # every caller arrives while both slots are held
    policy = otel.policy(retry=None, bulkhead=seawall.Bulkhead(max_concurrent=2, max_queued=0))
    with flavour.client(policy) as client:
        results = client.many(5, "GET", upstream.url + "/b")
    rejected = sum(isinstance(r, seawall.BulkheadFullError) for r in results)
    assert rejected == 3 and upstream.hits("/b") == 2
    assert otel.total("seawall.bulkhead.rejections", seawall_bulkhead_reason="queue_full") == 3
    assert otel.metric("seawall.bulkhead.queue.duration") == []  # none queued: no zero waits
    (limit,) = otel.metric("seawall.bulkhead.limit")
    (active,) = otel.metric("seawall.bulkhead.active")
    assert (limit[1].value, active[1].value) == (2, 0)


def test_queue_duration_counts_the_requests_that_queued_only(flavour, upstream, otel):
    upstream.default = respond(200, delay=0.5)  # the one slot stays held while the others wait
    policy = otel.policy(
        retry=None, bulkhead=seawall.Bulkhead(max_concurrent=1, max_queued=1, queue_timeout=0.05)
    )
    with flavour.client(policy) as client:
        results = client.many(3, "GET", upstream.url + "/q")
    reasons = sorted(getattr(r, "reason", "ok") for r in results)
    assert reasons == ["ok", "queue_full", "queue_timeout"]
    ((_, waited),) = otel.metric("seawall.bulkhead.queue.duration")
    assert waited.count == 1 and waited.sum >= 0.05  # the one that queued, for its timeout


def test_duration_histogram_uses_the_semconv_buckets(upstream, otel):
    import httpx

    from seawall.httpx import ResilientTransport

    with httpx.Client(transport=ResilientTransport(otel.policy())) as client:
        client.get(upstream.url + "/h")
    ((_, point),) = otel.metric("http.client.request.duration")
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS


def test_pool_connections_gauge(upstream, otel):
    import httpx

    from seawall.httpx import ResilientTransport

    transport = ResilientTransport(otel.policy())
    with httpx.Client(transport=transport) as client:
        client.get(upstream.url + "/p")
        points = {a["state"]: p.value for a, p in otel.metric("seawall.pool.connections")}
    assert points == {"active": 0, "idle": 1}


def test_each_pool_connection_is_labelled_with_its_own_dependency(upstream, otel):
    """An unnamed policy (and a Router, which auto-instrumentation uses) holds one pool for many
    dependencies: each connection is reported under the dependency of its origin."""
    import httpx

    from integrations.upstream import Upstream
    from seawall.config import Router, load
    from seawall.httpx import ResilientTransport

    with Upstream() as other:
        router = Router(
            load({"dependencies": {"payments": {"match": {"host": f"127.0.0.1:{other.port}"}}}}),
            telemetry=otel.telemetry,
        )
        unnamed = seawall.Policy(telemetry=otel.telemetry)
        for chosen in (unnamed, router):
            with httpx.Client(transport=ResilientTransport(chosen)) as client:
                client.get(upstream.url + "/p")
                client.get(other.url + "/p")
                points = {
                    (a["seawall.dependency"], a["state"]): p.value
                    for a, p in otel.metric("seawall.pool.connections")
                }
            mine = "payments" if chosen is router else other.url
            assert points == {
                (upstream.url, "active"): 0,
                (upstream.url, "idle"): 1,
                (mine, "active"): 0,
                (mine, "idle"): 1,
            }, points


def test_async_logical_span_is_a_child_of_the_callers_span(upstream, otel):
    import httpx

    from seawall.httpx import AsyncResilientTransport

    tracer = otel.tracer_provider.get_tracer("test")

    async def main() -> None:
        async with httpx.AsyncClient(transport=AsyncResilientTransport(otel.policy())) as client:
            with tracer.start_as_current_span("caller"):
                await asyncio.gather(
                    client.get(upstream.url + "/a"), client.get(upstream.url + "/b")
                )

    asyncio.run(main())
    caller = next(s for s in otel.spans.get_finished_spans() if s.name == "caller")
    logical = [s for s in otel.finished(SpanKind.INTERNAL) if s.name.startswith("seawall")]
    assert len(logical) == 2 and all(s.parent.span_id == caller.context.span_id for s in logical)


def test_no_duplicate_spans_with_the_official_instrumentations(flavour, upstream, otel):
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    instrumentors = [HTTPXClientInstrumentor(), RequestsInstrumentor(), AioHttpClientInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        upstream.script("/d", respond(503), respond(200))
        with flavour.client(otel.policy()) as client:
            assert client.request("GET", upstream.url + "/d").status == 200
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
    clients = otel.finished(SpanKind.CLIENT)
    assert len(clients) == 2 == upstream.hits("/d"), [
        (s.name, s.instrumentation_scope.name) for s in clients
    ]
    assert {s.instrumentation_scope.name for s in clients} == {"seawall"}


def test_logs_say_what_happened_without_secrets(upstream, caplog, otel):
    import httpx

    from seawall.httpx import ResilientTransport

    upstream.script("/l", respond(503), then=respond(500))
    policy = otel.policy(breaker=seawall.CircuitBreaker(consecutive_failures=3, open_for=30))
    caplog.set_level(logging.DEBUG, logger="seawall")
    with httpx.Client(transport=ResilientTransport(policy)) as client:
        client.get(
            upstream.url.replace("http://", "http://user:hunter2@") + "/l?sig=s3cr3t",
            headers={"Authorization": "Bearer t0ken"},
        )
    records = [r for r in caplog.records if r.name == "seawall"]
    retries = [r for r in records if r.getMessage().startswith("retrying")]
    assert len(retries) == 2 and getattr(retries[0], "seawall.reason") == "503"
    assert getattr(retries[0], "seawall.dependency") == "upstream"
    opened = [r for r in records if r.levelno == logging.WARNING]
    assert len(opened) == 1 and getattr(opened[0], "seawall.breaker.to") == "open"
    text = " ".join(r.getMessage() + str(r.__dict__) for r in records)
    for secret in ("hunter2", "s3cr3t", "t0ken"):
        assert secret not in text


def test_no_sdk_means_no_work():
    telemetry = Telemetry()  # the global providers: the API's no-op proxies in this process
    assert telemetry._is_live() is False
    policy = seawall.Policy("quiet", telemetry=telemetry)
    assert policy.telemetry is telemetry and not hasattr(telemetry, "tracer")


def _telemetry_listeners(policy: seawall.Policy, telemetry: Telemetry) -> set[type]:
    return {
        kind
        for kind, listeners in policy._on.items()
        if any(getattr(x, "__self__", None) is telemetry for x in listeners)
    }


def test_without_an_sdk_nothing_is_listened_to():
    """The API announces a provider being set, so no event is built for telemetry at all."""
    telemetry = Telemetry()  # global providers: no SDK in this process
    policy = seawall.Policy("idle", telemetry=telemetry)
    assert telemetry._told is True
    assert _telemetry_listeners(policy, telemetry) == set()


def test_where_the_api_cannot_announce_providers_request_starts_look_for_an_sdk(monkeypatch):
    from opentelemetry import trace

    from seawall.telemetry import _providers_set

    guard = trace._TRACER_PROVIDER_SET_ONCE
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", None)  # an API that keeps it else
    telemetry = Telemetry()
    policy = seawall.Policy("idle", telemetry=telemetry)
    assert telemetry._told is False
    assert _telemetry_listeners(policy, telemetry) == {seawall.events.RequestStarted}
    # and where it can again (a harness that replaced the guard), the next watch hooks it
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", getattr(guard, "inner", guard))
    seawall.Policy("idle", telemetry=telemetry)
    assert isinstance(trace._TRACER_PROVIDER_SET_ONCE, _providers_set._Announcing)
    assert telemetry._told is True
    assert _telemetry_listeners(policy, telemetry) == set()


def test_dependency_labels_are_capped_across_policies(otel):
    capped = Telemetry(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, max_dependencies=2
    )
    assert [capped.dependency(n) for n in ("a", "b", "c", "a", "d")] == [
        "a",
        "b",
        "_other",
        "a",
        "_other",
    ]


SDK_LATER = """
import sys, httpx, seawall
from seawall.httpx import ResilientTransport
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

policy = seawall.Policy("later")  # telemetry=True: the global providers, no SDK yet
client = httpx.Client(transport=ResilientTransport(policy))
client.get(sys.argv[1])
telemetry = policy.telemetry
def ours():
    return [x for listeners in policy._on.values() for x in listeners
            if getattr(x, "__self__", None) is telemetry]
before = len(ours())  # nothing is listened to while there is no SDK
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(8) as pool:  # the first requests after it
    list(pool.map(lambda _: client.get(sys.argv[1]), range(24)))
print(before, len(exporter.get_finished_spans()), len(ours()),
      len(policy._on[seawall.events.RequestStarted]))
"""

METER_LATER = """
import sys, httpx, seawall
from seawall.httpx import ResilientTransport
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

policy = seawall.Policy("later")  # telemetry=True: the global providers, no SDK yet
client = httpx.Client(transport=ResilientTransport(policy))
client.get(sys.argv[1])
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))  # metrics only
for _ in range(5):
    client.get(sys.argv[1])
counts = [point.count for resource in reader.get_metrics_data().resource_metrics
          for scope in resource.scope_metrics for metric in scope.metrics
          if metric.name == "seawall.request.duration" for point in metric.data.data_points]
print(sum(counts))
"""


def _fresh(script: str, *args: str) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [int(x) for x in done.stdout.split()]


def test_an_sdk_installed_after_seawall_is_used_from_the_next_request_on(upstream):
    before, spans, listeners, on_start = _fresh(SDK_LATER, upstream.url + "/ok")
    assert before == 0  # no SDK: telemetry listens to nothing
    assert spans == 48  # 24 requests after the SDK appeared, 2 spans each; none before
    assert listeners == len(seawall.events.ALL)  # one handler per event class, no leftovers
    assert on_start == 1  # telemetry's handler and nothing else (logs do not listen to starts)


def test_a_meter_provider_alone_set_after_seawall_is_used_too(upstream):
    assert _fresh(METER_LATER, upstream.url + "/ok") == [5]  # the 5 requests after it


def test_counter_series_start_at_zero_when_a_dependency_is_first_seen(upstream, otel):
    """A series that first appears at 1 hides its first event from increase(): each counter
    the alerts and panels read is there at 0 from the dependency's first request."""
    import httpx

    from seawall.httpx import ResilientTransport

    policy = otel.policy(
        breaker=seawall.CircuitBreaker(),
        retry=seawall.Retry(backoff=FAST, budget=seawall.RetryBudget()),
    )
    bare = seawall.Policy("bare", telemetry=otel.telemetry, retry=None, breaker=None, bulkhead=None)
    for chosen in (policy, bare):
        with httpx.Client(transport=ResilientTransport(chosen)) as client:
            assert client.get(upstream.url + "/z").status_code == 200

    def series(name: str) -> dict[tuple[Any, ...], float]:
        return {tuple(sorted(a.items())): p.value for a, p in otel.metric(name)}

    up = ("seawall.dependency", "upstream")
    assert series("seawall.circuit_breaker.transitions") == {
        (("seawall.breaker.from", before), ("seawall.breaker.to", after), up): 0
        for before, after in [
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
            ("half_open", "open"),
        ]
    }
    assert series("seawall.bulkhead.rejections") == {
        (("seawall.bulkhead.reason", reason), up): 0 for reason in ("queue_full", "queue_timeout")
    }
    assert series("seawall.retry.exhausted") == {(up,): 0}
    assert series("seawall.retry.budget.rejected") == {(up,): 0}
    assert series("seawall.retry.attempts") == {
        (("error.type", str(status)), up): 0 for status in (408, 429, 500, 502, 503, 504)
    }
    assert series("seawall.manual.changes") == {
        (up, ("seawall.manual.action", action), ("seawall.manual.part", part)): 0
        for part, action in [
            ("circuit_breaker", "reset"),
            ("circuit_breaker", "isolate"),
            ("circuit_breaker", "disable"),
            ("bulkhead", "reset"),
            ("retry_budget", "reset"),
        ]
    }
    # the breaker's calls: only the dependency that has a breaker
    assert series("seawall.circuit_breaker.calls") == {
        (("seawall.breaker.result", result), up): int(result == "success")
        for result in ("success", "failure", "slow", "rejected")
    }


def test_breaker_calls_are_not_counted_without_a_breaker(flavour, upstream, otel):
    upstream.script("/n", respond(503), respond(200))
    with flavour.client(otel.policy(breaker=None)) as client:
        assert client.request("GET", upstream.url + "/n").status == 200
    assert otel.total("http.client.request.duration") == 2
    assert otel.metric("seawall.circuit_breaker.calls") == []
    assert otel.metric("seawall.circuit_breaker.transitions") == []


def test_request_duration_buckets_cover_the_total_timeout(upstream, otel):
    import httpx

    from seawall.httpx import ResilientTransport

    with httpx.Client(transport=ResilientTransport(otel.policy())) as client:
        client.get(upstream.url + "/h")
    ((_, point),) = otel.metric("seawall.request.duration")
    assert point.explicit_bounds[-1] >= 10 * seawall.Timeouts().total  # 30 s by default
    assert set(DURATION_BUCKETS) < set(point.explicit_bounds)


def test_attempt_spans_name_the_peer_and_status_errors_carry_no_description(
    flavour, upstream, otel
):
    upstream.script("/s", respond(503), then=respond(500))
    policy = otel.policy(retry=seawall.Retry(max_attempts=2, backoff=FAST))
    with flavour.client(policy) as client:
        assert client.request("GET", upstream.url + "/s").status == 500
    (logical,) = otel.finished(SpanKind.INTERNAL)
    attempts = otel.finished(SpanKind.CLIENT)
    assert len(attempts) == 2
    for span in (logical, *attempts):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description is None  # semconv: the status code says it all
    for span in attempts:  # the socket's where the client still has it, or the URL's
        assert span.attributes["network.peer.address"] == "127.0.0.1"
        assert span.attributes["network.peer.port"] == upstream.port
    assert not any(
        "network.peer.address" in a for a, _ in otel.metric("http.client.request.duration")
    )


def test_each_breaker_transition_lands_on_the_span_of_what_caused_it(upstream, otel):
    """An attempt's result moves the breaker on that attempt's span; open -> half_open happens
    when a request asks for a permit after `open_for`, before its attempt: its logical span."""
    import httpx

    from seawall.httpx import ResilientTransport

    now = [0.0]
    upstream.script("/t", respond(500), respond(200))
    policy = otel.policy(
        retry=None,
        clock=lambda: now[0],
        breaker=seawall.CircuitBreaker(consecutive_failures=1, open_for=5),
    )
    with httpx.Client(transport=ResilientTransport(policy)) as client:
        assert client.get(upstream.url + "/t").status_code == 500  # closed -> open
        now[0] += 6  # past open_for, on the policy's clock
        assert client.get(upstream.url + "/t").status_code == 200  # -> half_open -> closed
    landed = sorted(
        ((e.attributes["seawall.breaker.from"], e.attributes["seawall.breaker.to"]), s.kind.name)
        for s in otel.spans.get_finished_spans()
        for e in s.events
        if e.name == "seawall.circuit_breaker.transition"
    )
    assert landed == [
        (("closed", "open"), "CLIENT"),
        (("half_open", "closed"), "CLIENT"),
        (("open", "half_open"), "INTERNAL"),
    ]
