"""aiohttp-only behaviour: its own silent retry, buffered bodies, the connector."""

from __future__ import annotations

import asyncio

import aiohttp

import seawall
import seawall.aiohttp
import seawall.events
from integrations.upstream import reset, respond, truncate

FAST = seawall.Backoff.constant(0.001)


def test_aiohttps_silent_retry_does_not_repeat_seawalls_attempts(upstream):
    upstream.default = reset()
    policy = seawall.Policy("silent", retry=seawall.Retry(max_attempts=3, backoff=FAST))
    finished: list[str] = []
    policy.subscribe(lambda event: finished.append(event.outcome), seawall.events.RequestFinished)

    async def main() -> list[type[BaseException]]:
        raised = []
        # a session built by hand: aiohttp re-runs the whole chain once on a broken connection
        # (decided before the middleware's first call); seawall retries instead, and aiohttp's
        # re-run of the first request gets seawall's verdict rather than three more attempts
        async with aiohttp.ClientSession(middlewares=[seawall.aiohttp.middleware(policy)]) as s:
            for path in ("/first", "/second"):
                try:
                    await s.get(upstream.url + path)
                except aiohttp.ClientError as error:
                    raised.append(type(error))
        async with seawall.aiohttp.session(policy) as s:
            try:
                await s.get(upstream.url + "/helper")
            except aiohttp.ClientError as error:
                raised.append(type(error))
        return raised

    raised = asyncio.run(main())
    assert [upstream.hits(p) for p in ("/first", "/second", "/helper")] == [3, 3, 3]
    assert finished == ["failure"] * 3  # one logical request each, aiohttp's re-run included
    assert len(raised) == 3 and all(issubclass(e, aiohttp.ClientConnectionError) for e in raised)


def test_truncated_body_is_retried_when_read_inside_the_attempt(upstream):
    upstream.script("/trunc", truncate(declared=100, sent=10), then=respond(200, body=b"whole"))
    policy = seawall.Policy("trunc", retry=seawall.Retry(backoff=FAST))

    async def main() -> bytes:
        async with seawall.aiohttp.session(policy, read_body=True) as s:
            async with s.get(upstream.url + "/trunc") as response:
                return await response.read()

    assert asyncio.run(main()) == b"whole"
    assert upstream.hits("/trunc") == 2


def test_connector_follows_the_pool():
    async def main() -> list[tuple[int, int, float]]:
        policy = seawall.Policy(pool=seawall.Pool(max_connections=7, keepalive_expiry=3.0))
        found = []
        for options in ({}, {"limit_per_host": 2}):
            connector = seawall.aiohttp.connector(policy, **options)
            found.append((connector.limit, connector.limit_per_host, connector._keepalive_timeout))
            await connector.close()
        return found

    # the per-client limit bounds every host; a per-host limit is the caller's to add
    assert asyncio.run(main()) == [(7, 0, 3.0), (7, 2, 3.0)]


def test_rejections_are_aiohttp_client_errors(upstream):
    policy = seawall.Policy("rej", bulkhead=seawall.Bulkhead(max_concurrent=1, max_queued=0))
    upstream.default = respond(200, delay=0.2)

    async def main() -> list:
        async with seawall.aiohttp.session(policy) as s:

            async def get():
                async with s.get(upstream.url + "/x") as r:
                    return r.status

            return await asyncio.gather(get(), get(), return_exceptions=True)

    results = asyncio.run(main())
    assert 200 in results
    rejected = [r for r in results if isinstance(r, seawall.BulkheadFullError)]
    assert len(rejected) == 1 and isinstance(rejected[0], aiohttp.ClientError)


def test_a_request_aiohttp_does_not_rerun_is_not_answered_for(upstream):
    upstream.script("/post", reset())  # then the default answer, 200
    policy = seawall.Policy("posted", retry=seawall.Retry(max_attempts=3, backoff=FAST))

    async def main() -> int:
        async with aiohttp.ClientSession(middlewares=[seawall.aiohttp.middleware(policy)]) as s:
            try:
                await s.post(upstream.url + "/post", data=b"x")  # not idempotent: one attempt
            except aiohttp.ClientError:
                pass
            async with s.post(upstream.url + "/post", data=b"x") as response:  # a new request
                return response.status

    assert asyncio.run(main()) == 200
    assert upstream.hits("/post") == 2
