"""The health rollup: healthy / degraded / critical as pass / warn / fail and 200 / 200 / 503,
on policies with a fake clock (the states are set through the sans-I/O breakers)."""

from __future__ import annotations

import pytest

import seawall
from seawall.admin.rollup import HealthRules, http_status


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fleet(*names: str) -> tuple[list[seawall.Policy], Clock]:
    clock = Clock()
    return [
        seawall.Policy(name, clock=clock, breaker=seawall.CircuitBreaker(open_for=5))
        for name in names
    ], clock


def level(policies: list[seawall.Policy], rules: HealthRules | None = None) -> tuple[str, str, int]:
    document = seawall.admin.health(policies, rules)
    return document["seawall"]["level"], document["status"], http_status(document)


def open_breaker(policy: seawall.Policy) -> None:
    breaker = policy.dependency(policy.name).breaker()  # type: ignore[arg-type]
    assert breaker is not None
    for _ in range(20):
        breaker.record(breaker.acquire(policy.now()), True, False, policy.now())  # type: ignore[arg-type]


def test_every_breaker_closed_is_healthy():
    policies, _ = fleet("h-a", "h-b", "h-c")
    assert level(policies) == ("healthy", "pass", 200)
    document = seawall.admin.health(policies)
    assert set(document["checks"]) == {
        f"h-{x}:{part}" for x in "abc" for part in ("circuit_breaker", "bulkhead")
    }


def test_one_open_breaker_degrades_but_does_not_fail():  # resilience4j #607
    policies, clock = fleet("h-a", "h-b", "h-c")
    open_breaker(policies[0])
    assert level(policies) == ("degraded", "warn", 200)
    check = seawall.admin.health(policies)["checks"]["h-a:circuit_breaker"][0]
    assert (check["status"], check["observedValue"]) == ("warn", "open")
    clock.now += 5  # due for a probe: half-open still degrades
    assert level(policies) == ("degraded", "warn", 200)


def test_more_than_half_open_is_critical_and_the_share_is_configurable():
    policies, _ = fleet("h-a", "h-b", "h-c")
    open_breaker(policies[0])
    policies[1].dependency("h-b").breaker().isolate(policies[1].now())  # type: ignore[union-attr]
    assert level(policies) == ("critical", "fail", 503)
    assert level(policies, HealthRules(critical_share=0.7)) == ("degraded", "warn", 200)


def test_a_dependency_marked_critical_fails_the_whole_service_when_open():
    policies, _ = fleet("h-a", "h-b", "h-c")
    open_breaker(policies[2])
    rules = HealthRules(critical={"h-c"})
    assert level(policies, rules) == ("critical", "fail", 503)
    document = seawall.admin.health(policies, rules)
    assert document["checks"]["h-c:circuit_breaker"][0]["status"] == "fail"
    assert document["notes"] == ["h-c is marked critical and its circuit breaker is open"]


def test_a_disabled_breaker_degrades():
    policies, _ = fleet("h-a")
    policies[0].dependency("h-a").breaker().disable(0)  # type: ignore[union-attr]
    assert level(policies) == ("degraded", "warn", 200)


def test_a_bulkhead_that_rejected_recently_degrades_until_rejecting_within_passes():
    policies, clock = fleet("h-a")
    tally = seawall.registry.tally(policies[0])
    tally.notice(seawall.events.BulkheadRejected("h-a", "queue_full", 0.0, clock.now))
    assert level(policies) == ("degraded", "warn", 200)
    clock.now += 10.5
    assert level(policies) == ("healthy", "pass", 200)
    assert level(policies, HealthRules(rejecting_within=11)) == ("degraded", "warn", 200)


@pytest.mark.parametrize(
    "rules, message",
    [
        (dict(critical="payments"), "critical must be a collection of dependency names"),
        (dict(critical_share=1), "critical_share must be a number from 0 to below 1"),
        (dict(rejecting_within=0), "rejecting_within must be a number of seconds > 0"),
    ],
)
def test_bad_rules_are_named(rules, message):
    with pytest.raises((TypeError, ValueError), match=message):
        HealthRules(**rules)
