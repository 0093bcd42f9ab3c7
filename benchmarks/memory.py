"""`python -m benchmarks.memory`: the memory of a long run, seawall on every client.

Each client runs in a process of its own (so one client's memory never counts against another's)
against `benchmarks.server`, with every policy on and the default telemetry (`Policy(telemetry=
True)`: the OpenTelemetry API with no SDK, unless `--sdk` installs one as the global providers).
`--concurrency` threads (sync clients) or tasks (async) share one client. A fraction `--faults`
of the logical requests go to paths the server fails with a 503 or a closed connection (retried,
counted by the breaker and the retry budget); every request has a path and query of its own, as
a service asking for ids does, so that anything kept per URL shows up. After a warm-up, the
process prints at 10%, 50% and 100% of `--requests`:

- RSS (kB, /proc/self/status) and what glibc's malloc holds (`mallinfo2`: bytes in use, and
  bytes free but kept), beside the Python heap: pymalloc blocks in use
  (`sys.getallocatedblocks()`) and the objects the garbage collector tracks;
- with `--tracemalloc`, the allocation sites that grew most between 10% and 100%.

`--arena-max N` runs the clients with MALLOC_ARENA_MAX=N; `--trim` calls glibc's
`malloc_trim(0)` before each sample (the RSS a trimmed process would have).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import gc
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import httpx

from . import cases
from .__main__ import start_server

CHECKPOINTS = (0.1, 0.5, 1.0)


# -- what is measured ----------------------------------------------------------------------
class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


_LIBC = _libc()


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


_ARENAS = re.compile(r"([\d,]+) arenas \* ([\d,]+) bytes/arena")


def pymalloc_kb() -> int | None:
    """What pymalloc's arenas take from the OS (kB): its own statistics, which it can only
    print to the C stderr."""
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        found = _ARENAS.search(out.read().decode(errors="replace"))
    if found is None:
        return None
    arenas, size = (int(part.replace(",", "")) for part in found.groups())
    return arenas * size // 1024


def sample(trim: bool) -> dict[str, Any]:
    """RSS, malloc's books and the Python heap, now."""
    gc.collect()
    if trim and _LIBC is not None:
        _LIBC.malloc_trim(0)
    row: dict[str, Any] = {
        "rss_kb": rss_kb(),
        "blocks": sys.getallocatedblocks(),
        "objects": len(gc.get_objects()),
        "pymalloc_kb": pymalloc_kb(),
    }
    mallinfo2 = getattr(_LIBC, "mallinfo2", None)
    if mallinfo2 is not None:  # glibc >= 2.33
        mallinfo2.restype = _Mallinfo2
        info = mallinfo2()
        row["malloc_used_kb"] = (info.uordblks + info.hblkhd) // 1024
        row["malloc_free_kb"] = info.fordblks // 1024
    if tracemalloc.is_tracing():
        row["traced_kb"] = tracemalloc.get_traced_memory()[0] // 1024
    return row


# -- the clients ---------------------------------------------------------------------------
def _policy() -> Any:
    import seawall

    # every policy, the default telemetry; retries wait under a millisecond, so that a run
    # with faults measures requests, not sleep
    return cases.seawall_policy(
        telemetry=True, backoff=seawall.Backoff.exponential(base=0.0002, cap=0.001)
    )


def _httpx_sync() -> httpx.Client:
    from seawall.httpx import ResilientTransport

    return httpx.Client(transport=ResilientTransport(_policy()))


def _httpx_async() -> httpx.AsyncClient:
    from seawall.httpx import AsyncResilientTransport

    return httpx.AsyncClient(transport=AsyncResilientTransport(_policy()))


def _requests() -> Any:
    import seawall.requests

    return seawall.requests.session(_policy())


def _aiohttp() -> Any:
    import seawall.aiohttp

    return seawall.aiohttp.session(_policy())


SYNC: dict[str, tuple[Callable[[], Any], Callable[[Any, str], None]]] = {
    "httpx.Client + seawall": (_httpx_sync, cases._httpx_get),
    "requests.Session + seawall": (_requests, cases._requests_get),
    "httpx.Client": (lambda: httpx.Client(limits=cases._limits()), cases._httpx_get),
    "requests.Session": (cases._requests_bare, cases._requests_get),
}
ASYNC: dict[str, tuple[Callable[[], Any], Callable[[Any, str], Any], Callable[[Any], Any]]] = {
    "httpx.AsyncClient + seawall": (_httpx_async, cases._httpx_aget, cases._aclose),
    "aiohttp.ClientSession + seawall": (_aiohttp, cases._aiohttp_get, cases._aiohttp_close),
    "httpx.AsyncClient": (
        lambda: httpx.AsyncClient(limits=cases._limits()),
        cases._httpx_aget,
        cases._aclose,
    ),
    "aiohttp.ClientSession": (cases._aiohttp_bare, cases._aiohttp_get, cases._aiohttp_close),
}
#: each bare client right before the same client with seawall
CLIENTS = tuple(
    name
    for client in ("httpx.Client", "requests.Session", "httpx.AsyncClient", "aiohttp.ClientSession")
    for name in (client, f"{client} + seawall")
)


def _install_sdk() -> None:
    """A real SDK as the global providers: spans counted and dropped, metrics exported (and
    dropped) every second, as a service shipping them off would."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    class Dropping(MetricExporter):
        def export(
            self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any
        ) -> MetricExportResult:
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            pass

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(cases._counting_exporter()))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(
        MeterProvider(
            metric_readers=[PeriodicExportingMetricReader(Dropping(), export_interval_millis=1_000)]
        )
    )


# -- one client's run (the child process) --------------------------------------------------
class Urls:
    """A path and query of its own for every request; a fraction `faults` fail, half of them
    with a 503 and half with a closed connection. Safe to call from several threads."""

    def __init__(self, base: str, faults: float) -> None:
        self.base, self.faults = base.rstrip("/"), faults
        self.random = random.Random(1)
        self.count = itertools.count(1)

    def next(self) -> str:
        i = next(self.count)
        draw = self.random.random()
        prefix = "" if draw >= self.faults else "/503" if draw < self.faults / 2 else "/reset"
        return f"{self.base}{prefix}/items/{i}?page={i % 1000}"


def _call(get: Callable[[Any, str], None], client: Any, url: str) -> None:
    try:
        get(client, url)
    except Exception:  # noqa: BLE001 (an open breaker, a spent budget: part of the run)
        pass


async def _acall(get: Callable[[Any, str], Any], client: Any, url: str) -> None:
    try:
        await get(client, url)
    except Exception:  # noqa: BLE001
        pass


def run_one(
    client_name: str,
    url: str,
    n: int,
    warmup: int,
    faults: float,
    concurrency: int,
    trim: bool,
    trace_sites: int,
) -> None:
    """Run `n` requests after `warmup`, printing one JSON line per checkpoint."""
    urls = Urls(url, faults)
    stops = [round(n * share) for share in CHECKPOINTS]
    snapshots: list[tracemalloc.Snapshot] = []
    started = time.perf_counter()

    def checkpoint(done: int) -> None:
        row = {
            "client": client_name,
            "done": done,
            "seconds": time.perf_counter() - started,
            **sample(trim),
        }
        if trace_sites:
            snapshots.append(tracemalloc.take_snapshot())
        print(json.dumps(row), flush=True)

    def warmed() -> None:
        if trace_sites:
            tracemalloc.start(1)
        checkpoint(0)

    if client_name in SYNC:
        make, get = SYNC[client_name]
        client = make()

        def burst(count: int) -> None:  # `concurrency` threads share the client, and `count`
            left = iter(range(count))  # (next() on a range iterator is atomic)

            def worker() -> None:
                for _ in left:
                    _call(get, client, urls.next())

            threads = [threading.Thread(target=worker) for _ in range(min(concurrency, count))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        try:
            burst(warmup)
            warmed()
            done = 0
            for stop in stops:
                burst(stop - done)
                done = stop
                checkpoint(done)
        finally:
            client.close()
    else:
        amake, aget, aclose = ASYNC[client_name]

        async def main() -> None:
            client = amake()
            try:

                async def burst(count: int) -> None:
                    left = [count]

                    async def worker() -> None:
                        while left[0] > 0:
                            left[0] -= 1
                            await _acall(aget, client, urls.next())

                    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))

                await burst(warmup)
                warmed()
                done = 0
                for stop in stops:
                    await burst(stop - done)
                    done = stop
                    checkpoint(done)
            finally:
                await aclose(client)

        asyncio.run(main())
    if trace_sites and len(snapshots) >= 2:
        grown = snapshots[-1].compare_to(snapshots[1], "lineno")  # 10% -> 100%
        top = [
            {"site": str(stat.traceback[0]), "kb": stat.size_diff / 1024, "blocks": stat.count_diff}
            for stat in grown[:trace_sites]
        ]
        print(json.dumps({"client": client_name, "grown": top}), flush=True)


# -- the parent: one child per client, then the table ---------------------------------------
def child(client_name: str, url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    env = {**os.environ}
    if args.arena_max:
        env["MALLOC_ARENA_MAX"] = str(args.arena_max)
    command = [
        sys.executable,
        "-m",
        "benchmarks.memory",
        "--one",
        client_name,
        url,
        "--requests",
        str(args.requests),
        "--warmup",
        str(args.warmup),
        "--faults",
        str(args.faults),
        "--concurrency",
        str(args.concurrency),
        "--tracemalloc",
        str(args.tracemalloc),
    ]
    command += ["--sdk"] * args.sdk + ["--trim"] * args.trim
    rows = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        for line in process.stdout:
            row = json.loads(line)
            rows.append(row)
            show(row, args.requests)
    if process.returncode != 0:
        raise SystemExit(f"the {client_name} run failed ({process.returncode})")
    return rows


HEADER = (
    f"{'client':32s} {'done':>5s} {'s':>6s} {'RSS MB':>7s} {'malloc used':>11s} "
    f"{'malloc free':>11s} {'pymalloc':>9s} {'py blocks':>10s} {'gc objects':>10s}"
)


def show(row: dict[str, Any], n: int) -> None:
    if "grown" in row:
        print(f"  {row['client']}: allocation sites that grew most from 10% to 100%")
        for site in row["grown"]:
            print(f"    {site['kb']:+9.1f} kB {site['blocks']:+8d} blocks  {site['site']}")
        return
    mb = lambda kb: f"{kb / 1024:.1f}" if kb is not None else "-"  # noqa: E731
    print(
        f"{row['client']:32s} {row['done'] / n:5.0%} {row['seconds']:6.0f} "
        f"{mb(row['rss_kb']):>7s} {mb(row.get('malloc_used_kb')):>11s} "
        f"{mb(row.get('malloc_free_kb')):>11s} {mb(row.get('pymalloc_kb')):>9s} "
        f"{row['blocks']:10,d} {row['objects']:10,d}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=1_000_000,
        help="logical requests per client after the warm-up",
    )
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--clients", default="", help="only clients whose name contains this")
    parser.add_argument(
        "--faults",
        type=float,
        default=0.1,
        help="share of logical requests the server fails with 503",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="threads (sync clients) or tasks (async) sharing the client",
    )
    parser.add_argument(
        "--bare",
        action="store_true",
        help="also run each bare client (no seawall): the baseline to compare",
    )
    parser.add_argument(
        "--sdk", action="store_true", help="install an OpenTelemetry SDK as the global providers"
    )
    parser.add_argument("--arena-max", type=int, default=0, help="MALLOC_ARENA_MAX for clients")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) before each sample")
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="SITES",
        help="trace allocations; print the SITES that grew most (slow)",
    )
    parser.add_argument("--json", help="also write every sample to this file")
    parser.add_argument("--one", nargs=2, metavar=("CLIENT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.requests < 10:
        raise SystemExit(f"--requests must be at least 10, got {args.requests}")
    if not 0 <= args.faults <= 1:
        raise SystemExit(f"--faults must be between 0 and 1, got {args.faults}")
    if args.one:
        if args.sdk:
            _install_sdk()
        run_one(
            args.one[0],
            args.one[1],
            args.requests,
            args.warmup,
            args.faults,
            args.concurrency,
            args.trim,
            args.tracemalloc,
        )
        return

    chosen = [name for name in CLIENTS if args.clients in name and ("seawall" in name or args.bare)]
    if not chosen:
        raise SystemExit(f"no client matches {args.clients!r} (clients: {', '.join(CLIENTS)})")
    telemetry = "an OpenTelemetry SDK" if args.sdk else "the OpenTelemetry API, no SDK"
    print(
        f"{args.requests:,} requests per client after {args.warmup:,} warm-up, "
        f"{args.faults:.0%} failing with 503, {args.concurrency} threads or tasks; "
        f"every policy, {telemetry}"
        + (f"; MALLOC_ARENA_MAX={args.arena_max}" if args.arena_max else "")
        + ("; malloc_trim(0) before each sample" if args.trim else "")
        + "\n"
    )
    print(HEADER, flush=True)
    server, url = start_server(None)
    rows: list[dict[str, Any]] = []
    try:
        for name in chosen:
            rows += child(name, url, args)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
