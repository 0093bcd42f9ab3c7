"""Dead letters, replayed: end to end against the real upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import seawall
from integrations.upstream import Upstream, respond
from seawall.deadletters import DeadLetters, ReplayRefused, ReplayRequest, SQLiteStore
from tests.flavours import Flavour, HttpxSync

FAST = seawall.Retry(max_attempts=2, backoff=seawall.Backoff.constant(0.001), budget=None)


@pytest.fixture
def letters(tmp_path: Path) -> Iterator[DeadLetters]:
    def credentials(request: ReplayRequest) -> None:
        request.headers["Authorization"] = "Bearer fresh"  # never stored: put back at replay

    found = DeadLetters(
        SQLiteStore(tmp_path / "letters.db"), on_replay=credentials, replay_rate=200.0
    )
    yield found
    found.close()


def _headers(seen: object) -> dict[str, str]:
    return {k.lower(): v for k, v in seen.headers.items()}  # type: ignore[attr-defined]


def test_a_request_that_failed_is_replayed_once_the_upstream_heals(
    flavour: Flavour, upstream: Upstream, letters: DeadLetters
) -> None:
    policy = seawall.Policy(
        "orders", retry=FAST, breaker=None, telemetry=False, dead_letters=letters
    )
    upstream.script("/orders", respond(503), respond(503), then=respond(201, b"made"))
    with flavour.client(policy) as client:
        assert (
            client.request(
                "POST",
                f"{upstream.url}/orders?n=1",
                content=b'{"n": 1}',
                headers={"Authorization": "Bearer old"},
            ).status
            == 503
        )
    letters.flush()
    [letter] = letters.list()
    first_key = _headers(upstream.requests[0])["idempotency-key"]
    assert letter.idempotency_key == first_key and letter.state == "pending"

    outcome = letters.replay(letter.id)

    assert outcome.ok and outcome.status == 201
    replayed = upstream.requests[-1]
    assert (replayed.method, replayed.path, replayed.query, replayed.body) == (
        "POST",
        "/orders",
        "n=1",
        b'{"n": 1}',
    )
    assert _headers(replayed)["idempotency-key"] == first_key  # the upstream can recognise it
    assert _headers(replayed)["authorization"] == "Bearer fresh"
    after = letters.get(letter.id)
    assert after is not None and after.state == "resolved" and after.resolution == "replayed"
    assert [(r.ok, r.status) for r in after.replays] == [(True, 201)]
    with pytest.raises(ReplayRefused, match="is resolved"):
        letters.replay(letter.id)
    assert upstream.hits("/orders") == 3 and letters.replayed == 1


def test_a_failed_replay_is_kept_and_can_be_replayed_again(
    upstream: Upstream, letters: DeadLetters
) -> None:
    policy = seawall.Policy("p", retry=None, breaker=None, telemetry=False, dead_letters=letters)
    upstream.script("/job", respond(500), respond(502), then=respond(200))
    with HttpxSync().client(policy) as client:
        client.request("PUT", f"{upstream.url}/job")
    letters.flush()
    [letter] = letters.list()
    assert not letters.replay(letter.id).ok  # 502: still down
    again = letters.get(letter.id)
    assert again is not None and again.state == "failed"
    assert letters.store.count() == 1  # the failed replay recorded no second entry
    assert letters.replay(letter.id).ok
    final = letters.get(letter.id)
    assert final is not None and [(r.ok, r.status) for r in final.replays] == [
        (False, 502),
        (True, 200),
    ]


def test_a_replay_waits_while_the_breaker_is_open(upstream: Upstream, letters: DeadLetters) -> None:
    breaker = seawall.CircuitBreaker(min_calls=1, window=30.0, open_for=0.3)
    policy = seawall.Policy("b", retry=None, breaker=breaker, telemetry=False, dead_letters=letters)
    upstream.script("/b", respond(503), then=respond(200))
    with HttpxSync().client(policy) as client:
        client.request("GET", f"{upstream.url}/b")  # opens the breaker
    letters.flush()
    [letter] = letters.list()
    outcome = letters.replay(letter.id)
    assert outcome.ok and upstream.hits("/b") == 2  # it waited for the probe, not failed fast
    assert letters.store.count() == 1  # the breaker's rejections of the replay are not letters


def test_a_non_idempotent_request_without_a_key_is_replayed_only_when_asked(
    upstream: Upstream, tmp_path: Path
) -> None:
    letters = DeadLetters(SQLiteStore(tmp_path / "l.db"), generate_keys=False)
    policy = seawall.Policy("n", retry=None, breaker=None, telemetry=False, dead_letters=letters)
    upstream.script("/pay", respond(503), then=respond(200))
    with HttpxSync().client(policy) as client:
        client.request("POST", f"{upstream.url}/pay", content=b"1")
    letters.flush()
    [letter] = letters.list()
    assert letter.idempotency_key is None
    with pytest.raises(ReplayRefused, match="POST without an Idempotency-Key"):
        letters.replay(letter.id)
    assert letters.replay_many(dry_run=True).matched == 0
    assert letters.replay(letter.id, allow_unsafe=True).ok
    assert "idempotency-key" not in _headers(upstream.requests[-1])
    letters.close()


def test_bulk_replay_counts_first_then_replays_by_dependency_and_time(
    upstream: Upstream, letters: DeadLetters
) -> None:
    a = seawall.Policy("a", retry=None, breaker=None, telemetry=False, dead_letters=letters)
    b = seawall.Policy("b", retry=None, breaker=None, telemetry=False, dead_letters=letters)
    upstream.script("/x", respond(503), respond(503), respond(503), then=respond(200))
    with HttpxSync().client(a) as client_a, HttpxSync().client(b) as client_b:
        client_a.request("GET", f"{upstream.url}/x")
        client_a.request("GET", f"{upstream.url}/x")
        client_b.request("GET", f"{upstream.url}/x")
    letters.flush()
    newest = max(x.last_at for x in letters.list())
    assert letters.replay_many(dependency="a", dry_run=True).matched == 2
    assert letters.replay_many(dependency="a", until=newest, dry_run=True).matched == 2
    assert letters.replay_many(since=newest, dry_run=True).matched == 1
    assert upstream.hits("/x") == 3  # a dry run sends nothing
    done = letters.replay_many(dependency="a")
    assert (done.matched, done.resolved, done.failed) == (2, 2, 0)
    assert [x.state for x in letters.list()] == ["pending", "resolved", "resolved"]


def test_resolve_by_hand_needs_a_reason_and_ends_replays(
    upstream: Upstream, letters: DeadLetters
) -> None:
    policy = seawall.Policy("r", retry=None, breaker=None, telemetry=False, dead_letters=letters)
    upstream.script("/r", then=respond(503))
    with HttpxSync().client(policy) as client:
        client.request("GET", f"{upstream.url}/r")
    letters.flush()
    [letter] = letters.list()
    with pytest.raises(ValueError, match="reason must say why"):
        letters.resolve(letter.id, " ")
    letters.resolve(letter.id, "fixed upstream by hand")
    resolved = letters.get(letter.id)
    assert resolved is not None and resolved.resolution == "fixed upstream by hand"
    with pytest.raises(ReplayRefused, match="is resolved"):
        letters.replay(letter.id)
    with pytest.raises(KeyError, match="no dead letter 'nope'"):
        letters.replay("nope")
