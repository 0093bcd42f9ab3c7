"""`seawall dlq ...` on a real store, replaying against the real upstream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seawall
from integrations.upstream import Upstream, respond
from seawall import cli
from seawall.deadletters import DeadLetters, ReplayRequest, SQLiteStore
from tests.flavours import HttpxSync


def add_token(request: ReplayRequest) -> None:
    """The --on-replay hook of these tests."""
    request.headers["X-Api-Key"] = "from-the-hook"


def _record(upstream: Upstream, path: Path, count: int) -> list[str]:
    letters = DeadLetters(SQLiteStore(path))
    policy = seawall.Policy("shop", retry=None, breaker=None, telemetry=False, dead_letters=letters)
    with HttpxSync().client(policy) as client:
        for n in range(count):
            client.request("PUT", f"{upstream.url}/cart?n={n}", content=b"item")
    letters.close()
    return [x.id for x in SQLiteStore(path).list()]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["dlq", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_show_resolve_and_purge(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "l.db")
    upstream.script("/cart", then=respond(503))
    newest, older = _record(upstream, tmp_path / "l.db", 2)
    code, out, _ = _run(capsys, "--db", db, "list")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["ID", "DEPENDENCY", "STATE"]
    assert newest in out and older in out and "pending" in out
    code, out, _ = _run(capsys, "--db", db, "list", "--json")
    assert [x["id"] for x in json.loads(out)] == [newest, older]
    code, out, _ = _run(capsys, "--db", db, "show", older, "--json")
    assert json.loads(out)["body"] == "item" and json.loads(out)["url"].endswith("n=0")
    assert _run(capsys, "--db", db, "resolve", older, "--reason", "done by hand")[0] == 0
    code, out, _ = _run(capsys, "--db", db, "list", "--state", "resolved", "--json")
    assert [(x["id"], x["resolution"]) for x in json.loads(out)] == [(older, "done by hand")]
    code, _, err = _run(capsys, "--db", db, "purge")
    assert code == 1 and "give a filter" in err
    code, out, _ = _run(capsys, "--db", db, "purge", "--state", "resolved")
    assert out.strip() == "1 entries deleted"
    code, _, err = _run(capsys, "--db", db, "show", "missing")
    assert code == 1 and "no dead letter 'missing'" in err


def test_replay_one_and_all_with_a_dry_run_first(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "l.db")
    upstream.script("/cart", respond(503), respond(503), respond(503), then=respond(200))
    first = _record(upstream, tmp_path / "l.db", 3)[0]
    hook = f"{__name__}:add_token"
    code, out, _ = _run(capsys, "--db", db, "replay", first, "--on-replay", hook, "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "status": 200, "error": None}
    assert upstream.requests[-1].headers.get("x-api-key") == "from-the-hook"
    code, _, err = _run(capsys, "--db", db, "replay", first)
    assert code == 1 and "is resolved" in err
    code, out, _ = _run(capsys, "--db", db, "replay", "--all", "--dry-run", "--json")
    assert json.loads(out)["matched"] == 2 and upstream.hits("/cart") == 4
    code, out, _ = _run(
        capsys, "--db", db, "replay", "--all", "--dependency", "shop", "--rate", "100"
    )
    assert code == 0 and out.strip() == "replayed 2: 2 resolved, 0 failed, 0 refused"
    assert upstream.hits("/cart") == 6
