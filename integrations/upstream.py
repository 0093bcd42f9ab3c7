"""A scriptable, fault-injecting HTTP upstream for tests and the demo.

An aiohttp.web app on 127.0.0.1 (ephemeral port) served from a background thread with its own
event loop, so sync and async tests alike can use it:

    with Upstream() as up:
        up.script("/pay", respond(503), retry_after(503, "1"), respond(200, body=b"done"))
        ...  # requests to up.url + "/pay" get those three answers in order, then `up.default`
        assert up.hits("/pay") == 3 and up.max_in_flight == 1

Each request to a scripted path takes the script's next step; an unscripted path, or one
whose script is used up, gets the script's `then` or else `up.default`. When the server closes
a connection on purpose (reset, truncate) it says `Connection: close` or aborts the socket, so
keep-alive reuse cannot race. aiohttp does not cancel a handler when its client goes away, so
`in_flight` counts a request until its delay is over.

`python -m integrations.upstream --port 8080` serves it in the foreground; its `/chaos` route
(`/chaos?fail=0.3&delay=0.05`) fails with 503 at random, for a workload that needs no script.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web

_Answer = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Step:
    """One scripted answer: wait `delay` seconds after reading the request, then `answer`."""

    answer: _Answer
    delay: float = 0.0
    label: str = ""


@dataclass(frozen=True)
class Seen:
    """A request as the upstream received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


def respond(
    status: int = 200,
    body: bytes = b"ok",
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Step:
    """Answer `status` with `body` (and `headers`) after `delay` seconds."""

    async def answer(request: web.Request, _: bytes) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers=headers)

    return Step(answer, delay, f"respond({status})")


def retry_after(status: int = 503, value: str = "1", delay: float = 0.0) -> Step:
    """Answer `status` with `Retry-After: value` (delta-seconds or an HTTP-date)."""
    return respond(status, b"try later", {"Retry-After": value}, delay)


def reset(delay: float = 0.0) -> Step:
    """Drop the connection without any response (the client sees a connection error)."""

    async def answer(request: web.Request, _: bytes) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError  # nothing more to send; aiohttp drops the handler

    return Step(answer, delay, "reset")


def truncate(declared: int = 1000, sent: int = 10, delay: float = 0.0) -> Step:
    """Promise `declared` body bytes, send `sent`, then close the connection."""

    async def answer(request: web.Request, _: bytes) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Connection": "close"})
        response.content_length = declared
        await response.prepare(request)
        await response.write(b"x" * sent)
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError

    return Step(answer, delay, f"truncate({sent}/{declared})")


def slow_body(
    chunks: int = 5,
    interval: float = 0.05,
    chunk: bytes = b"x" * 16,
    status: int = 200,
    *,
    sized: bool = False,
) -> Step:
    """Send the headers at once, then `chunks` chunks `interval` seconds apart: a body that
    trickles. Chunked transfer encoding by default (the client cannot know the length in
    advance); `sized=True` declares the whole length in `Content-Length` instead. A client
    that goes away mid-body ends the handler at its next write."""

    async def answer(request: web.Request, _: bytes) -> web.StreamResponse:
        response = web.StreamResponse(status=status)
        if sized:
            response.content_length = chunks * len(chunk)
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for index in range(chunks):
                if index:
                    await asyncio.sleep(interval)
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:  # the client went away: nothing more to send
            raise asyncio.CancelledError from None  # aiohttp drops the handler quietly
        return response

    framing = "sized" if sized else "chunked"
    return Step(answer, 0.0, f"slow_body({chunks}x{len(chunk)}, {framing})")


def echo(status: int = 200) -> Step:
    """Answer with the request's body, and its length in `X-Body-Length`."""

    async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers={"X-Body-Length": str(len(body))})

    return Step(answer, 0.0, "echo")


async def _chaos(request: web.Request, _: bytes) -> web.StreamResponse:
    delay = float(request.query.get("delay", "0"))
    if delay > 0:
        await asyncio.sleep(delay)
    if random.random() < float(request.query.get("fail", "0")):
        return web.Response(status=503, body=b"chaos")
    return web.Response(body=b"ok")


class Upstream:
    """The fault-injecting server. Thread-safe: tests read its counters from other threads."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.default: Step = respond()
        self._lock = threading.Lock()
        self._scripts: dict[str, collections.deque[Step]] = {}
        self._then: dict[str, Step] = {}
        self._hits: collections.Counter[str] = collections.Counter()
        self._requests: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- scripting and counters ------------------------------------------------------------
    def script(self, path: str, *steps: Step, then: Step | None = None) -> None:
        """Answer the next requests to `path` with `steps`, then with `then` (or the default)."""
        with self._lock:
            self._scripts[path] = collections.deque(steps)
            if then is not None:
                self._then[path] = then
            else:
                self._then.pop(path, None)

    def hits(self, path: str | None = None) -> int:
        with self._lock:
            return sum(self._hits.values()) if path is None else self._hits[path]

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget scripts, counters and requests; restore the default answer."""
        with self._lock:
            self._scripts.clear()
            self._then.clear()
            self._hits.clear()
            self._requests.clear()
            self.max_in_flight = self.in_flight
            self.default = respond()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being handled."""
        end = time.monotonic() + timeout
        while self.in_flight:
            if time.monotonic() >= end:
                return False
            time.sleep(0.005)
        return True

    # -- serving ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            self._hits[request.path] += 1
            self._requests.append(
                Seen(
                    request.method,
                    request.path,
                    request.query_string,
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
            script = self._scripts.get(request.path)
            if script:
                step = script.popleft()
            elif request.path in self._then:
                step = self._then[request.path]
            elif request.path == "/chaos":
                step = Step(_chaos)
            else:
                step = self.default
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if step.delay > 0:
                await asyncio.sleep(step.delay)
            return await step.answer(request, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=2048)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        assert sockets, "the upstream did not open a listening socket"
        self.port = sockets[0].getsockname()[1]

    def start(self) -> Upstream:
        """Serve from a background thread; returns once the port is listening."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as error:  # noqa: BLE001 - reported to start()
                failure.append(error)
                started.set()
                return
            started.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=main, name=f"upstream-{id(self)}", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise RuntimeError(f"upstream failed to start on {self.host}:{self.port}") from failure[
                0
            ]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="seawall's fault-injecting upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    upstream = Upstream(args.host, args.port).start()
    print(
        f"upstream listening on {upstream.url} (try {upstream.url}/chaos?fail=0.3&delay=0.05)",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
