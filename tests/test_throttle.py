"""Client-side throttling through every client flavour, against the real upstream: a throttled
call never reaches it, raises the flavoured CircuitOpenError with reason "throttled", and the
events and metrics say "throttled"."""

from __future__ import annotations

import pytest

import seawall
from integrations.upstream import respond
from seawall import events as ev

from .test_telemetry import Otel, otel  # noqa: F401 (the fixture)


def test_a_throttled_call_is_a_flavoured_circuit_open_error_and_counted_throttled(
    flavour,
    upstream,
    otel: Otel,  # noqa: F811 (the fixture)
):
    upstream.default = respond(503)
    # every draw is 0: a call is rejected as soon as the formula gives p > 0
    breaker = seawall.CircuitBreaker(throttle=seawall.Throttle(k=2, random=lambda: 0.0))
    policy = otel.policy(retry=None, breaker=breaker)
    rejected: list[ev.CircuitRejected] = []
    policy.subscribe(rejected.append, ev.CircuitRejected)
    with flavour.client(policy) as client:
        assert client.request("GET", upstream.url + "/t").status == 503  # p = 0 before it
        with pytest.raises(seawall.CircuitOpenError) as caught:
            client.request("GET", upstream.url + "/t")  # 1 request, 0 accepts: p = 1/2
    assert isinstance(caught.value, client.transport_error)
    assert caught.value.reason == "throttled"
    assert "throttling" in str(caught.value)
    assert upstream.hits("/t") == 1
    assert [e.reason for e in rejected] == ["throttled"]
    assert (
        policy.dependency("upstream").breaker().state(policy.now()) is seawall.BreakerState.CLOSED
    )
    assert otel.total("seawall.circuit_breaker.calls", seawall_breaker_result="throttled") == 1
    assert otel.total("seawall.circuit_breaker.calls", seawall_breaker_result="rejected") == 0
    span = next(
        s
        for s in otel.spans.get_finished_spans()
        if any(e.name == "seawall.circuit_breaker.rejected" for e in s.events)
    )
    event = next(e for e in span.events if e.name == "seawall.circuit_breaker.rejected")
    assert event.attributes["seawall.breaker.reason"] == "throttled"


def test_an_open_breakers_rejection_says_open(flavour, upstream, otel: Otel):  # noqa: F811
    policy = otel.policy(retry=None, breaker=seawall.CircuitBreaker(consecutive_failures=1))
    upstream.default = respond(503)
    with flavour.client(policy) as client:
        client.request("GET", upstream.url + "/o")
        with pytest.raises(seawall.CircuitOpenError) as caught:
            client.request("GET", upstream.url + "/o")
    assert caught.value.reason == "open"
    assert otel.total("seawall.circuit_breaker.calls", seawall_breaker_result="rejected") == 1
