"""A minimal HTTP/1.1 keep-alive server that answers every request with a fixed 200.

Cheap enough never to be the bottleneck (the client is what is measured): it parses only up
to the blank line and skips a Content-Length body. A path starting with `/503` gets a fixed 503
instead, and one starting with `/reset` a closed connection (the faults of `benchmarks.memory`). Run as `python -m benchmarks.server CPU`;
it prints its port, then serves until stdin closes.
"""

from __future__ import annotations

import asyncio
import os
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
FAILURE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nno"
)


class FixedResponse(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at)
                length = int(head[at + 15 : stop if stop >= 0 else None])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            path = head[head.find(b" ") + 1 :]  # the request line: "GET /path HTTP/1.1"
            if path.startswith(b"/reset"):
                self.transport.close()
                return
            self.transport.write(FAILURE if path.startswith(b"/503") else RESPONSE)


async def serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FixedResponse, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    # Serve until the parent closes our stdin (it exits, or the benchmark ends).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(sys.argv[1])})
    asyncio.run(serve())
