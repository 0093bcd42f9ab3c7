"""The admin API's dead-letter routes over the three fronts, with the admin's auth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import seawall
from integrations.upstream import Upstream, respond
from seawall.deadletters import DeadLetters, SQLiteStore
from tests.admin_fronts import CONTROL, FRONTS, READ, front
from tests.flavours import HttpxSync


@pytest.fixture
def letters(upstream: Upstream, tmp_path: Path) -> Iterator[DeadLetters]:
    """Three entries of 'inventory' recorded while its upstream failed; it has healed since."""
    found = DeadLetters(SQLiteStore(tmp_path / "l.db"), replay_rate=200.0)
    policy = seawall.Policy(
        "inventory", retry=None, breaker=None, telemetry=False, dead_letters=found
    )
    upstream.script("/stock", respond(503), respond(503), respond(503), then=respond(200))
    with HttpxSync().client(policy) as client:
        for n in range(3):
            client.request("PUT", f"{upstream.url}/stock?n={n}", content=b"5")
    found.flush()
    yield found
    found.close()


@pytest.mark.parametrize("kind", FRONTS)
def test_list_show_replay_and_resolve(kind: str, letters: DeadLetters, upstream: Upstream) -> None:
    with front(
        kind, read_token=READ, control_token=CONTROL, policies=[], dead_letters=letters
    ) as admin:
        listed = admin.request("GET", "/dead-letters?dependency=inventory", READ)
        assert listed.status_code == 200
        ids = [x["id"] for x in listed.json()["dead_letters"]]
        assert len(ids) == 3 and listed.json()["recorded"] == 3
        detail = admin.request("GET", f"/dead-letters/{ids[0]}", READ).json()
        assert detail["body"] == "5" and detail["replays"] == []
        assert admin.request("POST", f"/dead-letters/{ids[0]}/replay", READ).status_code == 403
        assert admin.request("GET", "/dead-letters").status_code == 401
        dry = admin.request(
            "POST",
            "/dead-letters/replay",
            CONTROL,
            content=json.dumps({"dependency": "inventory", "dry_run": True}),
        )
        assert dry.json()["matched"] == 3 and upstream.hits("/stock") == 3
        replayed = admin.request("POST", f"/dead-letters/{ids[0]}/replay", CONTROL)
        assert replayed.status_code == 200 and replayed.json()["state"] == "resolved"
        again = admin.request("POST", f"/dead-letters/{ids[0]}/replay", CONTROL)
        assert again.status_code == 409 and "is resolved" in again.json()["message"]
        resolved = admin.request(
            "POST",
            f"/dead-letters/{ids[1]}/resolve",
            CONTROL,
            content=json.dumps({"reason": "restocked by hand"}),
        )
        assert resolved.json()["resolution"] == "restocked by hand"
        bulk = admin.request("POST", "/dead-letters/replay", CONTROL, content="{}")
        assert bulk.json()["resolved"] == 1
        assert admin.request("GET", "/dead-letters/nope", READ).status_code == 404
        bad = admin.request("GET", "/dead-letters?state=lost", READ)
        assert bad.status_code == 400 and "state must be one of" in bad.json()["message"]
        no_reason = admin.request("POST", f"/dead-letters/{ids[2]}/resolve", CONTROL, content="{}")
        assert no_reason.status_code == 400


def test_an_asgi_replay_waiting_for_an_open_breaker_does_not_hold_the_event_loop(
    upstream: Upstream, tmp_path: Path
) -> None:
    import asyncio
    import time

    letters = DeadLetters(SQLiteStore(tmp_path / "w.db"), replay_rate=200.0)
    policy = seawall.Policy(
        "slowpay",
        retry=None,
        telemetry=False,
        breaker=seawall.CircuitBreaker(consecutive_failures=1, open_for=0.4),
        dead_letters=letters,
    )
    upstream.script("/pay", respond(503), then=respond(200))
    with HttpxSync().client(policy) as client:
        client.request("PUT", f"{upstream.url}/pay", content=b"1")  # opens the breaker
    letters.flush()
    [letter] = letters.list()
    app = seawall.admin.asgi_app(control_token=CONTROL, policies=[policy], dead_letters=letters)

    async def main() -> tuple[int, float, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as admin:
            started = time.monotonic()
            answer = await admin.post(
                f"/dead-letters/{letter.id}/replay",
                headers={"Authorization": f"Bearer {CONTROL}"},
            )
            took = time.monotonic() - started
        ticker.cancel()
        return answer.status_code, took, ticks

    try:
        status, took, ticks = asyncio.run(main())
    finally:
        letters.close()
    assert status == 200 and took >= 0.2  # it waited for the breaker...
    assert ticks >= 10  # ...while the loop went on (blocked, it would tick about once)
    assert upstream.hits("/pay") == 2
