"""The behavioural suite: every invariant of DESIGN.md, proven against the real
fault-injecting upstream over real sockets, for every client flavour."""

from __future__ import annotations

import time

import pytest

import seawall
from integrations.upstream import echo, reset, respond, retry_after, slow_body
from seawall import events as ev

FAST = seawall.Backoff.constant(0.001)


def policy(**overrides) -> seawall.Policy:
    """A policy with test-sized delays; every part can be overridden."""
    options = dict(
        retry=seawall.Retry(max_attempts=3, backoff=FAST),
        breaker=None,
        bulkhead=seawall.Bulkhead(max_concurrent=50, max_queued=1000, queue_timeout=10),
        timeouts=seawall.Timeouts(attempt=5, total=10),
    )
    options.update(overrides)
    return seawall.Policy("upstream", **options)


# -- transparency ------------------------------------------------------------------------
def test_transparent_without_faults(flavour, upstream):
    upstream.script(
        "/t", respond(201, body=b"created", headers={"X-Thing": "1"}), respond(404, body=b"nope")
    )
    with flavour.client(policy()) as client:
        first = client.request("GET", upstream.url + "/t")
        second = client.request("GET", upstream.url + "/t")
        client.request("POST", upstream.url + "/echo-me", content=b"payload")
    assert (first.status, first.body, first.headers["x-thing"]) == (201, b"created", "1")
    assert (second.status, second.body) == (404, b"nope")
    assert upstream.hits("/t") == 2  # a 404 is not retried


def test_echo_round_trips_the_body(flavour, upstream):
    upstream.default = echo()
    with flavour.client(policy()) as client:
        result = client.request("PUT", upstream.url + "/e", content=b"x" * 100_000)
    assert result.status == 200 and result.body == b"x" * 100_000


def test_streaming_passes_through_unread(flavour, upstream):
    upstream.script("/s", slow_body(chunks=4, interval=0.05, chunk=b"abcd"))
    with flavour.client(policy()) as client:
        chunks = client.stream_chunks(upstream.url + "/s")
    assert b"".join(c for _, c in chunks) == b"abcd" * 4
    # the first bytes reached the caller well before the last ones were sent
    assert chunks[-1][0] - chunks[0][0] >= 0.1


# -- retries -----------------------------------------------------------------------------
def test_transient_statuses_are_retried(flavour, upstream):
    upstream.script("/r", respond(503), respond(502), respond(200, body=b"third time"))
    with flavour.client(policy()) as client:
        result = client.request("GET", upstream.url + "/r")
    assert (result.status, result.body) == (200, b"third time")
    assert upstream.hits("/r") == 3


def test_final_failure_is_returned_as_the_response(flavour, upstream):
    upstream.default = respond(503, body=b"down")
    with flavour.client(policy()) as client:
        result = client.request("GET", upstream.url + "/down")
    assert (result.status, result.body) == (503, b"down")
    assert upstream.hits("/down") == 3


def test_connection_errors_are_retried(flavour, upstream):
    upstream.script("/reset", reset(), reset())
    with flavour.client(policy()) as client:
        result = client.request("GET", upstream.url + "/reset")
    assert result.status == 200
    assert upstream.hits("/reset") == 3


def test_last_error_is_raised_in_the_clients_own_type(flavour, upstream):
    upstream.default = reset()
    with flavour.client(policy()) as client:
        with pytest.raises(client.transport_error) as info:
            client.request("GET", upstream.url + "/always-reset")
    assert not isinstance(info.value, seawall.ResilienceError)
    assert upstream.hits("/always-reset") == 3


def test_post_is_not_retried(flavour, upstream):
    upstream.default = respond(503)
    with flavour.client(policy()) as client:
        assert client.request("POST", upstream.url + "/pay", content=b"{}").status == 503
        assert client.request("PATCH", upstream.url + "/pay", content=b"{}").status == 503
    assert upstream.hits("/pay") == 2


def test_post_with_idempotency_key_or_opt_in_is_retried(flavour, upstream):
    upstream.default = respond(503)
    with flavour.client(policy()) as client:
        client.request(
            "POST", upstream.url + "/keyed", content=b"{}", headers={"Idempotency-Key": "k1"}
        )
    with flavour.client(
        policy(retry=seawall.Retry(max_attempts=2, backoff=FAST, unsafe_methods=True))
    ) as client:
        client.request("POST", upstream.url + "/opted", content=b"{}")
    assert upstream.hits("/keyed") == 3
    assert upstream.hits("/opted") == 2
    assert {r.body for r in upstream.requests} == {b"{}"}


def test_read_timeout_on_post_is_not_retried(flavour, upstream):
    upstream.default = respond(200, delay=0.3)
    with flavour.client(policy(timeouts=seawall.Timeouts(attempt=0.05, total=5))) as client:
        with pytest.raises(client.timeout_error):
            client.request("POST", upstream.url + "/slow-pay", content=b"{}")
    assert upstream.hits("/slow-pay") == 1


def test_unsent_request_is_retried_whatever_the_method(flavour, upstream):
    closed_port = "http://127.0.0.1:9"  # discard port: nothing listens there
    starts = []
    p = policy()
    p.subscribe(lambda e: starts.append(e) if isinstance(e, ev.AttemptStarted) else None)
    with flavour.client(p) as client:
        with pytest.raises(client.transport_error):
            client.request("POST", closed_port + "/x", content=b"{}")
    assert len(starts) == 3


def test_a_body_that_cannot_be_replayed_is_never_resent(flavour, upstream):
    upstream.default = respond(503)
    with flavour.client(policy()) as client:
        result = client.request(
            "PUT", upstream.url + "/gen", content=flavour.one_shot_body(b"only-once")
        )
    assert result.status == 503
    assert upstream.hits("/gen") == 1
    assert [r.body for r in upstream.requests] == [b"only-once"]


def test_file_like_body_is_never_resent_empty(flavour, upstream):
    if flavour.file_body is None:
        pytest.skip(f"{flavour.name} cannot send a file-like body at all")
    upstream.default = respond(503)
    with flavour.client(policy()) as client:
        client.request("PUT", upstream.url + "/file", content=flavour.file_body(b"file-body"))
    bodies = [r.body for r in upstream.requests]
    assert bodies and all(body == b"file-body" for body in bodies), bodies


def test_retry_after_is_honoured(flavour, upstream):
    upstream.script("/ra", retry_after(503, "1"), respond(200))
    with flavour.client(policy()) as client:
        started = time.monotonic()
        result = client.request("GET", upstream.url + "/ra")
        elapsed = time.monotonic() - started
    assert result.status == 200 and upstream.hits("/ra") == 2
    assert elapsed >= 0.99


def test_retry_after_beyond_the_cap_or_the_deadline_fails_fast(flavour, upstream):
    upstream.default = retry_after(429, "30")
    capped = policy(retry=seawall.Retry(max_attempts=3, backoff=FAST, max_retry_after=10))
    with flavour.client(capped) as client:
        started = time.monotonic()
        assert client.request("GET", upstream.url + "/cap").status == 429
    upstream.default = retry_after(503, "3")
    with flavour.client(policy(timeouts=seawall.Timeouts(attempt=1, total=2))) as client:
        assert client.request("GET", upstream.url + "/deadline").status == 503
        elapsed = time.monotonic() - started
    assert upstream.hits("/cap") == 1 and upstream.hits("/deadline") == 1
    assert elapsed < 1.0


# -- timeouts ----------------------------------------------------------------------------
def test_attempt_timeout_really_cuts_a_slow_attempt(flavour, upstream):
    upstream.script("/slow", respond(200, delay=1.0), respond(200, body=b"quick"))
    with flavour.client(policy(timeouts=seawall.Timeouts(attempt=0.1, total=5))) as client:
        started = time.monotonic()
        result = client.request("GET", upstream.url + "/slow")
        elapsed = time.monotonic() - started
    assert result.body == b"quick" and upstream.hits("/slow") == 2
    assert elapsed < 0.8


def test_total_deadline_bounds_the_whole_request(flavour, upstream):
    upstream.default = respond(200, delay=1.0)
    tight = policy(
        retry=seawall.Retry(max_attempts=10, backoff=FAST),
        timeouts=seawall.Timeouts(attempt=0.1, total=0.25),
    )
    with flavour.client(tight) as client:
        started = time.monotonic()
        with pytest.raises(seawall.DeadlineExceeded) as info:
            client.request("GET", upstream.url + "/forever")
        elapsed = time.monotonic() - started
    assert isinstance(info.value, client.timeout_error)  # existing except clauses still work
    assert 0.2 <= elapsed < 0.7
    assert upstream.hits("/forever") <= 3


# -- circuit breaker ---------------------------------------------------------------------
def test_breaker_opens_rejects_then_probes_and_closes(flavour, upstream):
    upstream.script("/b", respond(500), respond(500), respond(500), then=respond(200))
    transitions = []
    p = policy(retry=None, breaker=seawall.CircuitBreaker(consecutive_failures=3, open_for=0.2))
    p.subscribe(
        lambda e: (
            transitions.append((e.from_state.value, e.to_state.value))
            if isinstance(e, ev.CircuitTransition)
            else None
        )
    )
    with flavour.client(p) as client:
        for _ in range(3):
            assert client.request("GET", upstream.url + "/b").status == 500
        with pytest.raises(seawall.CircuitOpenError) as info:
            client.request("GET", upstream.url + "/b")
        assert isinstance(info.value, client.transport_error)
        assert upstream.hits("/b") == 3  # rejected without reaching the upstream
        time.sleep(0.25)
        assert client.request("GET", upstream.url + "/b").status == 200  # the probe
        assert client.request("GET", upstream.url + "/b").status == 200
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_retries_stop_when_the_breaker_opens(flavour, upstream):
    upstream.default = respond(503)
    p = policy(
        retry=seawall.Retry(max_attempts=5, backoff=FAST),
        breaker=seawall.CircuitBreaker(consecutive_failures=2, open_for=30),
    )
    with flavour.client(p) as client:
        assert client.request("GET", upstream.url + "/x").status == 503
    assert upstream.hits("/x") == 2


# -- bulkhead ----------------------------------------------------------------------------
def test_upstream_never_sees_more_than_the_bulkhead_allows(flavour, upstream):
    upstream.default = respond(200, delay=0.2)
    p = policy(bulkhead=seawall.Bulkhead(max_concurrent=4, max_queued=100, queue_timeout=10))
    with flavour.client(p) as client:
        results = client.many(12, "GET", upstream.url + "/c")
    assert all(isinstance(r, object) and getattr(r, "status", None) == 200 for r in results), (
        results
    )
    assert upstream.max_in_flight == 4


def test_retries_hold_their_slot(flavour, upstream):
    upstream.default = respond(503, delay=0.05)
    p = policy(bulkhead=seawall.Bulkhead(max_concurrent=3, max_queued=100, queue_timeout=10))
    with flavour.client(p) as client:
        client.many(9, "GET", upstream.url + "/c")
    assert upstream.hits("/c") == 27
    assert upstream.max_in_flight == 3


def test_bulkhead_rejects_when_full(flavour, upstream):
    upstream.default = respond(200, delay=0.6)  # every caller arrives while both slots are held
    p = policy(bulkhead=seawall.Bulkhead(max_concurrent=2, max_queued=0))
    with flavour.client(p) as client:
        results = client.many(6, "GET", upstream.url + "/full")
    rejected = [r for r in results if isinstance(r, seawall.BulkheadFullError)]
    assert len(rejected) == 4 and all(isinstance(r, client.transport_error) for r in rejected)
    assert {r.reason for r in rejected} == {"queue_full"}
    assert upstream.hits("/full") == 2
    state = p.dependency("upstream").bulkhead
    assert (state.active, state.queued) == (0, 0)


def test_bulkhead_queue_timeout(flavour, upstream):
    upstream.default = respond(200, delay=0.6)
    p = policy(bulkhead=seawall.Bulkhead(max_concurrent=1, max_queued=5, queue_timeout=0.05))
    with flavour.client(p) as client:
        results = client.many(3, "GET", upstream.url + "/q")
    reasons = sorted(getattr(r, "reason", "ok") for r in results)
    assert reasons == ["ok", "queue_timeout", "queue_timeout"]


# -- connections, outcomes, fallback -----------------------------------------------------
def test_retried_responses_are_closed_no_connection_leaks(flavour, upstream):
    upstream.script("/leak", *[respond(503, body=b"x" * 50_000)] * 4, then=respond(200))
    p = policy(
        retry=seawall.Retry(max_attempts=5, backoff=FAST),
        pool=seawall.Pool(max_connections=1, max_keepalive=1),
    )
    with flavour.client(p) as client:
        # with one connection, an unclosed 503 would starve the next attempt
        assert client.request("GET", upstream.url + "/leak").status == 200
        assert client.request("GET", upstream.url + "/leak").status == 200
        open_now = client.open_connections()
    assert upstream.hits("/leak") == 6
    assert open_now in (None, 1)


def test_one_terminal_outcome_and_every_counted_attempt_reached_the_upstream(flavour, upstream):
    upstream.script(
        "/o",
        respond(503),
        reset(),
        respond(200),
        respond(500),
        respond(500),
        respond(500),
        then=respond(200),
    )
    seen = []
    p = policy()
    p.subscribe(seen.append)
    with flavour.client(p) as client:
        for _ in range(3):
            client.request("GET", upstream.url + "/o")
    finished = [e for e in seen if isinstance(e, ev.RequestFinished)]
    attempts = [e for e in seen if isinstance(e, ev.AttemptStarted)]
    assert [e.outcome for e in finished] == ["success", "failure", "success"]
    assert len(attempts) == upstream.hits("/o") == 7


def test_fallback_turns_failure_and_rejection_into_a_response(flavour, upstream):
    if flavour.response is None:
        pytest.skip(f"{flavour.name} offers no public way to build a response by hand")
    upstream.default = respond(500)
    calls = []

    def fallback(ctx: seawall.FallbackContext):
        calls.append(type(ctx.error).__name__ if ctx.error else ctx.response is not None)
        return flavour.response(200, b"from cache")

    p = policy(
        retry=None,
        breaker=seawall.CircuitBreaker(consecutive_failures=1, open_for=30),
        fallback=fallback,
        pool=seawall.Pool(max_connections=1),
    )
    outcomes = []
    p.subscribe(lambda e: outcomes.append(e.outcome) if isinstance(e, ev.RequestFinished) else None)
    with flavour.client(p) as client:
        first = client.request("GET", upstream.url + "/f")  # a 500: replaced (and closed)
        second = client.request("GET", upstream.url + "/f")  # breaker open: replaced
    assert (first.status, first.body) == (second.status, second.body) == (200, b"from cache")
    assert calls == [True, "CircuitOpenError"]
    assert outcomes == ["fallback", "fallback"]
    assert upstream.hits("/f") == 1


def test_fallback_returning_none_keeps_the_original_outcome(flavour, upstream):
    upstream.default = respond(500)
    p = policy(retry=None, fallback=lambda ctx: None)
    with flavour.client(p) as client:
        assert client.request("GET", upstream.url + "/keep").status == 500


# -- a decision that raises --------------------------------------------------------------
# One connection and a short attempt timeout: a response left unclosed would make the next
# request wait for the pool and fail within a second.
ONE_CONNECTION = dict(
    pool=seawall.Pool(max_connections=1, max_keepalive=1),
    timeouts=seawall.Timeouts(attempt=1.0, total=3.0),
)


def _finished(p: seawall.Policy) -> list[ev.RequestFinished]:
    seen: list[ev.RequestFinished] = []
    p.subscribe(seen.append, ev.RequestFinished)
    return seen


def test_an_unreadable_retry_after_is_absent_and_leaks_nothing(flavour, upstream):
    upstream.script(
        "/ra",
        retry_after(503, "\u00b2"),
        retry_after(503, "\uff11"),
        then=respond(200, body=b"done"),
    )
    p = policy(**ONE_CONNECTION)
    finished = _finished(p)
    with flavour.client(p) as client:
        first = client.request("GET", upstream.url + "/ra")  # retried with its own backoff
        second = client.request("GET", upstream.url + "/ra")  # the connection came back
    assert (first.status, first.body, second.status) == (200, b"done", 200)
    assert [e.outcome for e in finished] == ["success", "success"]
    assert upstream.hits("/ra") == 4


class PredicateBug(Exception):
    pass


def test_a_raising_predicate_propagates_after_the_response_is_closed(flavour, upstream):
    upstream.script("/p", respond(503, body=b"x" * 50_000), then=respond(200))
    bug = PredicateBug("the user's predicate failed")

    def predicate(info: seawall.AttemptInfo) -> bool | None:
        if info.status == 503:
            raise bug
        return None

    p = policy(
        retry=seawall.Retry(max_attempts=3, backoff=FAST, predicate=predicate), **ONE_CONNECTION
    )
    finished = _finished(p)
    with flavour.client(p) as client:
        with pytest.raises(PredicateBug):  # the user's own code: its own exception
            client.request("GET", upstream.url + "/p")
        assert client.request("GET", upstream.url + "/p").status == 200  # not a pool timeout
    assert [(e.outcome, e.error) for e in finished] == [("failure", bug), ("success", None)]
    assert upstream.hits("/p") == 2


def test_a_raising_fallback_propagates_after_the_response_is_closed(flavour, upstream):
    upstream.script("/fb", respond(500, body=b"x" * 50_000), then=respond(200))
    bug = PredicateBug("the user's fallback failed")

    def fallback(ctx: seawall.FallbackContext) -> None:
        raise bug

    p = policy(retry=None, fallback=fallback, **ONE_CONNECTION)
    finished = _finished(p)
    with flavour.client(p) as client:
        with pytest.raises(PredicateBug):
            client.request("GET", upstream.url + "/fb")
        assert client.request("GET", upstream.url + "/fb").status == 200
    assert [(e.outcome, e.error) for e in finished] == [("failure", bug), ("success", None)]
