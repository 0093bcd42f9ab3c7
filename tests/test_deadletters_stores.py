"""Both stores pass one suite: SQLite, and PostgreSQL on a real server the test starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import seawall
from integrations.upstream import Upstream, respond
from seawall.deadletters import DeadLetters, Query, ReplayOutcome, SQLiteStore
from seawall.deadletters.letter import Letter
from tests.flavours import HttpxSync
from tests.postgres_server import postgres


@pytest.fixture(scope="module")
def _postgres_dsn() -> Iterator[str]:
    with postgres() as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        found: Any = SQLiteStore(tmp_path / "letters.db")
    else:
        from seawall.deadletters.postgres import PostgresStore

        found = PostgresStore(request.getfixturevalue("_postgres_dsn"))
        found.purge()  # one server for the module: each test starts empty
    yield found
    found.close()


def _letter(letter_id: str, at: float, dependency: str = "dep", **more: Any) -> Letter:
    values: dict[str, Any] = dict(
        id=letter_id,
        dependency=dependency,
        method="POST",
        url="http://h/x?a=1",
        headers=(("content-type", "text/plain"), ("x-n", letter_id)),
        body=b"\x00body\xff",
        body_size=6,
        replayable=True,
        reason="failure",
        status=503,
        error="boom",
        attempts=3,
        first_at=at - 1,
        last_at=at,
        trace_id="a" * 32,
        span_id="b" * 16,
        idempotency_key="k-" + letter_id,
    )
    values.update(more)
    return Letter(**values)


def test_an_entry_comes_back_as_it_went_in(store: Any) -> None:
    letter = _letter("one", 100.5)
    store.insert([letter], max_entries=10, oldest=0.0)
    assert store.get("one") == letter
    assert store.get("missing") is None


def test_caps_drop_the_oldest_on_insert(store: Any) -> None:
    store.insert([_letter(str(n), float(n)) for n in range(5)], max_entries=3, oldest=0.0)
    assert [x.id for x in store.list()] == ["4", "3", "2"]
    store.insert([_letter("5", 5.0)], max_entries=10, oldest=3.5)
    assert [x.id for x in store.list()] == ["5", "4"]


def test_queries_counts_and_purge(store: Any) -> None:
    store.insert(
        [_letter("a1", 1.0, "a"), _letter("a2", 2.0, "a"), _letter("b3", 3.0, "b")],
        max_entries=10,
        oldest=0.0,
    )
    assert [x.id for x in store.list(Query(dependency="a"))] == ["a2", "a1"]
    assert [x.id for x in store.list(Query(since=2.0, until=3.0))] == ["a2"]
    assert store.count(Query(dependency="b")) == 1 and store.count() == 3
    assert store.list(limit=1)[0].id == "b3"
    assert store.move("a1", ("pending",), "resolved", "by hand")
    assert store.counts() == {("a", "pending"): 1, ("a", "resolved"): 1, ("b", "pending"): 1}
    assert store.purge(Query(state="resolved")) == 1 and store.count() == 2


def test_a_state_moves_only_from_the_states_given(store: Any) -> None:
    store.insert([_letter("x", 1.0)], max_entries=10, oldest=0.0)
    assert store.move("x", ("pending", "failed"), "replaying")
    assert not store.move("x", ("pending", "failed"), "replaying")  # a second replay: refused
    store.add_replay("x", ReplayOutcome(2.0, False, 502, None))
    assert store.move("x", ("replaying",), "failed")
    store.add_replay("x", ReplayOutcome(3.0, True, 200, None))
    got = store.get("x")
    assert got is not None and got.state == "failed" and got.resolution is None
    assert [(r.ok, r.status) for r in got.replays] == [(False, 502), (True, 200)]
    assert store.purge() == 1 and store.get("x") is None  # (its replays go with it)


def test_recorded_and_replayed_end_to_end(store: Any, upstream: Upstream) -> None:
    letters = DeadLetters(store, replay_rate=200.0)
    policy = seawall.Policy("s", retry=None, breaker=None, telemetry=False, dead_letters=letters)
    upstream.script("/s", respond(503), then=respond(200))
    with HttpxSync().client(policy) as client:
        client.request("POST", f"{upstream.url}/s?token=t-SECRET", content=b"payload")
    letters.flush()
    [letter] = store.list()
    assert "t-SECRET" not in letter.url and letter.body == b"payload"
    assert letters.replay(letter.id).ok
    assert upstream.requests[-1].body == b"payload"
    assert store.get(letter.id).state == "resolved"
    letters.close()
