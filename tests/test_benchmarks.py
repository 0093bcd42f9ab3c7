"""The benchmark harness runs end to end (tiny counts: this checks it works, not its figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_compares_each_case_with_its_bare_client(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--requests", "30", "--warmup", "5", "--reps", "2",
         "--cases", "requests.Session + seawall", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())
    # the chosen cases, and the baselines they are compared with, each measured
    assert set(rows) == {"requests.Session seq", "requests.Session + seawall seq",
                         "requests.Session + OTel seq", "requests.Session + seawall + OTel seq"}
    assert all(row["cpu_us"] > 0 and row["ratio_paired"] > 0 for row in rows.values())
    assert rows["requests.Session + seawall + OTel seq"]["spans_per_request"] == 2.0
    assert rows["requests.Session + OTel seq"]["spans_per_request"] == 1.0
    assert "requests.Session + seawall seq" in done.stdout and "target <= 1.10x" in done.stdout
