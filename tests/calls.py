"""Plain calls to the fault-injecting upstream, for the `seawall.protect` / `seawall.retrying`
suites: real sockets through the standard library, no HTTP client seawall knows about.

`get(port, path)` (http.client) and `aget(port, path)` (asyncio streams) return the status, or
raise: a dropped connection is a `ConnectionResetError` (a transient error by seawall's
defaults), a 5xx an `Unavailable` (the caller declares what it means).
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Callable
from typing import Any

import seawall
from seawall.events import RequestFinished

FAST = seawall.Backoff.constant(0.001)


def policy(**overrides: Any) -> seawall.Policy:
    """The dependency "store": 3 quick attempts, no breaker, a roomy bulkhead (unless
    `overrides` say otherwise), no telemetry."""
    options: dict[str, Any] = dict(
        retry=seawall.Retry(max_attempts=3, backoff=FAST),
        breaker=None,
        bulkhead=seawall.Bulkhead(max_concurrent=10, max_queued=100, queue_timeout=5),
        timeouts=seawall.Timeouts(attempt=5, total=10),
        telemetry=False,
    )
    options.update(overrides)
    return seawall.Policy("store", **options)


def finished(p: seawall.Policy) -> list[RequestFinished]:
    """The terminal events of `p`'s requests from now on."""
    seen: list[RequestFinished] = []
    p.subscribe(seen.append, RequestFinished)  # type: ignore[arg-type]
    return seen


def idle(p: seawall.Policy) -> None:
    """Every bulkhead slot of "store" was given back, and nobody waits for one."""
    state = p.dependency("store")
    assert state.bulkhead is None or (state.bulkhead.active, state.bulkhead.queued) == (0, 0)


class Unavailable(Exception):
    """The upstream answered 5xx."""

    def __init__(self, status: int) -> None:
        super().__init__(f"upstream answered {status}")
        self.status = status


def get(port: int, path: str, timeout: float = 5.0) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()  # RemoteDisconnected is a ConnectionResetError
        response.read()
    finally:
        connection.close()
    if response.status >= 500:
        raise Unavailable(response.status)
    return response.status


async def aget(port: int, path: str, timeout: float = 5.0) -> int:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            line = await reader.readline()
            if not line:
                raise ConnectionResetError("the upstream closed the connection without a response")
            status = int(line.split()[1])
            await reader.read()  # to the end: Connection: close
        finally:
            writer.close()
    if status >= 500:
        raise Unavailable(status)
    return status


class Protected:
    """One protected call site: `()` makes one call (an async one on a fresh loop, run to its
    end); `together(n)` makes n at once (threads, or tasks on one loop) and gives each one's
    result or error."""

    def __init__(self, function: Callable[[], Any], is_async: bool) -> None:
        self.function = function
        self.is_async = is_async

    def __call__(self) -> Any:
        return asyncio.run(self.function()) if self.is_async else self.function()

    def together(self, n: int) -> list[Any]:
        if self.is_async:

            async def main() -> list[Any]:
                calls = (self.function() for _ in range(n))
                return await asyncio.gather(*calls, return_exceptions=True)

            return asyncio.run(main())
        results: list[Any] = [None] * n
        start = threading.Barrier(n)

        def one(index: int) -> None:
            start.wait(timeout=5)
            try:
                results[index] = self.function()
            except Exception as error:
                results[index] = error

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        return results


def protected(kind: str, policy: seawall.Policy, port: int, path: str, **options: Any) -> Protected:
    """A call to `path` protected the `kind` way: "sync", "async" or "in_thread"."""
    if kind == "sync":
        return Protected(seawall.protect(policy=policy, **options)(lambda: get(port, path)), False)
    if kind == "async":

        async def call() -> int:
            return await aget(port, path)

        return Protected(seawall.protect(policy=policy, **options)(call), True)
    assert kind == "in_thread"
    function = seawall.protect(policy=policy, in_thread=True, **options)(lambda: get(port, path))
    return Protected(function, True)


KINDS = ["sync", "async", "in_thread"]
