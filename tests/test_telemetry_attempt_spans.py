"""`Telemetry(spans="attempts")`: one CLIENT span per attempt, as the official instrumentations
report, and the logical span only for a request that retried, waited or made no attempt; a
real SDK over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import seawall
from integrations.upstream import respond
from seawall.telemetry.otel import Telemetry
from tests.test_telemetry import Otel, in_memory_otel

FAST = seawall.Backoff.constant(0.001)


@pytest.fixture
def otel() -> Iterator[Otel]:
    yield from in_memory_otel(spans="attempts")


def test_one_attempt_that_waited_for_nothing_is_one_client_span(flavour, upstream, otel):
    with flavour.client(otel.policy()) as client:
        assert client.request("GET", upstream.url + "/one").status == 200
        assert client.request("GET", upstream.url + "/two").status == 200
    assert otel.finished(SpanKind.INTERNAL) == []
    first, second = sorted(otel.finished(SpanKind.CLIENT), key=lambda s: s.start_time)
    assert first.name == "GET" and first.attributes["http.response.status_code"] == 200
    assert "http.request.resend_count" not in first.attributes
    # each its own request: nothing left current from the one before
    assert first.parent is None and second.parent is None
    assert first.context.trace_id != second.context.trace_id
    # the metrics are those of the default: one attempt and one logical request each
    assert otel.total("http.client.request.duration") == 2
    assert otel.total("seawall.request.duration", seawall_outcome="success") == 2
    sent = [r.headers.get("traceparent", "")[3:35] for r in upstream.requests]
    assert sent == [f"{s.context.trace_id:032x}" for s in (first, second)]


def test_the_attempt_span_is_a_child_of_the_callers_span(upstream, otel):
    import httpx

    from seawall.httpx import AsyncResilientTransport, ResilientTransport

    tracer = otel.tracer_provider.get_tracer("test")
    with httpx.Client(transport=ResilientTransport(otel.policy())) as client:
        with tracer.start_as_current_span("caller sync"):
            client.get(upstream.url + "/s")

    async def main() -> None:
        async with httpx.AsyncClient(transport=AsyncResilientTransport(otel.policy())) as client:
            with tracer.start_as_current_span("caller async"):
                await asyncio.gather(
                    client.get(upstream.url + "/a"), client.get(upstream.url + "/b")
                )

    asyncio.run(main())
    callers = {s.name: s for s in otel.spans.get_finished_spans() if s.name.startswith("caller")}
    attempts = otel.finished(SpanKind.CLIENT)
    assert len(attempts) == 3 and len(otel.finished(SpanKind.INTERNAL)) == 2  # the callers
    parents = sorted(s.parent.span_id for s in attempts)
    assert parents == sorted(
        [callers["caller sync"].context.span_id] + [callers["caller async"].context.span_id] * 2
    )


def test_a_request_that_retried_gets_its_logical_span_late(flavour, upstream, otel):
    upstream.script("/r", respond(503), then=respond(200))
    with flavour.client(otel.policy()) as client:
        assert client.request("GET", upstream.url + "/r").status == 200
    (logical,) = otel.finished(SpanKind.INTERNAL)
    first, second = sorted(otel.finished(SpanKind.CLIENT), key=lambda s: s.start_time)
    assert logical.name == "seawall upstream"
    assert logical.attributes["seawall.attempts"] == 2
    assert logical.attributes["seawall.outcome"] == "success"
    assert [e.name for e in logical.events] == ["seawall.retry"]
    # as of the request's start; the attempt that ended before it linked, the next its child
    assert logical.start_time <= first.start_time and logical.end_time >= second.end_time
    assert [link.context.span_id for link in logical.links] == [first.context.span_id]
    assert second.parent.span_id == logical.context.span_id
    assert second.attributes["http.request.resend_count"] == 1
    assert first.attributes["http.response.status_code"] == 503


def test_under_the_callers_span_a_retried_request_is_one_trace(upstream, otel):
    """(Without a current span, the first attempt is a trace of its own, and the logical span
    started for the retry is another, linked to it.)"""
    import httpx

    from seawall.httpx import ResilientTransport

    upstream.script("/r", respond(503), then=respond(200))
    tracer = otel.tracer_provider.get_tracer("test")
    with httpx.Client(transport=ResilientTransport(otel.policy())) as client:
        with tracer.start_as_current_span("caller") as caller:
            client.get(upstream.url + "/r")
    logical = next(s for s in otel.finished(SpanKind.INTERNAL) if s.name == "seawall upstream")
    first, second = sorted(otel.finished(SpanKind.CLIENT), key=lambda s: s.start_time)
    assert first.parent.span_id == logical.parent.span_id == caller.get_span_context().span_id
    assert second.parent.span_id == logical.context.span_id
    assert first.context.trace_id == second.context.trace_id == logical.context.trace_id


def test_a_request_refused_before_any_attempt_gets_its_logical_span(flavour, upstream, otel):
    policy = otel.policy(breaker=seawall.CircuitBreaker())
    with flavour.client(policy) as client:
        client.request("GET", upstream.url + "/x")  # the dependency's breaker, then held open
        policy.dependency("upstream").breaker().force_open(policy.now())
        with pytest.raises(seawall.CircuitOpenError):
            client.request("GET", upstream.url + "/x")
    (logical,) = otel.finished(SpanKind.INTERNAL)
    assert len(otel.finished(SpanKind.CLIENT)) == 1  # the first request's only
    assert [e.name for e in logical.events] == ["seawall.circuit_breaker.rejected"]
    assert logical.attributes["seawall.outcome"] == "rejected"
    assert logical.attributes["seawall.attempts"] == 0
    assert logical.status.status_code is StatusCode.ERROR
    assert logical.links == ()


def test_a_request_that_waited_for_a_slot_gets_its_logical_span(flavour, upstream, otel):
    upstream.default = respond(200, delay=0.3)  # the one slot stays held while the other waits
    policy = otel.policy(
        retry=None, bulkhead=seawall.Bulkhead(max_concurrent=1, max_queued=1, queue_timeout=5)
    )
    with flavour.client(policy) as client:
        results = client.many(2, "GET", upstream.url + "/w")
    assert [getattr(r, "status", r) for r in results] == [200, 200]
    (logical,) = otel.finished(SpanKind.INTERNAL)
    attempts = otel.finished(SpanKind.CLIENT)
    assert len(attempts) == 2
    assert [e.name for e in logical.events] == ["seawall.bulkhead.wait"]
    assert logical.attributes["seawall.attempts"] == 1
    waited = next(s for s in attempts if s.parent and s.parent.span_id == logical.context.span_id)
    assert waited.start_time >= logical.start_time


def test_spans_must_be_one_of_the_two():
    with pytest.raises(ValueError, match="spans.*one of request, attempts.*'all'"):
        Telemetry(spans="all")
