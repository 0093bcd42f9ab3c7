"""`python -m benchmarks`: CPU per request of seawall vs the bare clients, same run.

The server runs in its own process pinned to one core, the client on the other; cases are
interleaved rep by rep so machine drift hits them all alike; the figure is the client process's
CPU time per request (what a busy service pays), the median over the reps.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time

from .cases import ATTEMPT_SPANS, CASES_HELP, SPANS_PER_REQUEST, Case, chosen_cases

TARGET = 1.10  # seawall vs the bare client
# seawall's telemetry vs the official instrumentation alone: in the same shape (a span per
# attempt), and by default (a logical span for every request besides)
OTEL_TARGET = 1.00
OTEL_DEFAULT_TARGET = 1.10


def target(name: str) -> float:
    if "OTel" not in name:
        return TARGET
    return OTEL_TARGET if ATTEMPT_SPANS in name else OTEL_DEFAULT_TARGET


def versions() -> str:
    parts = [f"python {sys.version.split()[0]}"]
    for name in ("httpx", "httpcore", "requests", "aiohttp", "seawall"):
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        import sniffio  # noqa: F401

        parts.append("sniffio yes")
    except ImportError:
        parts.append("sniffio NO (async httpx pays an import search per call)")
    return ", ".join(parts)


def start_server(cpu: int | None) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "benchmarks.server"] + ([str(cpu)] if cpu is not None else [])
    server = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    port = server.stdout.readline().strip()
    if not port.isdigit():
        server.kill()
        raise SystemExit(f"benchmark server did not start (said {port!r})")
    return server, f"http://127.0.0.1:{port}/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests per rep")
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--cases", default="", help=CASES_HELP)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--quick", action="store_true", help="2,000 requests, 200 warm-up, 3 reps")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.warmup, args.reps = 2_000, 200, 3

    cases = chosen_cases(args.cases)  # each baseline right before its variants
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu = client_cpu = None
    if len(cores) >= 2:
        server_cpu, client_cpu = cores[0], cores[1]
        os.sched_setaffinity(0, {client_cpu})
    print(versions())
    print(
        f"server on cpu {server_cpu}, client on cpu {client_cpu}; {args.requests} requests "
        f"after {args.warmup} warm-up, {args.reps} reps, interleaved\n",
        flush=True,
    )

    server, url = start_server(server_cpu)
    started = time.perf_counter()
    samples: dict[str, list[tuple[float, float]]] = {c.name: [] for c in cases}
    try:
        for rep in range(args.reps):
            for case in cases:
                samples[case.name].append(case.measure(url, args.warmup, args.requests))
            print(
                f"rep {rep + 1}/{args.reps} done ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    report(cases, samples, args.requests, args.json)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def report(
    cases: list[Case], samples: dict[str, list[tuple[float, float]]], n: int, json_path: str | None
) -> None:
    rows = {}
    for case in cases:
        cpu_us = [cpu / n * 1e6 for cpu, _ in samples[case.name]]
        rps = [n / wall for _, wall in samples[case.name]]
        rows[case.name] = {
            "cpu_us": statistics.median(cpu_us),
            "cpu_min": min(cpu_us),
            "cpu_max": max(cpu_us),
            "rps": statistics.median(rps),
        }
    print(
        f"\n{'case':58s} {'us CPU/req (min-max)':>24s} {'req/s':>9s} {'vs base':>8s} "
        f"{'+us':>7s} {'min/min':>8s} {'paired':>7s}"
    )
    for case in cases:
        row = rows[case.name]
        base = rows[case.baseline] if case.baseline in rows else row
        row["ratio"] = row["cpu_us"] / base["cpu_us"]
        # noise only ever adds CPU: the ratio of the minimums is the steadier estimate
        row["ratio_min"] = row["cpu_min"] / base["cpu_min"]
        # each rep runs a case right after its baseline: the median of the per-rep ratios
        # cancels the drift of the machine between reps
        pairs = samples[case.baseline] if case.baseline in rows else samples[case.name]
        row["ratio_paired"] = statistics.median(
            cpu / base_cpu for (cpu, _), (base_cpu, _) in zip(samples[case.name], pairs)
        )
        row["extra_us"] = row["cpu_us"] - base["cpu_us"]
        spread = f"{row['cpu_us']:.1f} ({row['cpu_min']:.1f}-{row['cpu_max']:.1f})"
        print(
            f"{case.name:58s} {spread:>24s} {row['rps']:9.0f} {row['ratio']:7.2f}x "
            f"{row['extra_us']:+7.1f} {row['ratio_min']:7.2f}x {row['ratio_paired']:6.2f}x"
        )
    print()
    for case in cases:
        if case.baseline is not None and case.baseline in rows:
            ratio = rows[case.name]["ratio"]
            goal = target(case.name)
            verdict = "PASS" if ratio <= goal else "FAIL"
            print(
                f"{case.name:58s} ratio {ratio:.2f}x (min/min {rows[case.name]['ratio_min']:.2f}x, "
                f"paired {rows[case.name]['ratio_paired']:.2f}x; target <= {goal:.2f}x): {verdict}"
            )
    if SPANS_PER_REQUEST:
        print(
            "\nspans exported per request: "
            + ", ".join(f"{name} {count:.2f}" for name, count in SPANS_PER_REQUEST.items())
        )
        for name, count in SPANS_PER_REQUEST.items():
            rows[name]["spans_per_request"] = count
    if json_path:
        with open(json_path, "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
