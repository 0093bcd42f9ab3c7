"""The registry of live policies (what `seawall.status()` lists)."""

from __future__ import annotations

import gc
import threading

import seawall
from seawall import registry


def test_policies_dropped_as_cyclic_garbage_never_deadlock_a_new_one():
    """The collector may free a policy while another registers (inside the registry's lock);
    a weakref callback that took that lock froze the thread for good."""

    def churn() -> None:
        for _ in range(20_000):
            holder: list[object] = [seawall.Policy("churn", telemetry=False)]
            holder.append(holder)  # a cycle: only the collector frees it

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "building policies deadlocked in the registry"
    gc.collect()
    assert all(policy.name != "churn" for policy in registry.policies())


def test_live_policies_are_listed_oldest_first_and_forgotten_when_dropped():
    first = seawall.Policy("registry-first", telemetry=False)
    second = seawall.Policy("registry-second", telemetry=False)
    names = [policy.name for policy in registry.policies()]
    assert names.index("registry-first") < names.index("registry-second")
    assert registry.number(first) < registry.number(second)
    del first
    gc.collect()
    assert "registry-first" not in [policy.name for policy in registry.policies()]
    assert second in registry.policies()
