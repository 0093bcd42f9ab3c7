"""Bounded metric cardinality: many distinct hosts, ports and methods (real sockets, the real
SDK's in-memory reader) leave every metric under its documented cap, with exact totals."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from benchmarks.cardinality import drive, label_sets
from seawall.telemetry.otel import OTHER_SERVER

HOSTS, PORTS, METHODS = 40, 130, 30
KNOWN = {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], int]]:
    data = reader.get_metrics_data()
    return [
        (dict(p.attributes), p.count)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    ]


def test_hosts_ports_and_methods_do_not_multiply_the_label_sets():
    reader, _ = drive(HOSTS, PORTS, METHODS)
    attempts = points(reader, "http.client.request.duration")
    assert sum(count for _, count in attempts) == HOSTS + PORTS + METHODS  # every attempt counted
    # one named dependency over many hosts: its first 10 servers, then _OTHER (no port)
    spread = {
        (a["server.address"], a.get("server.port"))
        for a, _ in attempts
        if a["seawall.dependency"] == "spread"
    }
    assert len(spread) == 11 and (OTHER_SERVER, None) in spread
    # one origin per dependency up to 100, then "_other", itself bounded to 10 servers
    dependencies = {a["seawall.dependency"] for a, _ in attempts}
    assert len(dependencies) == 100 + 1 and "_other" in dependencies
    others = {
        a["server.address"] + str(a.get("server.port"))
        for a, _ in attempts
        if a["seawall.dependency"] == "_other"
    }
    assert len(others) == 11
    # unknown methods are _OTHER on metrics, the original only on spans
    assert {a["http.request.method"] for a, _ in attempts} == {"GET", "_OTHER"}
    assert not any("http.request.method_original" in a for a, _ in attempts)
    requests = points(reader, "seawall.request.duration")
    assert {a["http.request.method"] for a, _ in requests} <= KNOWN | {"_OTHER"}
    counts = label_sets(reader)
    assert counts["http.client.request.duration"] == len(attempts) <= 125, counts


def test_no_metric_holds_more_label_sets_than_its_cap_and_totals_stay_exact():
    # every server its own label: 80 label sets of attempts, 41 of logical requests
    reader, _ = drive(HOSTS, 40, 0, max_servers=1000, max_label_sets=20)
    for name in ("http.client.request.duration", "seawall.request.duration"):
        found = points(reader, name)
        assert len(found) == 21, (name, len(found))  # 20 sets and the overflow one
        assert {"otel.metric.overflow": True} in [a for a, _ in found]
        assert sum(count for _, count in found) == HOSTS + 40


def test_the_caps_and_the_key_list_are_checked_when_built():
    import pytest

    from seawall.telemetry.otel import Telemetry

    for bad, kind in (
        ({"max_servers": 0}, ValueError),
        ({"max_label_sets": "2000"}, TypeError),
        ({"max_label_sets": True}, TypeError),
        ({"sensitive_query_keys": "token"}, TypeError),
    ):
        with pytest.raises(kind, match=next(iter(bad))):
            Telemetry(**bad)
