"""`python -m benchmarks.fleet`: fleet mode's figures on a real redis-server (Debian's).

Four processes (tests/fleet_worker.py, two sync, two asyncio) call one failing upstream with the
default flush interval (1 s) and report each call. Printed: the time from the fleet's total
crossing `min_calls` failures to the first rejection in each process, and the Redis commands
each process sends per second (Redis's own `INFO commandstats`, over the span in which the
processes were calling; commands run inside the script are listed too, and count as part of
its one EVALSHA). Run: `python -m benchmarks.fleet [--interval 1] [--seconds 10]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import redis

from integrations.upstream import Upstream, respond
from tests.redis_server import RedisServer
from tests.test_fleet import MIN_CALLS, Worker, wait_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, default=1.0, help="flush interval (s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    args = parser.parse_args()
    with Upstream() as upstream, RedisServer() as server:
        upstream.default = respond(503)
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        workers = [
            Worker(mode, upstream.url, server.url, namespace, args.interval)
            for mode in ("sync", "sync", "async", "async")
        ]
        try:
            wait_for(
                lambda: all(w.first(lambda c: c["outcome"] == "rejected") for w in workers),
                30.0,
                "every process rejects calls",
            )
            time.sleep(max(0.0, args.seconds - (time.monotonic() - started)))
        finally:
            for worker in workers:
                worker.stop()
        stats = redis.Redis(port=server.port).info("commandstats")
    # the span in which the processes were calling (start-up and shut-down left out)
    elapsed = max(c["t"] for w in workers for c in w.calls) - min(
        c["t"] for w in workers for c in w.calls
    )
    failures = sorted(c["t"] for w in workers for c in w.calls if c["outcome"] == "fail")
    crossed = failures[MIN_CALLS - 1]
    delays = [(w.first(lambda c: c["outcome"] == "rejected") or 0.0) - crossed for w in workers]
    per_second = {
        name.removeprefix("cmdstat_"): row["calls"] / elapsed / len(workers)
        for name, row in stats.items()
    }
    print(
        f"flush interval {args.interval:g} s, {len(workers)} processes calling for {elapsed:.1f} s"
    )
    print(
        "threshold crossing -> open, per process (s): "
        + ", ".join(f"{d:.3f}" for d in delays)
        + f" (median {statistics.median(delays):.3f}, max {max(delays):.3f})"
    )
    print(
        "Redis commands per process per second: "
        + ", ".join(f"{name} {rate:.2f}" for name, rate in sorted(per_second.items()))
        + f" (total {sum(per_second.values()):.2f})"
    )


if __name__ == "__main__":
    main()
