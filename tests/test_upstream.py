"""The fault-injecting upstream itself: each step does what the suite relies on."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from integrations.upstream import Upstream, echo, reset, respond, retry_after, slow_body, truncate


def test_script_order_then_and_default(upstream):
    upstream.script("/s", respond(503), respond(201, body=b"b"), then=respond(202))
    upstream.default = respond(204, body=b"")
    with httpx.Client() as client:
        statuses = [client.get(upstream.url + "/s").status_code for _ in range(4)]
        other = client.get(upstream.url + "/other?x=1").status_code
    assert statuses == [503, 201, 202, 202] and other == 204
    assert upstream.hits("/s") == 4 and upstream.hits() == 5
    assert upstream.requests[-1].query == "x=1"


def test_faults(upstream):
    upstream.script("/f", reset(), truncate(declared=50, sent=5), retry_after(429, "7"))
    with httpx.Client() as client:
        with pytest.raises(httpx.TransportError):
            client.get(upstream.url + "/f")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(upstream.url + "/f")
        limited = client.get(upstream.url + "/f")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")


def test_echo_and_slow_body(upstream):
    upstream.script("/e", echo(), slow_body(chunks=3, interval=0.01, chunk=b"ab"))
    with httpx.Client() as client:
        echoed = client.post(upstream.url + "/e", content=b"hello", headers={"X-Id": "7"})
        with client.stream("GET", upstream.url + "/e") as response:
            body = b"".join(response.iter_raw())
    assert (echoed.content, echoed.headers["x-body-length"]) == (b"hello", "5")
    assert upstream.requests[0].headers["x-id"] == "7" and upstream.requests[0].body == b"hello"
    assert body == b"ababab"


@pytest.mark.parametrize("sized", [False, True], ids=["chunked", "content-length"])
def test_slow_body_trickles_either_framing(upstream, sized):
    upstream.script("/t", slow_body(chunks=4, interval=0.05, chunk=b"ab", sized=sized))
    with httpx.Client() as client, client.stream("GET", upstream.url + "/t") as response:
        arrivals = [(time.monotonic(), chunk) for chunk in response.iter_raw()]
        headers = response.headers
    assert b"".join(chunk for _, chunk in arrivals) == b"abababab"
    if sized:
        assert headers["content-length"] == "8" and "transfer-encoding" not in headers
    else:
        assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    # sent over time, not at once: the last bytes came well after the first
    assert len(arrivals) >= 2 and arrivals[-1][0] - arrivals[0][0] >= 0.1


def test_concurrency_is_counted_exactly(upstream):
    upstream.default = respond(
        200, delay=0.5
    )  # long enough for 20 threads to overlap on a busy machine
    with httpx.Client(limits=httpx.Limits(max_connections=20)) as client:
        with ThreadPoolExecutor(20) as pool:
            list(pool.map(lambda _: client.get(upstream.url + "/c"), range(20)))
    assert upstream.wait_idle(5)
    assert (upstream.max_in_flight, upstream.in_flight) == (20, 0)
    upstream.clear()
    assert (upstream.hits(), upstream.max_in_flight, upstream.requests) == (0, 0, [])


def test_many_upstreams_start_and_stop_cleanly():
    for _ in range(3):
        with Upstream() as server:
            assert httpx.get(server.url + "/").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/")
