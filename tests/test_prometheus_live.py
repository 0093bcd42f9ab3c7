"""A real Prometheus on loopback scrapes the workload (the upstream and all three clients through
the OTel Prometheus exporter); every dashboard query and every alert expression is evaluated
through its HTTP API: each must succeed, and each panel must return data. This process exports
too (job "seawall-test"), for traffic whose every step the tests know."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import seawall
from integrations.upstream import respond
from seawall.httpx import ResilientTransport
from seawall.telemetry.otel import Telemetry
from tests.tools import require

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard_queries(name: str) -> list[tuple[str, list[str]]]:
    data = json.loads((ROOT / "grafana" / "dashboards" / name).read_text())
    return [(panel["title"], [t["expr"] for t in panel["targets"]]) for panel in data["panels"]]


def substitute(expr: str, dependency: str) -> str:
    return (
        expr.replace("$__rate_interval", "10s")
        .replace("$service", ".*")
        .replace("$dependency", dependency)
    )


@pytest.fixture(scope="module")
def exported():
    """A Telemetry of this process, on an exporter Prometheus scrapes as job "seawall-test"."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import start_http_server

    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    server, thread = start_http_server(0, addr="127.0.0.1")
    try:
        yield Telemetry(meter_provider=meter_provider), server.server_port
    finally:
        server.shutdown()
        thread.join(5)
        meter_provider.shutdown()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, exported):
    require("prometheus", "prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    exporter, web = free_port(), free_port()
    workload = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "integrations.workload",
            "--prometheus-port",
            str(exporter),
            "--seconds",
            "90",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = tmp / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{ROOT / "grafana" / "alerts" / "seawall.rules.yml"}"]
scrape_configs:
  - job_name: seawall-workload
    static_configs: [{{targets: ["127.0.0.1:{exporter}"]}}]
  - job_name: seawall-test
    static_configs: [{{targets: ["127.0.0.1:{exported[1]}"]}}]
""")
    server = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{web}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{web}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the workload's series are there
            try:
                found = query(url, "count(seawall_request_duration_seconds_count)")
                if found:
                    break
            except (httpx.HTTPError, ValueError, AssertionError):
                pass  # not listening yet, or "Service Unavailable" while it starts
            time.sleep(0.5)
        else:
            pytest.fail("Prometheus never saw the workload's metrics")
        time.sleep(12)  # enough samples for rates over the substituted interval
        yield url
    finally:
        for process in (server, workload):
            process.terminate()
        for process in (server, workload):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def query(url: str, expr: str) -> list:
    answer = httpx.get(url + "/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def test_every_overview_panel_returns_data(prometheus):
    empty = []
    for title, exprs in dashboard_queries("seawall-overview.json"):
        results = [query(prometheus, substitute(e, ".*")) for e in exprs]
        if not any(results):
            empty.append(title)
    assert empty == []


def test_every_dependency_panel_returns_data_for_some_dependency(prometheus):
    empty = []
    for title, exprs in dashboard_queries("seawall-dependency.json"):
        if not any(
            query(prometheus, substitute(e, dependency))
            for dependency in ("payments", "search", "flaky")
            for e in exprs
        ):
            empty.append(title)
    assert empty == []


def test_every_alert_expression_evaluates_and_the_rules_load(prometheus):
    import yaml

    rules = yaml.safe_load((ROOT / "grafana" / "alerts" / "seawall.rules.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        query(prometheus, rule["expr"])  # asserts success
    loaded = httpx.get(prometheus + "/api/v1/rules", timeout=10).json()["data"]["groups"]
    health = {r["name"]: r["health"] for g in loaded for r in g["rules"]}
    assert len(health) == 11 and set(health.values()) <= {"ok", "unknown"}, health


def test_the_workload_makes_the_alerts_that_should_fire_fire(prometheus):
    # instant versions without `for`: the retry budget and the bulkhead are refusing right now
    assert query(
        prometheus,
        "sum by (seawall_dependency) (rate(seawall_retry_budget_rejected_total[10s])) > 0",
    )
    assert query(
        prometheus, "sum by (seawall_dependency) (rate(seawall_bulkhead_rejections_total[10s])) > 0"
    )
    backlog = query(
        prometheus,
        'max by (seawall_dependency) (seawall_dead_letters_entries{seawall_dead_letter_state="pending"}) > 10',
    )
    assert [b["metric"]["seawall_dependency"] for b in backlog] == ["flaky"]


def wait_for(url: str, expr: str, seconds: float = 30) -> list:
    """The first non-empty answer to `expr` within `seconds` (Prometheus scrapes every 1 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = query(url, expr)
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"Prometheus never answered {expr}")


def test_four_breaker_openings_fire_the_flapping_alert(prometheus, exported, upstream):
    """A counter series that first appears at 1 hides its first event from increase(): 4
    openings read as about 3 and CircuitBreakerFlapping (> 3) stays quiet. Created at 0 when
    the dependency is first seen, the series counts all 4."""
    import yaml

    telemetry, _ = exported
    policy = seawall.Policy(
        "flapping",
        telemetry=telemetry,
        retry=None,
        bulkhead=None,
        breaker=seawall.CircuitBreaker(consecutive_failures=1, open_for=0.05),
    )
    series = (
        'seawall_circuit_breaker_transitions_total{job="seawall-test", '
        'seawall_dependency="flapping", seawall_breaker_to="open"}'
    )
    upstream.script(
        "/flap", respond(200), *[step for _ in range(4) for step in (respond(500), respond(200))]
    )
    with httpx.Client(transport=ResilientTransport(policy)) as client:
        assert client.get(upstream.url + "/flap").status_code == 200  # the dependency is seen
        wait_for(prometheus, f"{series} == 0")  # a sample at 0 before the first opening
        for _ in range(4):
            assert client.get(upstream.url + "/flap").status_code == 500  # closed -> open
            time.sleep(0.06)  # open_for
            assert client.get(upstream.url + "/flap").status_code == 200  # half_open -> closed
    assert upstream.hits("/flap") == 9
    wait_for(prometheus, f"{series} == 4")
    rules = yaml.safe_load((ROOT / "grafana" / "alerts" / "seawall.rules.yml").read_text())
    (flapping,) = [
        r for r in rules["groups"][0]["rules"] if r["alert"] == "SeawallCircuitBreakerFlapping"
    ]
    fired = {
        r["metric"]["seawall_dependency"]: float(r["value"][1])
        for r in query(prometheus, flapping["expr"])
        if r["metric"].get("job") == "seawall-test"
    }
    # every opening counted (increase() extrapolates past the last sample, never below the 0
    # the series started at, so it reads 4 or a little more: over the alert's 3)
    assert set(fired) == {"flapping"} and fired["flapping"] >= 4, fired
    # and Prometheus's own evaluation of the rule has it pending (its `for` is 5 minutes)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        alerts = httpx.get(prometheus + "/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        if any(
            a["labels"].get("alertname") == "SeawallCircuitBreakerFlapping"
            and a["labels"].get("seawall_dependency") == "flapping"
            for a in alerts
        ):
            break
        time.sleep(0.5)
    else:
        pytest.fail("SeawallCircuitBreakerFlapping never became pending for 4 openings")
