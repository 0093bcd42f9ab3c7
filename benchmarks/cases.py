"""The benchmark cases: each builds its client, warms up, then measures N requests.

A case is a name, the bare case it is compared with, and a `measure(url, warmup, n)` that
returns (CPU seconds, wall seconds) of the N measured requests. Adding a client or a variant is
a few lines with `sync_case` / `async_case`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx

Measure = Callable[[str, int, int], tuple[float, float]]

POOL = dict(max_connections=100, max_keepalive=100, keepalive_expiry=5.0)


@dataclass(frozen=True)
class Case:
    name: str
    baseline: str | None  # the bare case it is compared with (None: it is a baseline)
    measure: Measure


def seawall_policy(telemetry: Any = False, backoff: Any = None, store: Any = None) -> Any:
    """Every policy on, none of them triggered (no faults): the cost of protection. Telemetry
    is off unless given, so the plain cases measure resilience alone; `backoff` replaces the
    default one (a run with faults that must not spend its time asleep); `store` replaces the
    in-process state store (the fleet case)."""
    import seawall

    return seawall.Policy(
        telemetry=telemetry,
        name="bench",
        retry=seawall.Retry(max_attempts=3, **({} if backoff is None else {"backoff": backoff})),
        breaker=seawall.CircuitBreaker(failure_rate=0.5, window=30.0, min_calls=20, open_for=5.0),
        bulkhead=seawall.Bulkhead(max_concurrent=100, max_queued=100, queue_timeout=1.0),
        timeouts=seawall.Timeouts(attempt=10.0, total=30.0),
        pool=seawall.Pool(**POOL),
        **({} if store is None else {"store": store}),
    )


def _timed(run: Callable[[int], None], warmup: int, n: int) -> tuple[float, float]:
    run(warmup)
    cpu, wall = time.process_time(), time.perf_counter()
    run(n)
    return time.process_time() - cpu, time.perf_counter() - wall


def sync_case(make_client: Callable[[], Any], get: Callable[[Any, str], None]) -> Measure:
    def measure(url: str, warmup: int, n: int) -> tuple[float, float]:
        client = make_client()
        try:

            def run(count: int) -> None:
                for _ in range(count):
                    get(client, url)

            return _timed(run, warmup, n)
        finally:
            client.close()

    return measure


def async_case(
    make_client: Callable[[], Any],
    get: Callable[[Any, str], Any],
    close: Callable[[Any], Any],
    concurrency: int,
) -> Measure:
    def measure(url: str, warmup: int, n: int) -> tuple[float, float]:
        async def main() -> tuple[float, float]:
            client = make_client()
            try:

                async def burst(count: int) -> None:
                    left = [count]

                    async def worker() -> None:
                        while left[0] > 0:
                            left[0] -= 1
                            await get(client, url)

                    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))

                await burst(warmup)
                cpu, wall = time.process_time(), time.perf_counter()
                await burst(n)
                return time.process_time() - cpu, time.perf_counter() - wall
            finally:
                await close(client)

        return asyncio.run(main())

    return measure


# -- httpx ---------------------------------------------------------------------------------
def _limits() -> httpx.Limits:
    return httpx.Limits(
        max_connections=POOL["max_connections"],
        max_keepalive_connections=POOL["max_keepalive"],
        keepalive_expiry=POOL["keepalive_expiry"],
    )


def _httpx_get(client: httpx.Client, url: str) -> None:
    client.get(url).read()


async def _httpx_aget(client: httpx.AsyncClient, url: str) -> None:
    await (await client.get(url)).aread()


async def _aclose(client: httpx.AsyncClient) -> None:
    await client.aclose()


#: The two seawall configurations every client is measured in: resilience alone, and what a
#: user who installs seawall gets by default (telemetry=True: the OpenTelemetry API is
#: installed, no SDK is set up, so seawall only keeps ready for one to appear).
CONFIGURATIONS = (("seawall", False), ("seawall default", True))


def _httpx_seawall(telemetry: bool = False) -> httpx.Client:
    from seawall.httpx import ResilientTransport

    return httpx.Client(transport=ResilientTransport(seawall_policy(telemetry)))


def _httpx_fleet_seawall() -> httpx.Client:
    """Fleet mode's request path: its breakers, with the flusher not started (its work is per
    second, not per request: docs/fleet.md gives its Redis calls)."""
    import seawall
    from seawall.httpx import ResilientTransport

    fleet = seawall.Fleet("redis://127.0.0.1:1/0", namespace="bench", start=False)
    return httpx.Client(transport=ResilientTransport(seawall_policy(store=fleet)))


def _httpx_async_seawall(telemetry: bool = False) -> httpx.AsyncClient:
    from seawall.httpx import AsyncResilientTransport

    return httpx.AsyncClient(transport=AsyncResilientTransport(seawall_policy(telemetry)))


# -- requests ------------------------------------------------------------------------------
def _requests_bare() -> Any:
    import requests

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=POOL["max_connections"])
    session.mount("http://", adapter)
    return session


def _requests_seawall(telemetry: bool = False) -> Any:
    import seawall.requests

    return seawall.requests.session(seawall_policy(telemetry))


def _requests_get(session: Any, url: str) -> None:
    session.get(url).content  # noqa: B018


# -- aiohttp -------------------------------------------------------------------------------
def _aiohttp_bare() -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=POOL["max_connections"], keepalive_timeout=POOL["keepalive_expiry"]
        )
    )


def _aiohttp_seawall(telemetry: bool = False) -> Any:
    import seawall.aiohttp

    return seawall.aiohttp.session(seawall_policy(telemetry))


async def _aiohttp_get(session: Any, url: str) -> None:
    async with session.get(url) as response:
        await response.read()


async def _aiohttp_close(session: Any) -> None:
    await session.close()


# -- OpenTelemetry: a real SDK with in-memory exporters, shared by every OTel case -----------
#: the name of the cases with `Telemetry(spans="attempts")`: a span per attempt, as the
#: official instrumentations report (no logical span for a request of one attempt)
ATTEMPT_SPANS = "spans=attempts"
#: spans exported per request, by case (printed beside the figures: the work each side does)
SPANS_PER_REQUEST: dict[str, float] = {}


def _counting_exporter() -> Any:
    """Counts the spans it is given and drops them, as an exporter that ships them off does:
    keeping millions of spans in memory would bill the garbage collector to whoever makes more."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        def __init__(self) -> None:
            self.count = 0

        def export(self, spans: Any) -> SpanExportResult:
            self.count += len(spans)
            return SpanExportResult.SUCCESS

    return Counting()


class _Sdk:
    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        self.spans = _counting_exporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])


_sdk: _Sdk | None = None


def sdk() -> _Sdk:
    global _sdk
    if _sdk is None:
        _sdk = _Sdk()
    return _sdk


def _counting_spans(name: str, measure: Measure) -> Measure:
    def run(url: str, warmup: int, n: int) -> tuple[float, float]:
        spans = sdk().spans
        before = spans.count
        result = measure(url, warmup, n)
        SPANS_PER_REQUEST[name] = (spans.count - before) / (warmup + n)
        return result

    return run


def with_official(name: str, instrumentor: Callable[[], Any], measure: Measure) -> Measure:
    """Run `measure` with an official OTel instrumentation on (and off again after: it patches
    classes, so it must not leak into the other cases)."""

    def run(url: str, warmup: int, n: int) -> tuple[float, float]:
        otel = sdk()
        instance = instrumentor()
        instance.instrument(
            tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider
        )
        try:
            return measure(url, warmup, n)
        finally:
            instance.uninstrument()

    return _counting_spans(name, run)


def with_seawall_otel(
    name: str, measure_for: Callable[[Any], Measure], spans: str = "request"
) -> Measure:
    """`measure_for(policy)` with seawall's own spans and metrics on the shared SDK
    (`spans`: `Telemetry(spans=...)`)."""

    def run(url: str, warmup: int, n: int) -> tuple[float, float]:
        from seawall.telemetry.otel import Telemetry

        otel = sdk()
        telemetry = Telemetry(
            tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, spans=spans
        )
        return measure_for(seawall_policy(telemetry))(url, warmup, n)

    return _counting_spans(name, run)


def _httpx_instrumentor() -> Any:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    return HTTPXClientInstrumentor()


def _requests_instrumentor() -> Any:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    return RequestsInstrumentor()


def _aiohttp_instrumentor() -> Any:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    return AioHttpClientInstrumentor()


def otel_cases() -> list[Case]:
    """Each client with the official instrumentation alone vs with seawall's telemetry alone."""
    from seawall.httpx import AsyncResilientTransport, ResilientTransport

    def httpx_sync(policy: Any) -> Measure:
        return sync_case(lambda: httpx.Client(transport=ResilientTransport(policy)), _httpx_get)

    def httpx_async(policy: Any) -> Measure:
        return async_case(
            lambda: httpx.AsyncClient(transport=AsyncResilientTransport(policy)),
            _httpx_aget,
            _aclose,
            1,
        )

    def requests_sync(policy: Any) -> Measure:
        import seawall.requests

        return sync_case(lambda: seawall.requests.session(policy), _requests_get)

    def aiohttp_async(policy: Any) -> Measure:
        import seawall.aiohttp

        return async_case(lambda: seawall.aiohttp.session(policy), _aiohttp_get, _aiohttp_close, 1)

    plain = [
        (
            "httpx.Client",
            _httpx_instrumentor,
            sync_case(lambda: httpx.Client(limits=_limits()), _httpx_get),
            httpx_sync,
        ),
        (
            "httpx.AsyncClient",
            _httpx_instrumentor,
            async_case(lambda: httpx.AsyncClient(limits=_limits()), _httpx_aget, _aclose, 1),
            httpx_async,
        ),
        (
            "requests.Session",
            _requests_instrumentor,
            sync_case(_requests_bare, _requests_get),
            requests_sync,
        ),
        (
            "aiohttp.ClientSession",
            _aiohttp_instrumentor,
            async_case(_aiohttp_bare, _aiohttp_get, _aiohttp_close, 1),
            aiohttp_async,
        ),
    ]
    cases = []
    for client, instrumentor, bare, with_seawall in plain:
        official, ours = f"{client} + OTel seq", f"{client} + seawall + OTel seq"
        attempts = f"{client} + seawall + OTel {ATTEMPT_SPANS} seq"
        cases += [
            Case(official, None, with_official(official, instrumentor, bare)),
            Case(ours, official, with_seawall_otel(ours, with_seawall)),
            Case(attempts, official, with_seawall_otel(attempts, with_seawall, "attempts")),
        ]
    return cases


def all_cases() -> list[Case]:
    """Each bare client, then the same client through seawall in each of `CONFIGURATIONS`."""
    cases = [
        Case(
            "httpx.Client seq", None, sync_case(lambda: httpx.Client(limits=_limits()), _httpx_get)
        ),
        *(
            Case(
                f"httpx.Client + {label} seq",
                "httpx.Client seq",
                sync_case(partial(_httpx_seawall, telemetry), _httpx_get),
            )
            for label, telemetry in CONFIGURATIONS
        ),
        Case(
            "httpx.Client + seawall fleet seq",
            "httpx.Client seq",
            sync_case(_httpx_fleet_seawall, _httpx_get),
        ),
    ]
    for mode, concurrency in (("seq", 1), ("c64", 64)):
        bare = f"httpx.AsyncClient {mode}"
        cases += [
            Case(
                bare,
                None,
                async_case(
                    lambda: httpx.AsyncClient(limits=_limits()), _httpx_aget, _aclose, concurrency
                ),
            ),
            *(
                Case(
                    f"httpx.AsyncClient + {label} {mode}",
                    bare,
                    async_case(
                        partial(_httpx_async_seawall, telemetry), _httpx_aget, _aclose, concurrency
                    ),
                )
                for label, telemetry in CONFIGURATIONS
            ),
        ]
    cases += [
        Case("requests.Session seq", None, sync_case(_requests_bare, _requests_get)),
        *(
            Case(
                f"requests.Session + {label} seq",
                "requests.Session seq",
                sync_case(partial(_requests_seawall, telemetry), _requests_get),
            )
            for label, telemetry in CONFIGURATIONS
        ),
    ]
    for mode, concurrency in (("seq", 1), ("c64", 64)):
        bare = f"aiohttp.ClientSession {mode}"
        cases += [
            Case(bare, None, async_case(_aiohttp_bare, _aiohttp_get, _aiohttp_close, concurrency)),
            *(
                Case(
                    f"aiohttp.ClientSession + {label} {mode}",
                    bare,
                    async_case(
                        partial(_aiohttp_seawall, telemetry),
                        _aiohttp_get,
                        _aiohttp_close,
                        concurrency,
                    ),
                )
                for label, telemetry in CONFIGURATIONS
            ),
        ]
    return cases + otel_cases()


CASES_HELP = "only cases whose name contains this (or any of several, separated by '|')"


def chosen_cases(pattern: str) -> list[Case]:
    """The cases whose name contains `pattern` (or one of its '|'-separated parts), each with
    the baseline it is compared with, in `all_cases` order (each baseline before its variants)."""
    every = all_cases()
    parts = pattern.split("|")
    chosen = {c.name for c in every if any(part in c.name for part in parts)}
    chosen |= {c.baseline for c in every if c.name in chosen and c.baseline is not None}
    return [c for c in every if c.name in chosen]
