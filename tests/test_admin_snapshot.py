"""seawall.status(): the registry and one snapshot, against breakers a real upstream opened."""

from __future__ import annotations

import gc
import json
import logging
import threading

import httpx
import pytest

import seawall
from integrations.upstream import respond
from seawall import registry
from seawall.admin import controls
from seawall.httpx import ResilientTransport


def failing(name: str, **options: object) -> seawall.Policy:
    return seawall.Policy(
        name,
        retry=None,
        breaker=seawall.CircuitBreaker(consecutive_failures=2, open_for=30),
        **options,
    )  # type: ignore[arg-type]


def hit(policy: seawall.Policy, url: str, times: int) -> list[object]:
    results: list[object] = []
    with httpx.Client(transport=ResilientTransport(policy)) as client:
        for _ in range(times):
            try:
                results.append(client.get(url).status_code)
            except seawall.CircuitOpenError as error:
                results.append(type(error).__name__)
            # the snapshot is taken while the client (and its pool) is alive
        results.append(seawall.status([policy]))
    return results


def test_a_breaker_the_upstream_opened_shows_open_with_its_counts(upstream):
    upstream.default = respond(503)
    policy = failing("snap-open")
    *answers, snap = hit(policy, upstream.url + "/x", 3)
    assert answers == [503, 503, "CircuitOpenError"]
    json.dumps(snap, allow_nan=False)  # JSON-ready, no inf or nan
    assert snap["scope"] == "process" and isinstance(snap["pid"], int) and snap["host"]
    [dep] = snap["dependencies"]
    [breaker] = dep["breakers"]
    assert dep["name"] == breaker["key"] == "snap-open"
    assert breaker["state"] == "open" and not breaker["probe_due"]
    assert breaker["window"] == {
        "calls": 2,
        "failures": 2,
        "slow": 0,
        "rejected": 1,
        "failure_rate": 1.0,
        "slow_rate": 0.0,
    }
    assert 29 < breaker["retry_in"] <= 30 and breaker["open_until"].endswith("Z")
    assert breaker["thresholds"]["consecutive_failures"] == 2
    assert dep["bulkhead"]["limit"] == 100 and dep["bulkhead"]["active"] == 0
    assert dep["pool"] is not None and set(dep["pool"]) == {"active", "idle"}
    assert dep["config"]["breaker"]["open_for"] == 30 and dep["config"]["retry"] is None
    assert snap["conflicts"] == []


def test_an_open_breaker_past_open_for_shows_due_for_a_probe_not_open():  # pybreaker #15
    now = [1000.0]
    policy = seawall.Policy(
        "snap-probe", clock=lambda: now[0], breaker=seawall.CircuitBreaker(open_for=5)
    )
    policy.dependency("snap-probe").breaker().force_open(now[0])  # type: ignore[union-attr]
    policy.dependency("snap-probe").breaker().reset(now[0])  # type: ignore[union-attr]
    breaker = policy.dependency("snap-probe").breaker()
    assert breaker is not None
    for _ in range(20):
        breaker.record(breaker.acquire(now[0]), True, False, now[0])  # type: ignore[arg-type]
    [view] = seawall.status([policy])["dependencies"][0]["breakers"]
    assert view["state"] == "open" and view["retry_in"] == 5
    now[0] += 5
    [view] = seawall.status([policy])["dependencies"][0]["breakers"]
    assert view["state"] == "half_open" and view["probe_due"] and view["retry_in"] == 0
    assert view["open_until"] is None


def test_every_live_policy_is_registered_weakly_and_duplicates_are_reported():
    first, second = seawall.Policy("snap-dup"), seawall.Policy("snap-dup")
    live = registry.policies()
    assert first in live and second in live and live.index(first) < live.index(second)
    snap = seawall.status([first, second])
    assert [c["dependency"] for c in snap["conflicts"]] == ["snap-dup"]
    assert snap["conflicts"][0]["policies"] == [registry.number(first), registry.number(second)]
    with pytest.raises(controls.ControlError, match="2 policies") as caught:
        seawall.admin.isolate("snap-dup", policies=[first, second])
    assert caught.value.status == 409
    number = registry.number(second)
    del second, live, caught  # (the traceback holds the policies it was given)
    gc.collect()
    assert number not in [registry.number(p) for p in registry.policies()]


def test_the_service_name_comes_from_the_argument_or_otel_service_name(monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    assert seawall.status([])["service"] == "checkout"
    assert seawall.status([], service="given")["service"] == "given"


def test_bulkhead_rejections_and_the_retry_budget_are_shown_and_reset(upstream):
    upstream.default = respond(200, delay=0.3)
    policy = seawall.Policy(
        "snap-bulk",
        retry=seawall.Retry(budget=seawall.RetryBudget(ratio=0.5, min_per_second=1, ttl=10)),
        bulkhead=seawall.Bulkhead(max_concurrent=1, max_queued=0),
    )
    with httpx.Client(transport=ResilientTransport(policy)) as client:
        slow = threading.Thread(target=client.get, args=(upstream.url + "/slow",))
        slow.start()
        while upstream.in_flight < 1:
            threading.Event().wait(0.005)
        with pytest.raises(seawall.BulkheadFullError):
            client.get(upstream.url + "/rejected")
        busy = seawall.status([policy])["dependencies"][0]["bulkhead"]
        slow.join()
    assert (busy["active"], busy["rejected"], busy["limit"], busy["max_queued"]) == (1, 1, 1, 0)
    assert busy["last_rejected_ago"] >= 0
    budget = seawall.status([policy])["dependencies"][0]["retry_budget"]
    assert budget == {"left": 10.5, "ratio": 0.5, "floor_per_second": 1, "ttl": 10}
    after = seawall.admin.reset_bulkhead("snap-bulk", policies=[policy], reason="r", by="t")
    assert after["bulkhead"]["rejected"] == 0 and after["bulkhead"]["last_rejected"] is None
    after = seawall.admin.reset_retry_budget("snap-bulk", policies=[policy])
    assert after["retry_budget"]["left"] == 10.0  # the floor: the counted request is forgotten


def test_manual_changes_are_events_and_warnings_naming_who_and_why(caplog):
    policy = seawall.Policy("snap-manual")
    seen: list[seawall.events.ManualChange] = []
    policy.subscribe(seen.append, seawall.events.ManualChange)
    with caplog.at_level(logging.WARNING, logger="seawall"):
        after = seawall.admin.isolate("snap-manual", reason="drill", by="alice", policies=[policy])
        seawall.admin.disable("snap-manual", reason="noisy", by="bob", policies=[policy])
        seawall.admin.reset("snap-manual", reason="over", by="carol", policies=[policy])
    assert after["breakers"][0]["state"] == "isolated"
    assert after["breakers"][0]["manual"]["by"] == "alice"
    assert [(e.action, e.by, e.reason, e.part) for e in seen] == [
        ("isolate", "alice", "drill", "circuit_breaker"),
        ("disable", "bob", "noisy", "circuit_breaker"),
        ("reset", "carol", "over", "circuit_breaker"),
    ]
    messages = [r.getMessage() for r in caplog.records if "manual" in r.getMessage()]
    assert messages == [
        "manual isolate of circuit_breaker snap-manual of snap-manual by alice: drill",
        "manual disable of circuit_breaker snap-manual of snap-manual by bob: noisy",
        "manual reset of circuit_breaker snap-manual of snap-manual by carol: over",
    ]
    with pytest.raises(controls.ControlError) as caught:
        seawall.admin.reset("nobody-has-this", policies=[policy])
    assert caught.value.status == 404


def test_keys_built_from_urls_are_shown_redacted(upstream):
    upstream.default = respond(200)
    policy = seawall.Policy(
        "snap-keys",
        breaker=seawall.CircuitBreaker(
            key=lambda t: f"http://user:hunter2@{t.host}{t.path}?sig=s3cr3t"
        ),
    )
    *_, snap = hit(policy, upstream.url + "/k", 1)
    text = json.dumps(snap)
    assert "hunter2" not in text and "s3cr3t" not in text
    assert snap["dependencies"][0]["breakers"][0]["key"].startswith("http://REDACTED:REDACTED@")
