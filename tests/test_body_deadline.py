"""Issue 11 item 2: the total deadline holds while the body arrives.

The upstream sends the headers at once, then the body a byte at a time. For every flavour,
framing (Content-Length, chunked) and way of reading (whole: `client.get`, requests without
`stream=True`, aiohttp `read()`; streamed: read by the caller after the response is returned),
a body still arriving at the total deadline ends within one more read, with seawall's
`DeadlineExceeded` that is also the client's own timeout error; a body that arrives in time is
read whole. The deadline is the request's, counted from its start (docs/policies.md).
"""

from __future__ import annotations

import time

import pytest

import seawall
from integrations.upstream import respond, slow_body
from tests.flavours import Client

FAST = seawall.Backoff.constant(0.001)
FRAMINGS = {"content-length": True, "chunked": False}
#: Time to spare over "the deadline plus one read" on a busy machine (2 cores shared).
SLACK = 0.35


def policy(attempt: float, total: float) -> seawall.Policy:
    return seawall.Policy(
        "body",
        retry=seawall.Retry(max_attempts=10, backoff=FAST),
        breaker=None,
        bulkhead=seawall.Bulkhead(max_concurrent=10, max_queued=10, queue_timeout=5),
        timeouts=seawall.Timeouts(attempt=attempt, total=total),
        telemetry=False,
    )


def read(client: Client, url: str, mode: str, pause: float = 0.1) -> bytes:
    """The body of a GET, read whole by the client or streamed by the caller `pause` s later."""
    if mode == "whole":
        return client.request("GET", url).body
    return b"".join(chunk for _, chunk in client.stream_chunks(url, pause=pause))


@pytest.fixture(params=["whole", "streamed"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(FRAMINGS))
def sized(request: pytest.FixtureRequest) -> bool:
    return FRAMINGS[request.param]


def test_a_trickling_body_ends_by_the_deadline(flavour, upstream, mode, sized):
    # the case, 1 byte every 25 ms (1.5 s in all) against total=0.3, with attempt=0.2
    # rather than 0.05: the attempt timeout is each read's, and on a busy machine the upstream
    # (a thread of this process) can miss a 50 ms read timeout, which then ends a body read
    # after the request has returned with the client's own ReadTimeout, before the deadline
    trickle = slow_body(chunks=60, interval=0.025, chunk=b"x", sized=sized)
    upstream.script("/trickle", then=trickle)  # every attempt trickles
    with flavour.client(policy(attempt=0.2, total=0.3)) as client:
        started = time.monotonic()
        with pytest.raises(seawall.DeadlineExceeded) as info:
            read(client, upstream.url + "/trickle", mode)
        elapsed = time.monotonic() - started
    assert isinstance(info.value, client.timeout_error)  # existing except clauses still work
    assert info.value.dependency == "body"
    # the deadline plus at most one read (a read waits at most the 0.2 s attempt timeout)
    assert 0.29 <= elapsed < 0.3 + 0.2 + SLACK, elapsed


def test_a_body_that_arrives_in_time_is_read_whole(flavour, upstream, mode, sized):
    upstream.script("/ok", then=slow_body(chunks=6, interval=0.01, chunk=b"abc", sized=sized))
    with flavour.client(policy(attempt=1.0, total=3.0)) as client:
        body = read(client, upstream.url + "/ok", mode, pause=0.05)
    assert body == b"abc" * 6
    assert upstream.hits("/ok") == 1


def test_the_deadline_counts_from_the_start_of_the_request(flavour, upstream, mode, sized):
    # a first attempt that takes 0.15 s and fails, then a body that trickles for 1.5 s: the
    # deadline is 0.4 s after the request began, not after the body's response arrived
    trickle = slow_body(chunks=60, interval=0.025, chunk=b"x", sized=sized)
    upstream.script("/late", respond(503, delay=0.15), then=trickle)
    with flavour.client(policy(attempt=0.3, total=0.4)) as client:
        started = time.monotonic()
        with pytest.raises(seawall.DeadlineExceeded) as info:
            read(client, upstream.url + "/late", mode, pause=0.05)
        elapsed = time.monotonic() - started
    assert isinstance(info.value, client.timeout_error)
    assert upstream.hits("/late") >= 2  # the body came on a retry
    assert 0.39 <= elapsed < 0.4 + 0.3 + SLACK, elapsed


#: Each flavour's option to read the body inside the attempt, where a body cut short is
#: retried (requests does so whenever it is not asked to stream).
READ_IN_ATTEMPT = {"httpx": {"buffer_body": True}, "httpx-async": {"buffer_body": True}}
READ_IN_ATTEMPT["aiohttp"] = {"read_body": True}


def test_a_body_read_inside_the_attempt_ends_by_the_deadline(flavour, upstream, sized):
    trickle = slow_body(chunks=60, interval=0.025, chunk=b"x", sized=sized)
    upstream.script("/inside", then=trickle)
    options = READ_IN_ATTEMPT.get(flavour.name, {})
    with flavour.client(policy(attempt=0.05, total=0.3), **options) as client:
        started = time.monotonic()
        with pytest.raises(seawall.DeadlineExceeded) as info:
            client.request("GET", upstream.url + "/inside")
        elapsed = time.monotonic() - started
    assert isinstance(info.value, client.timeout_error)
    assert 0.29 <= elapsed < 0.3 + 0.05 + SLACK, elapsed
