"""One source for seawall's dashboards and alerts; `python grafana/generate.py` writes:

- grafana/dashboards/seawall-overview.json and seawall-dependency.json (Grafana 11 JSON);
- grafana/alerts/seawall.rules.yml (Prometheus rule format: Prometheus, Mimir, Grafana);
- grafana/provisioning/alerting/seawall.yml (the same rules as Grafana-managed alerts, plus a
  webhook contact point, a ServiceNow example and a notification policy).

The committed files must equal what this writes (a test checks it): edit here, then run it.
A small generator of our own rather than grafana-foundation-sdk: the panels are a dozen
PromQL queries with a unit each, which a dict says more plainly than a builder.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RUNBOOK = "https://github.com/seawall-dev/seawall/blob/main/docs/runbooks.md"

# Every query filters with these: the service (Prometheus `job`, from service.name) and the
# dependency. `$__rate_interval` is Grafana's; tests substitute it.
SEL = 'job=~"$service", seawall_dependency=~"$dependency"'
FAILED = 'seawall_outcome=~"failure|rejected"'


@dataclass
class Panel:
    title: str
    description: str
    unit: str
    targets: list[tuple[str, str]]  # (PromQL, legend)
    kind: str = "timeseries"
    width: int = 8
    options: dict[str, Any] = field(default_factory=dict)


def quantiles(metric: str, by: str = "") -> list[tuple[str, str]]:
    group = f"le{', ' + by if by else ''}"
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{SEL}}}[$__rate_interval])))",
            f"p{int(q * 100)}{' {{' + by + '}}' if by else ''}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


BREAKER_STATE = " + ".join(
    f'{weight} * max by (seawall_dependency) (seawall_circuit_breaker_state{{{SEL}, seawall_breaker_state="{state}"}})'
    for weight, state in ((2, "open"), (1, "half_open"), (3, "isolated"), (4, "disabled"))
).replace("1 * ", "")
#: How long a breaker may stay isolated by hand before SeawallBreakerIsolatedTooLong fires.
ISOLATED_FOR = "1h"

PANELS: list[Panel] = [
    Panel(
        "Requests by outcome",
        "Logical requests per second (retries not counted), by how "
        "they ended: success, failure, rejected by seawall, fallback, cancelled.",
        "reqps",
        [
            (
                f"sum by (seawall_outcome) (rate(seawall_request_duration_seconds_count{{{SEL}}}[$__rate_interval]))",
                "{{seawall_outcome}}",
            )
        ],
    ),
    Panel(
        "Error ratio",
        "Share of logical requests that failed or were rejected.",
        "percentunit",
        [
            (
                f"sum(rate(seawall_request_duration_seconds_count{{{SEL}, {FAILED}}}[$__rate_interval])) "
                f"/ sum(rate(seawall_request_duration_seconds_count{{{SEL}}}[$__rate_interval]))",
                "error ratio",
            )
        ],
    ),
    Panel(
        "Top failing dependencies",
        "Failed or rejected logical requests per second, worst first.",
        "reqps",
        [
            (
                f"topk(10, sum by (seawall_dependency) (rate(seawall_request_duration_seconds_count"
                f"{{{SEL}, {FAILED}}}[$__rate_interval])))",
                "{{seawall_dependency}}",
            )
        ],
        kind="bargauge",
    ),
    Panel(
        "Logical request latency",
        "Whole logical request: waits, retries and backoff included.",
        "s",
        quantiles("seawall_request_duration_seconds"),
    ),
    Panel(
        "Attempt latency",
        "Each attempt on its own (http.client.request.duration).",
        "s",
        quantiles("http_client_request_duration_seconds"),
    ),
    Panel(
        "Retries per second",
        "Retries made, by reason (status code or error type).",
        "ops",
        [
            (
                f"sum by (error_type) (rate(seawall_retry_attempts_total{{{SEL}}}[$__rate_interval]))",
                "{{error_type}}",
            )
        ],
    ),
    Panel(
        "Retry ratio",
        "Retries / attempts: how much extra load retries put on dependencies.",
        "percentunit",
        [
            (
                f"sum(rate(seawall_retry_attempts_total{{{SEL}}}[$__rate_interval])) / "
                f"sum(rate(http_client_request_duration_seconds_count{{{SEL}}}[$__rate_interval]))",
                "retry ratio",
            )
        ],
    ),
    Panel(
        "Retry budget refusals",
        "Retries the retry budget refused (a retry storm was stopped), "
        "and requests that ran out of attempts.",
        "ops",
        [
            (
                f"sum by (seawall_dependency) (rate(seawall_retry_budget_rejected_total{{{SEL}}}[$__rate_interval]))",
                "refused {{seawall_dependency}}",
            ),
            (
                f"sum by (seawall_dependency) (rate(seawall_retry_exhausted_total{{{SEL}}}[$__rate_interval]))",
                "exhausted {{seawall_dependency}}",
            ),
        ],
    ),
    Panel(
        "Circuit breaker state",
        "0 closed, 1 half-open, 2 open, per dependency; set by hand "
        "(seawall.admin): 3 isolated (held open), 4 disabled (not protecting).",
        "none",
        [(BREAKER_STATE, "{{seawall_dependency}}")],
        kind="state-timeline",
        width=16,
        options={
            "mappings": [
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "closed", "color": "green"},
                        "1": {"text": "half-open", "color": "yellow"},
                        "2": {"text": "open", "color": "red"},
                        "3": {"text": "isolated", "color": "purple"},
                        "4": {"text": "disabled", "color": "blue"},
                    },
                }
            ]
        },
    ),
    Panel(
        "Breaker transitions",
        "State changes in each interval, by the state entered.",
        "short",
        [
            (
                f"sum by (seawall_dependency, seawall_breaker_to) (increase(seawall_circuit_breaker_transitions_total"
                f"{{{SEL}}}[$__rate_interval]))",
                "{{seawall_dependency}} to {{seawall_breaker_to}}",
            )
        ],
    ),
    Panel(
        "Manual changes",
        "Changes made by hand through seawall.admin (reset, isolate, "
        "disable of breakers; bulkhead and retry budget resets); the logs say who and why.",
        "short",
        [
            (
                f"sum by (seawall_dependency, seawall_manual_part, seawall_manual_action) (increase("
                f"seawall_manual_changes_total{{{SEL}}}[$__rate_interval]))",
                "{{seawall_manual_action}} {{seawall_manual_part}} {{seawall_dependency}}",
            )
        ],
        kind="bargauge",
    ),
    Panel(
        "Breaker calls by result",
        "Calls the breakers saw: success, failure, slow, rejected.",
        "ops",
        [
            (
                f"sum by (seawall_breaker_result) (rate(seawall_circuit_breaker_calls_total{{{SEL}}}[$__rate_interval]))",
                "{{seawall_breaker_result}}",
            )
        ],
    ),
    Panel(
        "Bulkhead utilization",
        "Slots in use / limit; near 100% the bulkhead decides who waits.",
        "percentunit",
        [
            (
                f"max by (seawall_dependency) (seawall_bulkhead_active{{{SEL}}}) / "
                f"max by (seawall_dependency) (seawall_bulkhead_limit{{{SEL}}})",
                "{{seawall_dependency}}",
            )
        ],
    ),
    Panel(
        "Bulkhead queue",
        "Callers waiting for a slot (a count, not a share).",
        "short",
        [
            (
                f"sum by (seawall_dependency) (seawall_bulkhead_queued{{{SEL}}})",
                "queued {{seawall_dependency}}",
            )
        ],
    ),
    Panel(
        "Bulkhead queue wait p95",
        "How long queued requests waited for a slot.",
        "s",
        [
            (
                f"histogram_quantile(0.95, sum by (le, seawall_dependency) (rate(seawall_bulkhead_queue_duration_seconds_bucket"
                f"{{{SEL}}}[$__rate_interval])))",
                "{{seawall_dependency}}",
            )
        ],
    ),
    Panel(
        "Rejections",
        "Requests seawall turned away: bulkhead full, breaker open.",
        "reqps",
        [
            (
                f"sum by (seawall_dependency, seawall_bulkhead_reason) (rate(seawall_bulkhead_rejections_total"
                f"{{{SEL}}}[$__rate_interval]))",
                "bulkhead {{seawall_bulkhead_reason}} {{seawall_dependency}}",
            ),
            (
                f'sum by (seawall_dependency) (rate(seawall_circuit_breaker_calls_total{{{SEL}, seawall_breaker_result="rejected"}}'
                f"[$__rate_interval]))",
                "breaker {{seawall_dependency}}",
            ),
        ],
    ),
    Panel(
        "Pool connections",
        "Open connections of the clients' pools, active and idle.",
        "short",
        [(f"sum by (state) (seawall_pool_connections{{{SEL}}})", "{{state}}")],
    ),
    Panel(
        "Dead letters kept",
        "Requests that failed for good, kept to be replayed (seawall.DeadLetters), by dependency "
        "and state: pending ones wait for a replay, failed ones failed it (docs/dead-letters.md). "
        "Processes sharing a store report the same entries: the largest is shown.",
        "short",
        [
            (
                f"max by (seawall_dependency, seawall_dead_letter_state) (seawall_dead_letters_entries{{{SEL}}})",
                "{{seawall_dependency}} {{seawall_dead_letter_state}}",
            )
        ],
    ),
    Panel(
        "Dead letters recorded, dropped, replayed",
        "Dead letters stored per second; dropped (the writer's queue was full or the store refused "
        "them: those requests are lost); replays sent.",
        "ops",
        [
            (
                f"sum by (seawall_dependency) (rate(seawall_dead_letters_{what}_total{{{SEL}}}[$__rate_interval]))",
                f"{what} {{{{seawall_dependency}}}}",
            )
            for what in ("recorded", "dropped", "replayed")
        ],
    ),
]


def panel_json(panel: Panel, number: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.options.get("mappings"):
        defaults["mappings"] = panel.options["mappings"]
    result: dict[str, Any] = {
        "id": number,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "exemplar": panel.kind == "timeseries" and "duration_seconds_bucket" in expr,
            }
            for i, (expr, legend) in enumerate(panel.targets)
        ],
    }
    if panel.kind == "bargauge":
        result["options"] = {"orientation": "horizontal", "displayMode": "gradient"}
    return result


def variables(single_dependency: bool) -> list[dict[str, Any]]:
    def query(name: str, label: str, metric: str, multi: bool) -> dict[str, Any]:
        return {
            "name": name,
            "label": label,
            "type": "query",
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {
                "query": f"label_values({metric}, {name if name != 'service' else 'job'})",
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            },
            "definition": f"label_values({metric}, {name if name != 'service' else 'job'})",
            "refresh": 2,
            "multi": multi,
            "includeAll": multi,
            **({"allValue": ".*", "current": {"text": "All", "value": "$__all"}} if multi else {}),
        }

    dependency = query(
        "dependency", "Dependency", "seawall_request_duration_seconds_count", not single_dependency
    )
    dependency["query"]["query"] = dependency["definition"] = (
        'label_values(seawall_request_duration_seconds_count{job=~"$service"}, seawall_dependency)'
    )
    dependency["name"] = "dependency"
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {"text": "Prometheus", "value": "prometheus"},
        },
        query("service", "Service", "seawall_request_duration_seconds_count", True),
        dependency,
    ]


def dashboard(uid: str, title: str, description: str, single_dependency: bool) -> dict[str, Any]:
    panels, x, y = [], 0, 0
    for number, panel in enumerate(PANELS, start=1):
        if single_dependency and panel.title == "Top failing dependencies":
            continue
        if x + panel.width > 24:
            x, y = 0, y + 8
        panels.append(panel_json(panel, number, x, y))
        x += panel.width
    # dependency-scoped SEL: $dependency is a single value there, the queries are the same
    links = []
    if single_dependency:
        links.append(
            {
                "title": "Traces of $dependency in Tempo",
                "type": "link",
                "targetBlank": True,
                "url": '/explore?left={"datasource":"tempo","queries":[{"queryType":"traceql",'
                '"query":"{ span.seawall.dependency = \\"$dependency\\" }"}]}',
            }
        )
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["seawall"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": variables(single_dependency)},
        "links": links,
        "panels": panels,
        "annotations": {"list": []},
    }


# -- alerts --------------------------------------------------------------------------------
BY = "job, seawall_dependency"
SLO_ERROR_BUDGET = 0.001  # a 99.9% success objective for logical requests


def error_ratio(window: str) -> str:
    return (
        f"(sum by ({BY}) (rate(seawall_request_duration_seconds_count{{{FAILED}}}[{window}])) "
        f"/ sum by ({BY}) (rate(seawall_request_duration_seconds_count[{window}])))"
    )


@dataclass
class Alert:
    name: str
    expr: str
    duration: str
    severity: str
    summary: str
    description: str
    anchor: str
    # promtool test: input series ("DEP" becomes the failing "bad" and the healthy "good"
    # dependency), and the minute to evaluate at (before it, `for` has not elapsed). Shaped
    # like the series seawall makes: a counter created at 0 when its dependency is first seen
    # (docs/telemetry.md, "Counters start at 0") steps up from 0 at each event; a histogram's
    # series appear at their first observation, with its count; "_" is a missing sample.
    series: dict[str, tuple[str, str]] = field(default_factory=dict)
    at_minute: int = 20


#: Pending dead letters of one dependency above which SeawallDeadLetterBacklog fires.
DEAD_LETTER_BACKLOG = 10

ALERTS: list[Alert] = [
    Alert(
        "SeawallCircuitBreakerOpen",
        f'max by ({BY}) (seawall_circuit_breaker_state{{seawall_breaker_state="open"}}) > 0',
        "1m",
        "warning",
        "Circuit breaker open for {{ $labels.seawall_dependency }}",
        "{{ $labels.job }} stopped calling {{ $labels.seawall_dependency }}: its breaker has been "
        "open for over a minute; calls fail fast with CircuitOpenError.",
        "breaker-open",
        {'seawall_circuit_breaker_state{seawall_breaker_state="open"}': ("0x2 1x27", "0x30")},
        5,
    ),
    Alert(
        "SeawallBreakerIsolatedTooLong",
        f'max by ({BY}) (seawall_circuit_breaker_state{{seawall_breaker_state="isolated"}}) > 0',
        ISOLATED_FOR,
        "warning",
        "Circuit breaker of {{ $labels.seawall_dependency }} isolated "
        "by hand for over " + ISOLATED_FOR,
        "Someone isolated the breaker of {{ $labels.seawall_dependency }} (seawall.admin) and "
        "it is still held open: every call fails fast. Reset it, or say why not.",
        "breaker-isolated",
        {'seawall_circuit_breaker_state{seawall_breaker_state="isolated"}': ("1x90", "0x90")},
        70,
    ),
    Alert(
        "SeawallCircuitBreakerFlapping",
        f'sum by ({BY}) (increase(seawall_circuit_breaker_transitions_total{{seawall_breaker_to="open"}}[15m])) > 3',
        "5m",
        "warning",
        "Circuit breaker flapping for {{ $labels.seawall_dependency }}",
        "The breaker of {{ $labels.seawall_dependency }} opened more than 3 times in 15 minutes: "
        "the dependency recovers and fails again.",
        "breaker-flapping",
        {
            'seawall_circuit_breaker_transitions_total{seawall_breaker_to="open"}': (
                "0x9 1 2 3 4x20",
                "0x9 1 2 3x20",
            )
        },
        20,
    ),
    Alert(
        "SeawallHighRetryRatio",
        f"sum by ({BY}) (rate(seawall_retry_attempts_total[5m])) / "
        f"sum by ({BY}) (rate(http_client_request_duration_seconds_count[5m])) > 0.1",
        "10m",
        "warning",
        "Many retries to {{ $labels.seawall_dependency }}",
        "Over 10% of the attempts to {{ $labels.seawall_dependency }} are retries: it is failing "
        "transiently and retries are adding load.",
        "high-retry-ratio",
        {
            "seawall_retry_attempts_total": ("0x2 30+30x27", "0x2 1+1x27"),
            "http_client_request_duration_seconds_count": ("0+60x30", "0+60x30"),
        },
        20,
    ),
    Alert(
        "SeawallRetryBudgetExhausted",
        f"sum by ({BY}) (rate(seawall_retry_budget_rejected_total[5m])) > 0",
        "5m",
        "warning",
        "Retry budget exhausted for {{ $labels.seawall_dependency }}",
        "Retries to {{ $labels.seawall_dependency }} are being refused by the retry budget: "
        "failures are reaching callers without a retry.",
        "retry-budget-exhausted",
        {"seawall_retry_budget_rejected_total": ("0x2 10+10x27", "0x30")},
        15,
    ),
    Alert(
        "SeawallBulkheadSaturated",
        f"max by ({BY}) (seawall_bulkhead_active) / max by ({BY}) (seawall_bulkhead_limit) >= 0.9",
        "10m",
        "warning",
        "Bulkhead nearly full for {{ $labels.seawall_dependency }}",
        "{{ $labels.seawall_dependency }} has used 90% or more of its bulkhead for 10 minutes: "
        "requests are about to queue or be rejected.",
        "bulkhead-saturated",
        {
            "seawall_bulkhead_active": ("10 95x29", "10x30"),
            "seawall_bulkhead_limit": ("100x30", "100x30"),
        },
        15,
    ),
    Alert(
        "SeawallBulkheadRejecting",
        f"sum by ({BY}) (rate(seawall_bulkhead_rejections_total[5m])) > 0",
        "5m",
        "critical",
        "Bulkhead rejecting requests to {{ $labels.seawall_dependency }}",
        "Requests to {{ $labels.seawall_dependency }} are turned away with BulkheadFullError.",
        "bulkhead-rejecting",
        {
            'seawall_bulkhead_rejections_total{seawall_bulkhead_reason="queue_full"}': (
                "0x2 5+5x27",
                "0x30",
            )
        },
        15,
    ),
    Alert(
        "SeawallErrorBudgetBurnFast",
        f"{error_ratio('1h')} > {14.4 * SLO_ERROR_BUDGET:g} and {error_ratio('5m')} > {14.4 * SLO_ERROR_BUDGET:g}",
        "2m",
        "critical",
        "Error budget burning fast for {{ $labels.seawall_dependency }}",
        "Requests to {{ $labels.seawall_dependency }} fail at over 14.4x the 99.9% objective's "
        "budget over both 1h and 5m: at this rate 2% of a 30-day budget goes in an hour.",
        "error-budget-burn",
        {
            'seawall_request_duration_seconds_count{seawall_outcome="failure"}': (
                "_x3 6+6x116",
                "_x120",
            ),
            'seawall_request_duration_seconds_count{seawall_outcome="success"}': (
                "54+54x119",
                "60+60x119",
            ),
        },
        90,
    ),
    Alert(
        "SeawallErrorBudgetBurnSlow",
        f"{error_ratio('6h')} > {6 * SLO_ERROR_BUDGET:g} and {error_ratio('30m')} > {6 * SLO_ERROR_BUDGET:g}",
        "15m",
        "warning",
        "Error budget burning for {{ $labels.seawall_dependency }}",
        "Requests to {{ $labels.seawall_dependency }} fail at over 6x the 99.9% objective's budget "
        "over both 6h and 30m.",
        "error-budget-burn",
        {
            'seawall_request_duration_seconds_count{seawall_outcome="rejected"}': (
                "_x3 1+1x116",
                "_x120",
            ),
            'seawall_request_duration_seconds_count{seawall_outcome="success"}': (
                "59+59x119",
                "60+60x119",
            ),
        },
        90,
    ),
    Alert(
        "SeawallLatencyHigh",
        f"histogram_quantile(0.95, sum by ({BY}, le) (rate(seawall_request_duration_seconds_bucket[5m]))) > 1",
        "10m",
        "warning",
        "Slow requests to {{ $labels.seawall_dependency }}",
        "p95 of logical requests to {{ $labels.seawall_dependency }} is over 1 s, retries and "
        "waits included.",
        "latency-high",
        {
            'seawall_request_duration_seconds_bucket{le="0.5"}': ("1+1x29", "10+10x29"),
            'seawall_request_duration_seconds_bucket{le="2.5"}': ("10+10x29", "10+10x29"),
            'seawall_request_duration_seconds_bucket{le="+Inf"}': ("10+10x29", "10+10x29"),
        },
        20,
    ),
    Alert(
        "SeawallDeadLetterBacklog",
        f'max by ({BY}) (seawall_dead_letters_entries{{seawall_dead_letter_state="pending"}}) '
        f"> {DEAD_LETTER_BACKLOG}",
        "5m",
        "warning",
        f"Over {DEAD_LETTER_BACKLOG} dead letters of {{{{ $labels.seawall_dependency }}}} "
        "wait for a replay",
        "Requests to {{ $labels.seawall_dependency }} that failed for good are piling up in the "
        f"dead-letter store (more than {DEAD_LETTER_BACKLOG} pending for 5 minutes): replay "
        "them once it has healed, or resolve them.",
        "dead-letter-backlog",
        {
            'seawall_dead_letters_entries{seawall_dead_letter_state="pending"}': (
                "0x2 5 11+1x27",
                "10x30",
            )
        },
        20,
    ),
]


def prometheus_rules() -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": "seawall",
                "rules": [
                    {
                        "alert": a.name,
                        "expr": a.expr,
                        "for": a.duration,
                        "labels": {"severity": a.severity},
                        "annotations": {
                            "summary": a.summary,
                            "description": a.description,
                            "runbook_url": f"{RUNBOOK}#{a.anchor}",
                        },
                    }
                    for a in ALERTS
                ],
            }
        ]
    }


def _with_labels(selector: str, dependency: str) -> str:
    extra = f'job="svc", seawall_dependency="{dependency}"'
    if "{" in selector:
        return selector.replace("{", "{" + extra + ", ", 1)
    return f"{selector}{{{extra}}}"


def _expand(template: str, dependency: str) -> str:
    return template.replace("{{ $labels.seawall_dependency }}", dependency).replace(
        "{{ $labels.job }}", "svc"
    )


def promtool_tests() -> dict[str, Any]:
    """For every alert: fires for the failing dependency only, and not before its `for`."""
    tests = []
    for a in ALERTS:
        series = [
            {"series": _with_labels(selector, dependency), "values": values}
            for selector, pair in a.series.items()
            for dependency, values in zip(("bad", "good"), pair)
        ]
        fired = {
            "exp_labels": {"severity": a.severity, "job": "svc", "seawall_dependency": "bad"},
            "exp_annotations": {
                "summary": _expand(a.summary, "bad"),
                "description": _expand(a.description, "bad"),
                "runbook_url": f"{RUNBOOK}#{a.anchor}",
            },
        }
        tests.append(
            {
                "name": a.name,
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": f"{a.at_minute}m", "alertname": a.name, "exp_alerts": [fired]},
                    {"eval_time": "0m", "alertname": a.name, "exp_alerts": []},
                ],
            }
        )
    return {"rule_files": ["seawall.rules.yml"], "evaluation_interval": "1m", "tests": tests}


def grafana_alerting() -> dict[str, Any]:
    rules = [
        {
            "uid": f"seawall-{a.anchor}-{i}",
            "title": a.name,
            "condition": "B",
            "for": a.duration,
            "noDataState": "OK",
            "execErrState": "Error",
            "labels": {"severity": a.severity},
            "annotations": {
                "summary": a.summary,
                "description": a.description,
                "runbook_url": f"{RUNBOOK}#{a.anchor}",
            },
            "data": [
                {
                    "refId": "A",
                    "datasourceUid": "prometheus",
                    "relativeTimeRange": {"from": 21600, "to": 0},
                    "model": {"refId": "A", "expr": a.expr, "instant": True, "range": False},
                },
                {
                    "refId": "B",
                    "datasourceUid": "__expr__",
                    "model": {
                        "refId": "B",
                        "type": "threshold",
                        "expression": "A",
                        "conditions": [{"evaluator": {"type": "gt", "params": [0]}}],
                    },
                },
            ],
        }
        for i, a in enumerate(ALERTS)
    ]
    return {
        "apiVersion": 1,
        "groups": [
            {"orgId": 1, "name": "seawall", "folder": "seawall", "interval": "1m", "rules": rules}
        ],
        "contactPoints": [
            {
                "orgId": 1,
                "name": "seawall-webhook",
                "receivers": [
                    {
                        "uid": "seawall-webhook",
                        "type": "webhook",
                        "settings": {"url": "${SEAWALL_ALERT_WEBHOOK_URL}", "httpMethod": "POST"},
                    }
                ],
            },
            # ServiceNow example: Grafana's webhook posts its JSON to the Table API, which makes
            # an incident; a scripted REST endpoint can map the fields more finely.
            {
                "orgId": 1,
                "name": "servicenow-incident",
                "receivers": [
                    {
                        "uid": "servicenow-incident",
                        "type": "webhook",
                        "settings": {
                            "url": "https://${SERVICENOW_INSTANCE}.service-now.com/api/now/table/incident",
                            "httpMethod": "POST",
                            "username": "${SERVICENOW_USER}",
                            "password": "${SERVICENOW_PASSWORD}",
                            "title": "{{ .CommonLabels.alertname }}: {{ .CommonLabels.seawall_dependency }}",
                            "message": "{{ .CommonAnnotations.description }}",
                        },
                    }
                ],
            },
        ],
        "policies": [
            {
                "orgId": 1,
                "receiver": "seawall-webhook",
                "group_by": ["alertname", "seawall_dependency"],
                "routes": [
                    {
                        "receiver": "servicenow-incident",
                        "object_matchers": [["severity", "=", "critical"]],
                    }
                ],
            }
        ],
    }


def outputs() -> dict[Path, str]:
    import yaml

    overview = dashboard(
        "seawall-overview",
        "Seawall / Overview",
        "Every dependency: requests, errors, latency, retries, breakers, bulkheads.",
        single_dependency=False,
    )
    dependency = dashboard(
        "seawall-dependency",
        "Seawall / Dependency",
        "One dependency in detail, with exemplars linking to its traces.",
        single_dependency=True,
    )

    def dump(data: Any) -> str:
        return yaml.safe_dump(data, sort_keys=False, width=1000, allow_unicode=True)

    return {
        HERE / "dashboards" / "seawall-overview.json": json.dumps(overview, indent=2) + "\n",
        HERE / "dashboards" / "seawall-dependency.json": json.dumps(dependency, indent=2) + "\n",
        HERE / "alerts" / "seawall.rules.yml": "# generated by grafana/generate.py\n"
        + dump(prometheus_rules()),
        HERE / "alerts" / "seawall.test.yml": "# generated by grafana/generate.py\n"
        + dump(promtool_tests()),
        HERE / "provisioning" / "alerting" / "seawall.yml": "# generated by grafana/generate.py\n"
        + dump(grafana_alerting()),
    }


def main() -> int:
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
