"""Manual control by dependency name: what the admin routes call, and `seawall.admin`'s
functions of the same names for code.

Each action names who asked (`by`: the admin token's name) and why (`reason`); it is applied
to the sans-I/O state, then emitted as a `seawall.events.ManualChange` (the `seawall` logger
writes it at WARNING, telemetry counts it in `seawall.manual.changes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import events as ev
from .. import registry
from . import snapshot

if TYPE_CHECKING:
    from ..pipeline import Policy
    from ..state import DependencyState

BREAKER_ACTIONS = ev.MANUAL_ACTIONS["circuit_breaker"]
#: Where a breaker control applies: this process, or every process of its `seawall.Fleet`.
SCOPES = ("process", "fleet")


class ControlError(LookupError):
    """A control that cannot be applied; `status` is the HTTP status the admin API answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def find(policies: Iterable[Policy] | None, name: str) -> tuple[Policy, DependencyState]:
    """The one live dependency called `name`; 404 when none, 409 when two policies claim it."""
    chosen = registry.policies() if policies is None else list(policies)
    found = [
        (policy, state)
        for policy in chosen
        for state in snapshot._states(policy)
        if state.name == name
    ]
    if not found:
        raise ControlError(404, f"no dependency named {name!r}")
    if len(found) > 1:
        numbers = [registry.number(policy) for policy, _ in found]
        raise ControlError(
            409,
            f"{len(found)} policies (numbers {numbers}) claim the dependency "
            f"{name!r}: rename one so that a control cannot hit the wrong one",
        )
    return found[0]


def breaker(
    policies: Iterable[Policy] | None,
    dependency: str,
    action: str,
    *,
    key: str | None = None,
    reason: str = "",
    by: str = "",
    scope: str = "process",
) -> dict[str, Any]:
    """`reset`, `isolate` or `disable` the breaker `key` of `dependency` (every breaker of it
    when `key` is None); answers the dependency's new snapshot. `scope="fleet"`: in every
    process of the policy's `seawall.Fleet` (docs/fleet.md), through Redis."""
    if action not in BREAKER_ACTIONS:
        raise ControlError(
            404, f"unknown breaker action {action!r}: expected one of {', '.join(BREAKER_ACTIONS)}"
        )
    if scope not in SCOPES:
        raise ControlError(400, f"unknown scope {scope!r}: expected one of {', '.join(SCOPES)}")
    policy, state = find(policies, dependency)
    if key is None:
        targets = state.breakers()
    else:
        targets = [b for b in state.breakers() if b.key == key]
    if not targets:
        what = "no circuit breaker" if key is None else f"no circuit breaker with key {key!r}"
        raise ControlError(404, f"dependency {dependency!r} has {what}")
    if scope == "fleet":
        _fleet_wide(policy, state.name, targets, action, reason, by)
        return snapshot.dependency(policy, state)
    now = policy.now()
    for target in targets:
        getattr(target, action)(now, reason=reason, by=by)
        _announce(
            policy,
            ev.ManualChange(state.name, "circuit_breaker", target.key, action, reason, by, now),
        )
    return snapshot.dependency(policy, state)


def _fleet_wide(
    policy: Policy, dependency: str, targets: list[Any], action: str, reason: str, by: str
) -> None:
    from ..fleet.breaker import FleetBreaker
    from ..fleet.store import ControlError as Unreachable
    from ..fleet.store import Fleet

    fleet = policy._store
    if not isinstance(fleet, Fleet) or not all(isinstance(t, FleetBreaker) for t in targets):
        raise ControlError(
            409,
            f"dependency {dependency!r} is not in fleet mode: scope=fleet needs a seawall.Fleet",
        )
    for done, target in enumerate(targets):
        try:
            applied_here = fleet.control(target, action, reason, by)
        except Unreachable as error:
            changed = "nothing was changed" if not done else f"{done} breaker(s) were changed"
            raise ControlError(503, f"{error}: {changed}; scope=process still works") from None
        if not applied_here:
            continue  # this process's listener heard it first and announced it
        now = policy.now()
        _announce(
            policy,
            ev.ManualChange(
                dependency, "circuit_breaker", target.key, action, reason, by, now, "fleet"
            ),
        )


def announce_fleet(fleet: Any, breaker: Any, action: str, reason: str, by: str, now: float) -> None:
    """A fleet-wide control another process asked for, now applied to `breaker` here: the
    `ManualChange` of each live policy of `fleet` that holds that breaker."""
    for policy in registry.policies():
        if policy._store is not fleet:
            continue
        for state in policy.dependencies():
            if any(b is breaker for b in state.breakers()):
                _announce(
                    policy,
                    ev.ManualChange(
                        state.name, "circuit_breaker", breaker.key, action, reason, by, now, "fleet"
                    ),
                )


def bulkhead(
    policies: Iterable[Policy] | None, dependency: str, *, reason: str = "", by: str = ""
) -> dict[str, Any]:
    """Reset the bulkhead's books: its rejection count (slots in use are real requests and stay
    theirs)."""
    policy, state = find(policies, dependency)
    if state.bulkhead is None:
        raise ControlError(404, f"dependency {dependency!r} has no bulkhead")
    registry.tally(policy).forget_bulkhead(state.name)
    _announce(
        policy, ev.ManualChange(state.name, "bulkhead", "", "reset", reason, by, policy.now())
    )
    return snapshot.dependency(policy, state)


def retry_budget(
    policies: Iterable[Policy] | None, dependency: str, *, reason: str = "", by: str = ""
) -> dict[str, Any]:
    """Reset the retry budget: forget what it counted, back to its floor."""
    policy, state = find(policies, dependency)
    if state.budget is None:
        raise ControlError(404, f"dependency {dependency!r} has no retry budget")
    state.budget.reset()
    _announce(
        policy, ev.ManualChange(state.name, "retry_budget", "", "reset", reason, by, policy.now())
    )
    return snapshot.dependency(policy, state)


def _announce(policy: Policy, event: ev.ManualChange) -> None:
    if ev.ManualChange in policy._on:
        policy._emit(event)
