"""Three fronts over one `Admin`: an ASGI app, a WSGI app and a standalone server (the WSGI app
on the standard library's wsgiref, one daemon thread per connection). They only move bytes;
every decision is the `Admin`'s.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from socketserver import ThreadingMixIn
from typing import Any, Self
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .core import Admin, Answer, EventStream

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def asgi_app(**options: Any) -> ASGIApp:
    """The admin surface as an ASGI app (`app.mount("/seawall", seawall.admin.asgi_app(...))`
    in Starlette or FastAPI); takes what `seawall.admin.core.Admin` takes."""
    admin = options.pop("admin", None) or Admin(**options)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        root = scope.get("root_path", "")
        path = scope["path"]
        if root and path.startswith(root):  # Starlette keeps the full path beside root_path
            path = path[len(root) :]
        if path == "":  # the page's relative links need the trailing slash
            await _asgi_answer(send, Answer(308, [("location", root + "/")], b""))
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, query = scope["method"], scope.get("query_string", b"").decode("latin-1")

        def handle() -> Answer | EventStream:
            return admin.handle(method, path, query, headers.get("authorization"), body)

        if method == "POST" and path.startswith("/dead-letters"):
            # a replay may wait for an open breaker (and sends a request): not on the loop
            answer = await asyncio.to_thread(handle)
        else:
            answer = handle()
        if isinstance(answer, EventStream):
            await _asgi_stream(receive, send, answer)
        else:
            await _asgi_answer(send, answer)

    return app


async def _asgi_answer(send: Send, answer: Answer) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [(k.encode(), v.encode()) for k, v in answer.headers],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})


async def _asgi_stream(receive: Receive, send: Send, stream: EventStream) -> None:
    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    gone = asyncio.ensure_future(disconnected())
    try:
        await send(
            {
                "type": "http.response.start",
                "status": stream.status,
                "headers": [(k.encode(), v.encode()) for k, v in stream.headers],
            }
        )
        while (chunk := stream.next_chunk()) is not None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if stream.finished:
                break
            done, _ = await asyncio.wait({gone}, timeout=stream.interval)
            if done:
                return
        await send({"type": "http.response.body", "body": b""})
    finally:
        stream.close()
        gone.cancel()


def wsgi_app(**options: Any) -> WSGIApp:
    """The admin surface as a WSGI app (mount it under a prefix, e.g. with werkzeug's
    `DispatcherMiddleware` in Flask); takes what `seawall.admin.core.Admin` takes."""
    admin = options.pop("admin", None) or Admin(**options)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # PEP 3333: PATH_INFO is the URL's bytes as latin-1
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        if path == "":
            start_response(
                "308 Permanent Redirect", [("location", environ.get("SCRIPT_NAME", "") + "/")]
            )
            return [b""]
        length = environ.get("CONTENT_LENGTH") or "0"
        body = environ["wsgi.input"].read(int(length)) if length.isdigit() else b""
        answer = admin.handle(
            environ["REQUEST_METHOD"],
            path,
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_AUTHORIZATION"),
            body,
        )
        start_response(
            f"{answer.status} {_REASONS.get(answer.status, '')}".strip(), list(answer.headers)
        )
        if isinstance(answer, EventStream):
            return _wsgi_stream(answer)
        return [answer.body]

    return app


def _wsgi_stream(stream: EventStream) -> Iterator[bytes]:
    try:
        while (chunk := stream.next_chunk()) is not None:
            yield chunk
            if not stream.finished:
                time.sleep(stream.interval)  # the server's thread for this client
    finally:  # the server closes the iterable when the client goes away
        stream.close()


_REASONS = {
    200: "OK",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    503: "Service Unavailable",
}


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are not logged: manual changes are, by the `seawall` logger


class AdminServer:
    """The standalone admin server (a daemon thread); `url`, `port`, `close()`."""

    def __init__(self, app: WSGIApp, host: str, port: int) -> None:
        kind = _Server6 if ":" in host else _Server
        self._server = make_server(host, port, app, server_class=kind, handler_class=_QuietHandler)
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="seawall-admin", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def serve(host: str = "127.0.0.1", port: int = 9901, **options: Any) -> AdminServer:
    """Serve the admin surface on `host:port` from a daemon thread (standard library only;
    127.0.0.1 unless told otherwise, as Envoy advises for its admin port; port 0 picks a free
    one); takes what `seawall.admin.core.Admin` takes."""
    return AdminServer(wsgi_app(**options), host, port)
