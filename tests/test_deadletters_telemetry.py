"""The dead letters' metrics, and a replay's span linked to the original request's trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import seawall
from integrations.upstream import Upstream, respond
from seawall.deadletters import DeadLetters, SQLiteStore
from seawall.telemetry.otel import Telemetry
from tests.flavours import HttpxSync


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [
                    (dict(p.attributes or {}), p.value) for p in metric.data.data_points
                ]
    return found


def test_entries_by_dependency_and_state_and_the_counts(upstream: Upstream, tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    letters = DeadLetters(
        SQLiteStore(tmp_path / "l.db"),
        replay_rate=200.0,
        telemetry=MeterProvider(metric_readers=[reader]),
    )
    policy = seawall.Policy("m", retry=None, breaker=None, telemetry=False, dead_letters=letters)
    upstream.script("/m", respond(503), respond(503), then=respond(200))
    with HttpxSync().client(policy) as client:
        for _ in range(2):
            client.request("GET", f"{upstream.url}/m")
    letters.flush()
    letters.replay(letters.list()[0].id)
    points = _points(reader)
    entries = {
        (a["seawall.dependency"], a["seawall.dead_letter.state"]): v
        for a, v in points["seawall.dead_letters.entries"]
    }
    assert entries == {("m", "pending"): 1, ("m", "resolved"): 1}
    by_dependency = {"seawall.dependency": "m"}
    assert points["seawall.dead_letters.recorded"] == [(by_dependency, 2)]
    assert points["seawall.dead_letters.replayed"] == [(by_dependency, 1)]
    assert points["seawall.dead_letters.dropped"] == [(by_dependency, 0)]  # from 0
    letters.close()


def test_a_replay_span_links_to_the_original_trace(upstream: Upstream, tmp_path: Path) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    letters = DeadLetters(SQLiteStore(tmp_path / "l.db"), telemetry=False)
    policy = seawall.Policy(
        "t",
        retry=None,
        breaker=None,
        dead_letters=letters,
        telemetry=Telemetry(tracer_provider=provider, meter_provider=MeterProvider()),
    )
    upstream.script("/t", respond(503), then=respond(200))
    with HttpxSync().client(policy) as client:
        client.request("GET", f"{upstream.url}/t")
    letters.flush()
    [letter] = letters.list()
    [original] = [s for s in spans.get_finished_spans() if s.name == "seawall t"]
    assert letter.trace_id == format(original.context.trace_id, "032x")
    assert letter.span_id == format(original.context.span_id, "016x")
    spans.clear()
    assert letters.replay(letter.id).ok
    [replay] = [s for s in spans.get_finished_spans() if s.name == "seawall replay t"]
    assert [link.context.trace_id for link in replay.links] == [original.context.trace_id]
    assert replay.attributes["seawall.dead_letter.id"] == letter.id
    inner = [s for s in spans.get_finished_spans() if s.name == "seawall t"]
    assert inner and inner[0].context.trace_id == replay.context.trace_id  # under the replay
    letters.close()
