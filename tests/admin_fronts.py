"""The admin surface's three fronts behind one interface, for the admin tests: the ASGI app
under httpx.ASGITransport, the WSGI app under httpx.WSGITransport, the standalone server over
a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

import seawall

READ = "read-token-" + "r" * 16
CONTROL = "control-token-" + "c" * 16
WRONG = "wrong-token-" + "w" * 16
TOKENS = {"none": None, "read": READ, "control": CONTROL, "wrong": WRONG}
FRONTS = ("asgi", "wsgi", "server")


class Front:
    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.options = options
        self.server: seawall.admin.AdminServer | None = None
        if kind == "asgi":
            self.app: Any = seawall.admin.asgi_app(**options)
        elif kind == "wsgi":
            self.client = httpx.Client(
                transport=httpx.WSGITransport(app=seawall.admin.wsgi_app(**options)),
                base_url="http://admin",
            )
        else:
            self.server = seawall.admin.serve(port=0, **options)
            self.client = httpx.Client(base_url=self.server.url, timeout=5)

    def request(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if self.kind == "asgi":

            async def go() -> httpx.Response:
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=self.app), base_url="http://admin"
                ) as client:
                    answer = await client.request(method, path, headers=headers, **kw)
                    await answer.aread()
                    return answer

            return asyncio.run(go())
        return self.client.request(method, path, headers=headers, **kw)

    def close(self) -> None:
        if self.kind != "asgi":
            self.client.close()
        if self.server is not None:
            self.server.close()


@contextmanager
def front(kind: str, **options: Any) -> Iterator[Front]:
    made = Front(kind, **options)
    try:
        yield made
    finally:
        made.close()
