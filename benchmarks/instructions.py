"""`python -m benchmarks.instructions`: instructions per request, counted by valgrind.

CPU time on a shared 2-core machine moves +-10% between runs; the number of instructions the
client process executes per request does not (to within about 1%), so small changes can be
weighed here. Each case runs twice under `valgrind --tool=cachegrind` (Debian's valgrind
package), with the same warm-up and a different number of measured requests; the difference,
divided by the difference in requests, is what one request costs, start-up and warm-up
excluded. Instructions are not time: seawall's code also misses the CPU caches more than the
client's own under load (it is touched once per request, between all the others), so the CPU
ratios of `python -m benchmarks` are higher than these.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time

from .__main__ import start_server
from .cases import CASES_HELP, all_cases, chosen_cases

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(case: str, url: str, warmup: int, n: int) -> int:
    """Instructions the client process executes for `case` with `n` measured requests."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--one",
            case,
            url,
            str(warmup),
            str(n),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        timeout=1800,
    )
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(
            f"valgrind run of {case!r} failed ({done.returncode}):\n{done.stderr[-2000:]}"
        )
    return int(found.group(1).replace(",", ""))


def per_request(case: str, url: str, warmup: int, n: int) -> float:
    small, large = max(1, n // 10), n
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # the two runs side by side
        runs = [pool.submit(count, case, url, warmup, k) for k in (small, large)]
        low, high = (run.result() for run in runs)
    return (high - low) / (large - small)


def run_one(name: str, url: str, warmup: int, n: int) -> None:
    case = next((c for c in all_cases() if c.name == name), None)
    if case is None:
        raise SystemExit(f"no benchmark case named {name!r}")
    case.measure(url, warmup, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--requests",
        type=int,
        default=2_000,
        help="measured requests (the larger of the two runs; the smaller makes a tenth)",
    )
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--cases", default="", help=CASES_HELP)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--one", nargs=4, metavar=("CASE", "URL", "WARMUP", "N"), help=argparse.SUPPRESS
    )  # the child run under valgrind
    args = parser.parse_args()
    if args.one:
        name, url, warmup, n = args.one
        run_one(name, url, int(warmup), int(n))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    if args.requests < 20:
        raise SystemExit(f"--requests must be at least 20, got {args.requests}")

    cases = chosen_cases(args.cases)
    print(
        f"instructions per request under valgrind: {args.requests} requests after "
        f"{args.warmup} warm-up, less a run of {max(1, args.requests // 10)}\n",
        flush=True,
    )
    server, url = start_server(None)
    started = time.perf_counter()
    rows: dict[str, dict[str, float]] = {}
    try:
        print(f"{'case':58s} {'instr/req':>11s} {'vs base':>8s} {'+instr':>9s}", flush=True)
        for case in cases:
            instructions = per_request(case.name, url, args.warmup, args.requests)
            base = rows[case.baseline]["instructions"] if case.baseline in rows else instructions
            rows[case.name] = {"instructions": instructions, "ratio": instructions / base}
            print(
                f"{case.name:58s} {instructions:11,.0f} {instructions / base:7.2f}x "
                f"{instructions - base:+9,.0f}",
                flush=True,
            )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
