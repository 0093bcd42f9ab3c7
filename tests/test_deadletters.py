"""Dead letters, recorded: what is kept (and never kept), caps, and the request path."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import seawall
from integrations.upstream import Upstream, respond
from seawall.deadletters import DeadLetters, Query, SQLiteStore
from seawall.deadletters.letter import Letter
from tests.flavours import Flavour

FAST = seawall.Retry(max_attempts=2, backoff=seawall.Backoff.constant(0.001), budget=None)
SECRETS = (
    "pw-SECRET-1",
    "bearer-SECRET-2",
    "cookie-SECRET-3",
    "apikey-SECRET-4",
    "sig-SECRET-5",
    "token-SECRET-6",
)


@pytest.fixture
def letters(tmp_path: Path) -> Iterator[DeadLetters]:
    found = DeadLetters(SQLiteStore(tmp_path / "letters.db"))
    yield found
    found.close()


def policy(letters: DeadLetters, **options: object) -> seawall.Policy:
    options.setdefault("retry", FAST)
    options.setdefault("breaker", None)
    return seawall.Policy("dep", dead_letters=letters, telemetry=False, **options)  # type: ignore[arg-type]


def test_a_failure_after_the_last_attempt_is_recorded_with_what_replay_needs(
    flavour: Flavour, upstream: Upstream, letters: DeadLetters
) -> None:
    upstream.script("/orders", then=respond(503, b"down"))
    with flavour.client(policy(letters)) as client:
        assert (
            client.request(
                "PUT",
                f"{upstream.url}/orders?id=7",
                content=b'{"n": 7}',
                headers={"Content-Type": "application/json"},
            ).status
            == 503
        )
    letters.flush()
    [letter] = letters.store.list()
    assert (letter.dependency, letter.method, letter.reason, letter.status, letter.attempts) == (
        "dep",
        "PUT",
        "failure",
        503,
        2,
    )
    assert letter.url == f"{upstream.url}/orders?id=7"
    assert letter.body == b'{"n": 7}' and letter.replayable and letter.state == "pending"
    assert ("content-type", "application/json") in {(k.lower(), v) for k, v in letter.headers}
    assert letter.first_at <= letter.last_at and letters.recorded == 1


def test_secrets_never_reach_the_database_file(
    flavour: Flavour, upstream: Upstream, tmp_path: Path
) -> None:
    letters = DeadLetters(SQLiteStore(tmp_path / "letters.db"), header_denylist=["X-Private"])
    upstream.script("/pay", then=respond(500))
    url = upstream.url.replace("http://", "http://user:pw-SECRET-1@")
    with flavour.client(policy(letters)) as client:
        client.request(
            "POST",
            f"{url}/pay?sig=sig-SECRET-5&token=token-SECRET-6&keep=visible",
            content=b"body-marker",
            headers={
                "Cookie": "session=cookie-SECRET-3",
                "X-Api-Key": "apikey-SECRET-4",
                "X-Private": "private-SECRET-7",
            },
        )
        # (aiohttp refuses user-info and an Authorization header together: two requests)
        client.request(
            "POST",
            f"{upstream.url}/pay",
            content=b"body-marker",
            headers={"Authorization": "Bearer bearer-SECRET-2"},
        )
    letters.flush()
    letter = letters.store.list()[1]
    assert letter.body == b"body-marker" and "keep=visible" in letter.url
    letters.close()
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert b"body-marker" in stored  # the entry is in these bytes...
    basic = base64.b64encode(b"user:pw-SECRET-1")
    for secret in (*SECRETS, "private-SECRET-7"):  # ...its secrets are not
        assert secret.encode() not in stored, secret
    assert basic not in stored


def test_the_store_is_private_to_its_owner(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "letters.db")
    store.insert([_letter("a", 1.0)], max_entries=10, oldest=0.0)
    for path in tmp_path.iterdir():  # the database and its WAL files
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    db = sqlite3.connect(tmp_path / "letters.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_full_synchronous_is_opt_in_and_anything_else_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "a.db", synchronous="FULL").close()
    with pytest.raises(ValueError, match="synchronous must be 'NORMAL' or 'FULL', not 'OFF'"):
        SQLiteStore(tmp_path / "b.db", synchronous="OFF")
    with pytest.raises(TypeError, match="busy_timeout must be a number of seconds, not str"):
        SQLiteStore(tmp_path / "c.db", busy_timeout="5")  # type: ignore[arg-type]


def test_what_is_not_recorded_by_default(upstream: Upstream, letters: DeadLetters) -> None:
    """A 4xx that is not retried ends as a success; a full bulkhead is load shedding; statuses
    outside `statuses` are not kept."""
    from tests.flavours import HttpxSync

    upstream.script("/missing", then=respond(404))
    upstream.script("/teapot", then=respond(500))
    strict = DeadLetters(letters.store, statuses=[503])
    with HttpxSync().client(policy(letters)) as client:
        assert client.request("POST", f"{upstream.url}/missing").status == 404
    with HttpxSync().client(policy(strict)) as client:
        assert client.request("GET", f"{upstream.url}/teapot").status == 500
    letters.flush()
    strict.flush()
    assert letters.store.count() == 0


def test_breaker_and_deadline_rejections_are_recorded(
    upstream: Upstream, letters: DeadLetters
) -> None:
    from tests.flavours import HttpxSync

    upstream.script("/flaky", then=respond(503))
    upstream.script("/slow", then=respond(503, delay=0.3))
    breaker = seawall.CircuitBreaker(min_calls=2, window=30.0, open_for=60.0)
    with HttpxSync().client(policy(letters, retry=None, breaker=breaker)) as client:
        for _ in range(3):
            try:
                client.request("GET", f"{upstream.url}/flaky")
            except seawall.CircuitOpenError:
                pass
    timeouts = seawall.Timeouts(attempt=None, total=0.05)
    with (
        HttpxSync().client(policy(letters, retry=None, timeouts=timeouts)) as client,
        pytest.raises(seawall.DeadlineExceeded),
    ):
        client.request("GET", f"{upstream.url}/slow")
    letters.flush()
    reasons = sorted(x.reason for x in letters.store.list())
    assert reasons == ["breaker", "deadline", "failure", "failure"]
    [rejected] = letters.store.list(Query(dependency="dep"), limit=2)[1:]
    assert rejected.reason == "breaker" and "CircuitOpenError" in (rejected.error or "")


def test_a_large_or_streamed_body_is_kept_as_metadata_only(
    flavour: Flavour, upstream: Upstream, tmp_path: Path
) -> None:
    letters = DeadLetters(SQLiteStore(tmp_path / "letters.db"), body_cap=8)
    upstream.script("/big", then=respond(503))
    with flavour.client(policy(letters, retry=None)) as client:
        client.request("POST", f"{upstream.url}/big", content=b"0123456789")
        client.request("POST", f"{upstream.url}/big", content=flavour.one_shot_body(b"abc"))
    letters.flush()
    streamed, large = letters.store.list()
    assert (large.body, large.body_size, large.replayable) == (None, 10, False)
    assert (streamed.body, streamed.replayable) == (None, False)
    letters.close()


def test_a_non_idempotent_request_is_sent_with_a_generated_key_that_the_letter_keeps(
    flavour: Flavour, upstream: Upstream, letters: DeadLetters
) -> None:
    upstream.script("/charge", then=respond(503))
    with flavour.client(policy(letters, retry=None)) as client:
        client.request("POST", f"{upstream.url}/charge", content=b"x")
        client.request(
            "POST", f"{upstream.url}/charge", content=b"y", headers={"Idempotency-Key": "mine-1"}
        )
        client.request("GET", f"{upstream.url}/charge")
    letters.flush()
    sent = [
        {k.lower(): v for k, v in seen.headers.items()}.get("idempotency-key")
        for seen in upstream.requests
    ]
    stored = [x.idempotency_key for x in reversed(letters.store.list())]
    assert sent[0] is not None and len(sent[0]) == 32
    assert sent[1:] == ["mine-1", None] and stored == sent


def test_a_generated_key_does_not_make_a_post_retryable_but_the_callers_own_key_does(
    flavour: Flavour, upstream: Upstream, letters: DeadLetters
) -> None:
    # seawall's key is there so a replay can be recognised; the upstream may not honour keys,
    # so retrying on the strength of it could apply the POST twice
    upstream.script("/pay", respond(503), then=respond(200))
    with flavour.client(policy(letters)) as client:
        assert client.request("POST", f"{upstream.url}/pay", content=b"1").status == 503
        assert upstream.hits("/pay") == 1  # not retried
        assert "idempotency-key" in upstream.requests[-1].headers  # though it was sent a key
        upstream.script("/pay", respond(503), then=respond(200))
        mine = {"Idempotency-Key": "caller-7"}
        assert (
            client.request("POST", f"{upstream.url}/pay", content=b"2", headers=mine).status == 200
        )
        assert upstream.hits("/pay") == 3  # the caller's key: retried, as without dead letters
    letters.flush()
    [kept] = letters.store.list()
    assert kept.attempts == 1 and kept.idempotency_key is not None


def test_caps_drop_the_oldest_on_insert_and_purge_by_query(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "letters.db")
    store.insert([_letter(str(n), float(n)) for n in range(5)], max_entries=3, oldest=0.0)
    assert [x.id for x in store.list()] == ["4", "3", "2"]
    store.insert([_letter("5", 5.0)], max_entries=10, oldest=3.5)  # age: last seen before 3.5
    assert [x.id for x in store.list()] == ["5", "4"]
    assert store.purge(Query(until=5.0)) == 1 and [x.id for x in store.list()] == ["5"]
    store.close()


def test_with_the_writer_stalled_requests_are_not_held_and_letters_are_dropped(
    upstream: Upstream, tmp_path: Path
) -> None:
    from tests.flavours import HttpxSync

    path = tmp_path / "letters.db"
    letters = DeadLetters(SQLiteStore(path, busy_timeout=30.0), queue_size=2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the writer waits up to its 30 s busy_timeout
    upstream.script("/down", then=respond(503))
    started = time.monotonic()
    with HttpxSync().client(policy(letters, retry=None)) as client:
        for _ in range(20):
            assert client.request("GET", f"{upstream.url}/down").status == 503
    took = time.monotonic() - started
    assert took < 10.0  # far below one busy_timeout: no request waited for the writer
    # kept: those in the queue (2) and the batch the writer took before it blocked (<= 1 + 2)
    assert letters.dropped >= 20 - 2 - 3
    holder.execute("ROLLBACK")
    letters.flush()
    assert letters.recorded == 20 - letters.dropped == letters.store.count()
    letters.close()


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"store must be a path to an SQLite file, .* got int$"):
        DeadLetters(3)  # type: ignore[arg-type]
    store = SQLiteStore(tmp_path / "x.db")
    with pytest.raises(
        ValueError, match=r"record_on must be a collection of breaker, .* got \['retry'\]"
    ):
        DeadLetters(store, record_on=["retry"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="max_entries must be a whole number >= 1, got float 1.5"):
        DeadLetters(store, max_entries=1.5)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"statuses must be a collection of HTTP status codes .* got \[42\]"
    ):
        DeadLetters(store, statuses=[42])
    with pytest.raises(
        ValueError, match="replay_rate must be a number of replays a second > 0, got 0"
    ):
        DeadLetters(store, replay_rate=0)
    with pytest.raises(TypeError, match="on_replay must be a callable"):
        DeadLetters(store, on_replay="add-token")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_age must be a number of seconds > 0, got inf"):
        DeadLetters(store, max_age=float("inf"))
    with pytest.raises(TypeError, match="dead_letters must be a seawall.DeadLetters"):
        seawall.Policy(dead_letters="letters.db")  # type: ignore[arg-type]


def _letter(letter_id: str, at: float) -> Letter:
    return Letter(
        id=letter_id,
        dependency="dep",
        method="GET",
        url="http://h/",
        headers=(),
        body=b"",
        body_size=0,
        replayable=True,
        reason="failure",
        status=503,
        error=None,
        attempts=1,
        first_at=at,
        last_at=at,
    )


def test_kill_9_while_writing_under_load_keeps_every_committed_entry(
    upstream: Upstream, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    path = tmp_path / "letters.db"
    upstream.script("/crash", then=respond(503))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.deadletters_writer", str(path), upstream.url],
        cwd=Path(__file__).parent.parent,
    )
    try:
        committed: dict[str, tuple[str, bytes]] = {}
        deadline = time.monotonic() + 60.0

        def both_wrote() -> bool:  # threads and asyncio tasks
            urls = [url for url, _ in committed.values()]
            return any("n=t" in url for url in urls) and any("n=a" in url for url in urls)

        while (len(committed) < 300 or not both_wrote()) and time.monotonic() < deadline:
            time.sleep(0.05)
            if path.exists():
                reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
                try:  # what another connection sees is committed
                    committed = {
                        row[0]: (row[1], row[2])
                        for row in reader.execute("SELECT id, url, body FROM dead_letters")
                    }
                except sqlite3.OperationalError:
                    pass  # (the schema is not there yet)
                reader.close()
        assert len(committed) >= 300 and both_wrote(), f"{len(committed)} letters in 60 s"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10.0)
    assert child.returncode == -signal.SIGKILL
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = {
        row[0]: (row[1], row[2]) for row in db.execute("SELECT id, url, body FROM dead_letters")
    }
    db.close()
    assert committed.items() <= rows.items()
    for url, body in rows.values():  # every entry whole: its body names its own URL
        assert body == f"letter {url.rsplit('n=', 1)[1]}".encode()
    threads = sum(1 for url, _ in rows.values() if "n=t" in url)
    assert 0 < threads < len(rows)  # both threads and asyncio wrote
    store = SQLiteStore(path)  # and the store opens cleanly
    assert store.count() == len(rows)
    store.close()
