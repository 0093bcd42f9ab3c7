"""httpx-only behaviour: cancellation of in-flight requests, buffered bodies, shared policies."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

import seawall
from integrations.upstream import respond, truncate
from seawall.httpx import AsyncResilientTransport, ResilientTransport
from seawall.policies.breaker import State


def test_cancelling_1000_in_flight_requests_releases_every_slot(upstream):
    upstream.default = respond(200, delay=0.3)
    policy = seawall.Policy(
        "cancel",
        retry=None,
        bulkhead=seawall.Bulkhead(max_concurrent=50, max_queued=2000, queue_timeout=30),
        pool=seawall.Pool(max_connections=50, max_keepalive=50),
    )

    async def main() -> tuple[int, int, int]:
        async with httpx.AsyncClient(transport=AsyncResilientTransport(policy)) as client:
            tasks = [asyncio.create_task(client.get(upstream.url + "/hold")) for _ in range(1000)]
            for _ in range(500):  # until 50 are in flight at the upstream, 950 queued
                if upstream.in_flight == 50:
                    break
                await asyncio.sleep(0.01)
            bulkhead = policy.dependency("cancel").bulkhead
            busy = (bulkhead.active, bulkhead.queued)
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            after = (bulkhead.active, bulkhead.queued)
            fresh = await client.get(upstream.url + "/after")
            return busy, after, fresh.status_code

    busy, after, status = asyncio.run(main())
    assert busy == (50, 950)
    assert after == (0, 0)
    assert status == 200
    assert upstream.max_in_flight <= 51  # 50 cancelled + the fresh one
    assert upstream.hits("/hold") == 50


def test_cancelled_half_open_probe_is_released(upstream):
    upstream.script("/p", respond(500), respond(200, delay=0.5), then=respond(200))
    policy = seawall.Policy(
        "probe", retry=None, breaker=seawall.CircuitBreaker(consecutive_failures=1, open_for=0.05)
    )

    async def main() -> int:
        async with httpx.AsyncClient(transport=AsyncResilientTransport(policy)) as client:
            await client.get(upstream.url + "/p")  # opens the breaker
            await asyncio.sleep(0.06)
            probe = asyncio.create_task(client.get(upstream.url + "/p"))
            await asyncio.sleep(0.1)
            probe.cancel()
            with pytest.raises(asyncio.CancelledError):
                await probe
            breaker = policy.dependency("probe").breaker()
            assert breaker.state(policy._clock()) is State.HALF_OPEN
            return (await client.get(upstream.url + "/p")).status_code  # the next probe

    assert asyncio.run(main()) == 200
    assert policy.dependency("probe").breaker().state(policy._clock()) is State.CLOSED


def test_truncated_body_is_retried_when_bodies_are_buffered(upstream):
    upstream.script("/trunc", truncate(declared=100, sent=10), then=respond(200, body=b"whole"))
    policy = seawall.Policy("trunc", retry=seawall.Retry(backoff=seawall.Backoff.constant(0.001)))
    with httpx.Client(transport=ResilientTransport(policy, buffer_body=True)) as client:
        assert client.get(upstream.url + "/trunc").content == b"whole"
    assert upstream.hits("/trunc") == 2


def test_truncated_body_surfaces_to_the_caller_when_streaming(upstream):
    upstream.script("/trunc2", truncate(declared=100, sent=10))
    with httpx.Client(transport=ResilientTransport(seawall.Policy("t2"))) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(upstream.url + "/trunc2")
    assert upstream.hits("/trunc2") == 1


def test_sync_and_async_clients_share_one_bulkhead(upstream):
    upstream.default = respond(200, delay=0.05)
    policy = seawall.Policy(
        "shared",
        retry=None,
        bulkhead=seawall.Bulkhead(max_concurrent=3, max_queued=100, queue_timeout=10),
    )

    def threads() -> None:
        with httpx.Client(transport=ResilientTransport(policy)) as client:
            workers = [
                threading.Thread(target=client.get, args=(upstream.url + "/s",)) for _ in range(6)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

    async def tasks() -> None:
        async with httpx.AsyncClient(transport=AsyncResilientTransport(policy)) as client:
            await asyncio.gather(*(client.get(upstream.url + "/s") for _ in range(6)))

    side = threading.Thread(target=threads)
    side.start()
    asyncio.run(tasks())
    side.join()
    assert upstream.hits("/s") == 12
    assert upstream.max_in_flight == 3


def test_user_timeouts_shorter_than_the_attempt_timeout_still_apply(upstream):
    upstream.default = respond(200, delay=0.5)
    policy = seawall.Policy("mine", retry=None, timeouts=seawall.Timeouts(attempt=5, total=10))
    with httpx.Client(transport=ResilientTransport(policy), timeout=0.05) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get(upstream.url + "/slow")


def test_unnamed_policy_keys_dependencies_by_origin_and_caps_them(upstream):
    policy = seawall.Policy(retry=None, max_dependencies=2)
    with httpx.Client(transport=ResilientTransport(policy)) as client:
        client.get(upstream.url + "/a")
        for host in ("127.0.0.2", "127.0.0.3"):  # nothing listens there: refused, still counted
            with pytest.raises(httpx.ConnectError):
                client.get(f"http://{host}:{upstream.port}/b")
    names = sorted(d.name for d in policy.dependencies())
    # the third origin, over the cap, shares "_other"
    assert names == [
        "_other",
        f"http://127.0.0.1:{upstream.port}",
        f"http://127.0.0.2:{upstream.port}",
    ]
    assert policy.dependency("http://127.0.0.9:1").name == "_other"


def test_transport_options_and_wrapped_transport_are_exclusive():
    with pytest.raises(TypeError, match="either transport= or options"):
        ResilientTransport(transport=httpx.HTTPTransport(), verify=False)


def test_under_trio_requests_pass_through_with_one_warning_per_client(upstream, caplog):
    import trio

    upstream.script("/trio", respond(503), respond(200), respond(503))
    policy = seawall.Policy("trio", telemetry=False)

    async def main() -> list[int]:
        statuses = []
        for _ in range(2):  # two clients, so two warnings, whatever each one sends
            transport = AsyncResilientTransport(policy)
            async with httpx.AsyncClient(transport=transport) as client:
                statuses.append((await client.get(upstream.url + "/trio")).status_code)
                if not statuses[1:]:
                    statuses.append((await client.get(upstream.url + "/trio")).status_code)
        return statuses

    with caplog.at_level("WARNING", logger="seawall"):
        statuses = trio.run(main)
    assert statuses == [503, 200, 503]  # untouched: no retry, and no "no running event loop"
    assert upstream.hits("/trio") == 3
    warnings = [r.getMessage() for r in caplog.records if "other than asyncio" in r.getMessage()]
    assert len(warnings) == 2, warnings
    # the same transport under asyncio retries the 503
    upstream.script("/asyncio", respond(503), respond(200))

    async def on_asyncio() -> int:
        async with httpx.AsyncClient(transport=AsyncResilientTransport(policy)) as client:
            return (await client.get(upstream.url + "/asyncio")).status_code

    assert asyncio.run(on_asyncio()) == 200 and upstream.hits("/asyncio") == 2
