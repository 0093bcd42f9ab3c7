"""Dashboards, alert rules and the compose stack: current, valid, tested with promtool."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "grafana"))
import generate  # noqa: E402

from tests.tools import require  # noqa: E402


def test_generated_files_are_current():
    stale = [
        str(path.relative_to(ROOT))
        for path, text in generate.outputs().items()
        if not path.exists() or path.read_text() != text
    ]
    assert stale == [], "run: python grafana/generate.py"


def test_promtool_checks_the_rules():
    require("promtool", "prometheus")
    done = subprocess.run(
        ["promtool", "check", "rules", "seawall.rules.yml"],
        cwd=ROOT / "grafana" / "alerts",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "SUCCESS: 11 rules found" in done.stdout, (
        done.stdout + done.stderr
    )


def test_promtool_unit_tests_fire_and_stay_quiet():
    require("promtool", "prometheus")
    done = subprocess.run(
        ["promtool", "test", "rules", "seawall.test.yml"],
        cwd=ROOT / "grafana" / "alerts",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
    tests = yaml.safe_load((ROOT / "grafana" / "alerts" / "seawall.test.yml").read_text())["tests"]
    assert sorted(t["name"] for t in tests) == sorted(a.name for a in generate.ALERTS)
    for test in tests:  # each alert fires for "bad" and never for "good"
        fired = [a for check in test["alert_rule_test"] for a in check["exp_alerts"]]
        assert [a["exp_labels"]["seawall_dependency"] for a in fired] == ["bad"]
        assert any(s["series"].count('"good"') for s in test["input_series"])


@pytest.mark.parametrize("name", ["seawall-overview.json", "seawall-dependency.json"])
def test_dashboards_are_complete(name):
    data = json.loads((ROOT / "grafana" / "dashboards" / name).read_text())
    assert [v["name"] for v in data["templating"]["list"]] == [
        "datasource",
        "service",
        "dependency",
    ]
    rows: dict[int, int] = {}
    for panel in data["panels"]:
        assert panel["description"] and panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert re.search(r"\b(seawall_|http_client_request_duration)", target["expr"])
            assert 'seawall_dependency=~"$dependency"' in target["expr"]
        rows[panel["gridPos"]["y"]] = rows.get(panel["gridPos"]["y"], 0) + panel["gridPos"]["w"]
    assert all(width <= 24 for width in rows.values())
    if name == "seawall-dependency.json":
        assert "tempo" in data["links"][0]["url"]


def test_grafana_alerting_matches_the_prometheus_rules():
    alerting = yaml.safe_load(
        (ROOT / "grafana" / "provisioning" / "alerting" / "seawall.yml").read_text()
    )
    rules = yaml.safe_load((ROOT / "grafana" / "alerts" / "seawall.rules.yml").read_text())
    prometheus = {r["alert"]: r["expr"] for r in rules["groups"][0]["rules"]}
    grafana = {r["title"]: r["data"][0]["model"]["expr"] for r in alerting["groups"][0]["rules"]}
    assert grafana == prometheus
    assert {c["name"] for c in alerting["contactPoints"]} == {
        "seawall-webhook",
        "servicenow-incident",
    }
    assert alerting["policies"][0]["routes"][0]["receiver"] == "servicenow-incident"
    for rule in rules["groups"][0]["rules"]:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


def test_every_runbook_link_has_a_section():
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbooks, re.M)
    }
    for alert in generate.ALERTS:
        assert alert.anchor in anchors, alert.anchor


def test_the_workload_image_is_built_once_from_files_that_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    workload = compose["services"]["workload"]
    build = workload["build"]
    dockerfile = ROOT / build["context"] / build["dockerfile"]
    sources = [
        source
        for line in dockerfile.read_text().splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    ]
    assert sources and [s for s in sources if not (ROOT / build["context"] / s).exists()] == []
    assert "pip install" not in str(workload.get("command", ""))  # not at every start


def test_compose_file_is_valid_and_mounts_files_that_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    missing = []
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                if not (ROOT / source).exists():
                    missing.append(source)
    assert missing == []
    require("docker-compose", "docker-compose")
    done = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["seawall-overview.json", "seawall-dependency.json"])
def test_percent_panels_show_only_ratios(name):
    """A count in a `percentunit` panel reads 3 queued callers as 300%."""
    data = json.loads((ROOT / "grafana" / "dashboards" / name).read_text())
    for panel in [
        p for p in data["panels"] if p["fieldConfig"]["defaults"]["unit"] == "percentunit"
    ]:
        for target in panel["targets"]:
            assert " / " in target["expr"], (panel["title"], target["expr"])
