"""Client flavours for the behavioural suite: every flavour offers the same small, synchronous
API over its real client, so one test body proves an invariant for all of them.

A new client joins the suite by adding a `Flavour` subclass here and naming it in FLAVOURS.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

import seawall
from seawall.httpx import AsyncResilientTransport, ResilientTransport


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """One resilient client of a flavour, used synchronously by tests."""

    #: The client's own base class for transport failures (what users already catch).
    transport_error: type[BaseException]
    #: The client's own timeout exception (seawall's DeadlineExceeded must also be one).
    timeout_error: type[BaseException]

    def request(self, method: str, url: str, **kw: Any) -> Result:
        raise NotImplementedError

    def stream_chunks(self, url: str) -> list[tuple[float, bytes]]:
        """GET url as a stream; (monotonic time, chunk) for each chunk as it arrived."""
        raise NotImplementedError

    def many(self, n: int, method: str, url: str) -> list[Result | BaseException]:
        """n requests at once; each result or the exception it raised."""
        raise NotImplementedError

    def open_connections(self) -> int | None:
        """Connections the client's pool holds open, where the client says."""
        return None


class Flavour:
    name: str
    #: The client's body that can only be read once (generator or async generator).
    def one_shot_body(self, data: bytes) -> Any:
        raise NotImplementedError

    def file_body(self, data: bytes) -> Any:
        """A file-like body, or None when the client cannot send one (the reason is skipped)."""
        import io
        return io.BytesIO(data)

    def response(self, status: int, body: bytes) -> Any:
        """A response of the client's own type, as a fallback would build it."""
        raise NotImplementedError

    @contextmanager
    def client(self, policy: seawall.Policy, **options: Any) -> Iterator[Client]:
        raise NotImplementedError
        yield


def _result(response: httpx.Response) -> Result:
    return Result(response.status_code, dict(response.headers), response.content)


# -- httpx, sync ---------------------------------------------------------------------------
class _HttpxSyncClient(Client):
    transport_error = httpx.TransportError
    timeout_error = httpx.TimeoutException

    def __init__(self, client: httpx.Client, transport: ResilientTransport) -> None:
        self.http = client
        self.transport = transport

    def request(self, method: str, url: str, **kw: Any) -> Result:
        return _result(self.http.request(method, url, **kw))

    def stream_chunks(self, url: str) -> list[tuple[float, bytes]]:
        import time
        with self.http.stream("GET", url) as response:
            return [(time.monotonic(), chunk) for chunk in response.iter_raw()]

    def many(self, n: int, method: str, url: str) -> list[Result | BaseException]:
        def one(_: int) -> Result | BaseException:
            try:
                return self.request(method, url)
            except Exception as error:  # noqa: BLE001 - the test inspects it
                return error
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(one, range(n)))

    def open_connections(self) -> int | None:
        return len(self.transport.transport._pool.connections)


class _Httpx(Flavour):
    def file_body(self, data: bytes) -> Any:
        """A file-like body, or None when the client cannot send one (the reason is skipped)."""
        import io
        return io.BytesIO(data)

    def response(self, status: int, body: bytes) -> Any:
        return httpx.Response(status, content=body)


class HttpxSync(_Httpx):
    name = "httpx"

    def one_shot_body(self, data: bytes) -> Any:
        return iter([data])

    @contextmanager
    def client(self, policy: seawall.Policy, **options: Any) -> Iterator[Client]:
        transport = ResilientTransport(policy, **options)
        with httpx.Client(transport=transport, timeout=5.0) as client:
            yield _HttpxSyncClient(client, transport)


# -- httpx, async (run on a private event-loop thread) -------------------------------------
class LoopThread:
    """An asyncio loop in a thread, so async clients can be driven from synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def _gather(n: int, make: Callable[[], Coroutine[Any, Any, Any]]) -> list[Any]:
    return list(await asyncio.gather(*(make() for _ in range(n)), return_exceptions=True))


class _HttpxAsyncClient(Client):
    transport_error = httpx.TransportError
    timeout_error = httpx.TimeoutException

    def __init__(self, runner: LoopThread, client: httpx.AsyncClient,
                 transport: AsyncResilientTransport) -> None:
        self.runner = runner
        self.http = client
        self.transport = transport

    async def _request(self, method: str, url: str, **kw: Any) -> Result:
        response = await self.http.request(method, url, **kw)
        return _result(response)

    def request(self, method: str, url: str, **kw: Any) -> Result:
        return self.runner.run(self._request(method, url, **kw))

    def stream_chunks(self, url: str) -> list[tuple[float, bytes]]:
        import time

        async def go() -> list[tuple[float, bytes]]:
            async with self.http.stream("GET", url) as response:
                return [(time.monotonic(), chunk) async for chunk in response.aiter_raw()]
        return self.runner.run(go())

    def many(self, n: int, method: str, url: str) -> list[Result | BaseException]:
        return self.runner.run(_gather(n, lambda: self._request(method, url)))

    def open_connections(self) -> int | None:
        return len(self.transport.transport._pool.connections)


class HttpxAsync(_Httpx):
    name = "httpx-async"
    #: httpx.AsyncClient refuses sync file-likes ("Attempted to send an sync request").
    file_body = None  # type: ignore[assignment]

    def one_shot_body(self, data: bytes) -> Any:
        async def body() -> Any:
            yield data
        return body()

    @contextmanager
    def client(self, policy: seawall.Policy, **options: Any) -> Iterator[Client]:
        runner = LoopThread()
        transport = AsyncResilientTransport(policy, **options)

        async def make() -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=transport, timeout=5.0)
        client = runner.run(make())
        try:
            yield _HttpxAsyncClient(runner, client, transport)
        finally:
            runner.run(client.aclose())
            runner.close()


FLAVOURS: list[Flavour] = [HttpxSync(), HttpxAsync()]
