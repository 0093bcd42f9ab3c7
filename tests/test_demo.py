"""`make demo` runs: every phase, and the dead letter kept in the outage is replayed after it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_keeps_an_order_in_the_outage_and_replays_it_after_recovery():
    done = subprocess.run(
        [sys.executable, "-m", "integrations.demo", "--speed", "0.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for phase in ("healthy", "flaky", "outage", "recovery", "burst"):
        assert f"[{phase}]" in out
    outage = out.split("[outage]", 1)[1].split("[recovery]", 1)[0]
    assert "dead letter kept: POST /orders answered 500 after 1 attempt" in outage
    assert "pending, Idempotency-Key " in outage
    recovery = out.split("[recovery]", 1)[1].split("[burst]", 1)[0]
    assert (
        "dead letters replayed: 1 of 1 now resolved; the upstream got the order again with the "
        "same Idempotency-Key" in recovery
    )
