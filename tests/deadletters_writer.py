"""A process that writes dead letters under load until it is killed (test_deadletters_crash):
4 threads (requests) and 20 asyncio tasks (httpx) send failing requests without pause; each
request's body names its URL's `n`, so the test can check that every stored entry is whole."""

from __future__ import annotations

import asyncio
import sys
import threading

import httpx

import seawall
import seawall.requests
from seawall.deadletters import DeadLetters, SQLiteStore
from seawall.httpx import AsyncResilientTransport


def main(path: str, url: str) -> None:
    letters = DeadLetters(SQLiteStore(path), max_entries=1_000_000, queue_size=10_000)

    def policy() -> seawall.Policy:
        return seawall.Policy(
            "crash", retry=None, breaker=None, bulkhead=None, telemetry=False, dead_letters=letters
        )

    def threaded(worker: int) -> None:
        session = seawall.requests.session(policy())
        for n in range(10**9):
            session.post(f"{url}/crash?n=t{worker}-{n}", data=f"letter t{worker}-{n}".encode())

    async def tasks() -> None:
        async with httpx.AsyncClient(transport=AsyncResilientTransport(policy())) as client:

            async def one(task: int) -> None:
                for n in range(10**9):
                    await client.post(
                        f"{url}/crash?n=a{task}-{n}", content=f"letter a{task}-{n}".encode()
                    )

            await asyncio.gather(*(one(task) for task in range(20)))

    for worker in range(4):
        threading.Thread(target=threaded, args=(worker,), daemon=True).start()
    asyncio.run(tasks())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
