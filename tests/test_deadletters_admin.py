"""The admin API's dead-letter routes over the three fronts, with the admin's auth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

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
