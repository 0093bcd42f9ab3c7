"""Client flavours for the behavioural suite: every flavour offers the same small, synchronous
API over its real client, so one test body proves an invariant for all of them.

A new client joins the suite by adding a `Flavour` subclass here and naming it in FLAVOURS.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import requests

import seawall
import seawall.aiohttp
import seawall.requests
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

    def stream_chunks(self, url: str, pause: float = 0.0) -> list[tuple[float, bytes]]:
        """GET url as a stream; (monotonic time, chunk) for each chunk as it arrived. The
        caller reads later: `pause` seconds pass between the response and its first read."""
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

    def stream_chunks(self, url: str, pause: float = 0.0) -> list[tuple[float, bytes]]:
        with self.http.stream("GET", url) as response:
            time.sleep(pause)
            return [(time.monotonic(), chunk) for chunk in response.iter_raw()]

    def many(self, n: int, method: str, url: str) -> list[Result | BaseException]:
        return _threads(n, lambda: self.request(method, url))

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

    def __init__(
        self, runner: LoopThread, client: httpx.AsyncClient, transport: AsyncResilientTransport
    ) -> None:
        self.runner = runner
        self.http = client
        self.transport = transport

    async def _request(self, method: str, url: str, **kw: Any) -> Result:
        response = await self.http.request(method, url, **kw)
        return _result(response)

    def request(self, method: str, url: str, **kw: Any) -> Result:
        return self.runner.run(self._request(method, url, **kw))

    def stream_chunks(self, url: str, pause: float = 0.0) -> list[tuple[float, bytes]]:
        async def go() -> list[tuple[float, bytes]]:
            async with self.http.stream("GET", url) as response:
                await asyncio.sleep(pause)
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


# -- requests ------------------------------------------------------------------------------
class _RequestsClient(Client):
    transport_error = requests.ConnectionError
    timeout_error = requests.Timeout

    def __init__(self, session: requests.Session) -> None:
        self.http = session

    def request(self, method: str, url: str, **kw: Any) -> Result:
        if "content" in kw:
            kw["data"] = kw.pop("content")
        response = self.http.request(method, url, timeout=5.0, **kw)
        return Result(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )

    def stream_chunks(self, url: str, pause: float = 0.0) -> list[tuple[float, bytes]]:
        with self.http.get(url, stream=True, timeout=5.0) as response:
            time.sleep(pause)
            return [(time.monotonic(), chunk) for chunk in response.iter_content(chunk_size=None)]

    def many(self, n: int, method: str, url: str) -> list[Result | BaseException]:
        return _threads(n, lambda: self.request(method, url))


class Requests(Flavour):
    name = "requests"

    def one_shot_body(self, data: bytes) -> Any:
        return (part for part in [data])

    def response(self, status: int, body: bytes) -> Any:
        response = requests.Response()
        response.status_code = status
        response._content = body
        return response

    @contextmanager
    def client(self, policy: seawall.Policy, **options: Any) -> Iterator[Client]:
        with seawall.requests.session(policy) as session:
            yield _RequestsClient(session)


# -- aiohttp (run on a private event-loop thread) ------------------------------------------
class _AiohttpClient(Client):
    transport_error = aiohttp.ClientError
    timeout_error = asyncio.TimeoutError

    def __init__(self, runner: LoopThread, session: aiohttp.ClientSession) -> None:
        self.runner = runner
        self.http = session

    async def _request(self, method: str, url: str, **kw: Any) -> Result:
        if "content" in kw:
            kw["data"] = kw.pop("content")
        async with self.http.request(method, url, **kw) as response:
            return Result(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                await response.read(),
            )

    def request(self, method: str, url: str, **kw: Any) -> Result:
        return self.runner.run(self._request(method, url, **kw))

    def stream_chunks(self, url: str, pause: float = 0.0) -> list[tuple[float, bytes]]:
        async def go() -> list[tuple[float, bytes]]:
            async with self.http.get(url) as response:
                await asyncio.sleep(pause)
                return [(time.monotonic(), chunk) async for chunk in response.content.iter_any()]

        return self.runner.run(go())

    def many(self, n: int, method: str, url: str) -> list[Result | BaseException]:
        return self.runner.run(_gather(n, lambda: self._request(method, url)))


class Aiohttp(Flavour):
    name = "aiohttp"

    def one_shot_body(self, data: bytes) -> Any:
        async def body() -> Any:
            yield data

        return body()

    #: aiohttp offers no public way to build a ClientResponse by hand.
    response = None  # type: ignore[assignment]

    @contextmanager
    def client(self, policy: seawall.Policy, **options: Any) -> Iterator[Client]:
        runner = LoopThread()

        async def make() -> aiohttp.ClientSession:
            return seawall.aiohttp.session(
                policy, timeout=aiohttp.ClientTimeout(total=5.0), **options
            )

        session = runner.run(make())
        try:
            yield _AiohttpClient(runner, session)
        finally:
            runner.run(session.close())
            runner.close()


def _threads(n: int, call: Callable[[], Result]) -> list[Result | BaseException]:
    def one(_: int) -> Result | BaseException:
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - the test inspects it
            return error

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


FLAVOURS: list[Flavour] = [HttpxSync(), HttpxAsync(), Requests(), Aiohttp()]
