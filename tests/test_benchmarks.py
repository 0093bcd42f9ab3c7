"""The benchmark harnesses run end to end (tiny counts: this checks they work, not their figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import require

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_compares_each_case_with_its_bare_client(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--requests",
            "30",
            "--warmup",
            "5",
            "--reps",
            "2",
            "--cases",
            "requests.Session + seawall",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())
    # the chosen cases, and the baselines they are compared with, each measured
    assert set(rows) == {
        "requests.Session seq",
        "requests.Session + seawall seq",
        "requests.Session + seawall default seq",
        "requests.Session + OTel seq",
        "requests.Session + seawall + OTel seq",
        "requests.Session + seawall + OTel spans=attempts seq",
    }
    assert all(row["cpu_us"] > 0 and row["ratio_paired"] > 0 for row in rows.values())
    assert rows["requests.Session + seawall + OTel seq"]["spans_per_request"] == 2.0
    assert rows["requests.Session + OTel seq"]["spans_per_request"] == 1.0
    # the official instrumentation's shape: one span for a request of one attempt
    assert rows["requests.Session + seawall + OTel spans=attempts seq"]["spans_per_request"] == 1.0
    # both configurations against the same bare client, in the same run
    for name in ("requests.Session + seawall seq", "requests.Session + seawall default seq"):
        assert name in done.stdout
        assert rows[name]["ratio"] == pytest.approx(
            rows[name]["cpu_us"] / rows["requests.Session seq"]["cpu_us"]
        )
    assert "target <= 1.10x" in done.stdout


# valgrind runs the client some 50 times slower: minutes on a busy 2-core machine, more than
# the suite's 120 s per test, and within the subprocess's own 600 s bound
@pytest.mark.timeout(660)
def test_instruction_counts_compare_each_case_with_its_bare_client(tmp_path):
    require("valgrind", "valgrind")
    out = tmp_path / "instructions.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--requests",
            "40",
            "--warmup",
            "5",
            "--cases",
            "httpx.Client + seawall seq",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())
    assert set(rows) == {"httpx.Client seq", "httpx.Client + seawall seq"}
    bare, resilient = rows["httpx.Client seq"], rows["httpx.Client + seawall seq"]
    # a request costs some thousands of instructions, and seawall's work comes on top
    assert bare["ratio"] == 1.0 and bare["instructions"] > 10_000
    assert resilient["instructions"] > bare["instructions"]
    assert "httpx.Client + seawall seq" in done.stdout


def test_the_memory_benchmark_samples_each_client_at_its_checkpoints(tmp_path):
    out = tmp_path / "memory.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.memory",
            "--requests",
            "40",
            "--warmup",
            "10",
            "--clients",
            "requests.Session",
            "--bare",
            "--sdk",
            "--trim",
            "--tracemalloc",
            "3",
            "--concurrency",
            "4",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())
    samples = [row for row in rows if "grown" not in row]
    # the bare client, then the same client with seawall: each after its warm-up, and at
    # 10%, 50% and 100% of the requests
    assert [(row["client"], row["done"]) for row in samples] == [
        (client, done)
        for client in ("requests.Session", "requests.Session + seawall")
        for done in (0, 4, 20, 40)
    ]
    assert all(
        row["rss_kb"] > 1000 and row["blocks"] > 1000 and row["traced_kb"] >= 0 for row in samples
    )
    grown = [row for row in rows if "grown" in row]
    assert [row["client"] for row in grown] == ["requests.Session", "requests.Session + seawall"]
    assert all(0 < len(row["grown"]) <= 3 for row in grown)
    assert "requests.Session + seawall" in done.stdout and "100%" in done.stdout
