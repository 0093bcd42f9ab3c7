"""requests-only behaviour: threads, body reading inside the attempt, rewinding, pool waits."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import seawall
import seawall.requests
from integrations.upstream import respond, truncate

FAST = seawall.Backoff.constant(0.001)


def test_one_session_from_32_threads_keeps_every_invariant(upstream):
    upstream.script("/t", *[respond(503, delay=0.01)] * 20, then=respond(200, delay=0.01))
    finished = []
    policy = seawall.Policy(
        "threads",
        retry=seawall.Retry(max_attempts=3, backoff=FAST, budget=None),
        breaker=None,
        bulkhead=seawall.Bulkhead(max_concurrent=8, max_queued=100, queue_timeout=10),
    )
    policy.subscribe(
        lambda e: (
            finished.append(e.outcome) if isinstance(e, seawall.events.RequestFinished) else None
        )
    )
    with seawall.requests.session(policy) as session:
        with ThreadPoolExecutor(32) as pool:
            statuses = list(
                pool.map(
                    lambda _: session.get(upstream.url + "/t", timeout=5).status_code, range(64)
                )
            )
    assert len(finished) == 64  # one terminal outcome each
    assert statuses.count(200) + statuses.count(503) == 64
    assert upstream.max_in_flight <= 8
    state = policy.dependency("threads").bulkhead
    assert (state.active, state.queued) == (0, 0)
    # each of the 20 scripted 503s was retried, except the last one of each request that ran
    # out of attempts: the upstream saw exactly the attempts made, no more
    assert upstream.hits("/t") == 64 + 20 - statuses.count(503)


def test_body_read_failures_are_retried_when_not_streaming(upstream):
    upstream.script("/body", truncate(declared=100, sent=10), then=respond(200, body=b"whole"))
    policy = seawall.Policy("body", retry=seawall.Retry(backoff=FAST))
    with seawall.requests.session(policy) as session:
        assert session.get(upstream.url + "/body", timeout=5).content == b"whole"
    assert upstream.hits("/body") == 2


def test_streamed_response_is_returned_unread(upstream):
    upstream.script("/stream", truncate(declared=100, sent=10))
    with seawall.requests.session(seawall.Policy("stream")) as session:
        response = session.get(upstream.url + "/stream", stream=True, timeout=5)
        assert response.status_code == 200  # headers only; the body is the caller's to read
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            response.content  # noqa: B018
    assert upstream.hits("/stream") == 1


def test_file_body_is_rewound_and_resent_whole(upstream):
    upstream.script("/file", respond(503), respond(503), then=respond(200))
    body = io.BytesIO(b"prefix|the-body")
    body.seek(7)  # requests remembers where the body started
    with seawall.requests.session(seawall.Policy("file", retry=seawall.Retry(backoff=FAST))) as s:
        assert s.put(upstream.url + "/file", data=body, timeout=5).status_code == 200
    assert [r.body for r in upstream.requests] == [b"the-body"] * 3


def test_waiting_for_a_pooled_connection_is_bounded(upstream):
    upstream.default = respond(200, delay=0.5)
    policy = seawall.Policy(
        "pool",
        retry=None,
        pool=seawall.Pool(max_connections=1),
        timeouts=seawall.Timeouts(attempt=0.1, total=1),
    )
    with seawall.requests.session(policy) as session:
        with ThreadPoolExecutor(2) as pool:

            def get(_):
                try:  # the pool wait follows the connect timeout: well under the 0.1 s read
                    return session.get(upstream.url + "/p", timeout=(0.03, 5)).status_code
                except requests.RequestException as error:
                    return error

            started = time.monotonic()
            results = list(pool.map(get, range(2)))
            elapsed = time.monotonic() - started
    pool_timeouts = [r for r in results if isinstance(r, seawall.requests.PoolTimeout)]
    read_timeouts = [r for r in results if isinstance(r, requests.ReadTimeout)]
    assert len(pool_timeouts) == 1 and len(read_timeouts) == 1, results
    assert elapsed < 0.45


def test_rejections_are_requests_connection_errors(upstream):
    policy = seawall.Policy("rej", breaker=seawall.CircuitBreaker(consecutive_failures=1))
    policy.dependency("rej").breaker().force_open(0)
    with seawall.requests.session(policy) as session:
        with pytest.raises(requests.ConnectionError) as info:
            session.get(upstream.url + "/x", timeout=5)
    assert isinstance(info.value, seawall.CircuitOpenError)
    assert upstream.hits() == 0
