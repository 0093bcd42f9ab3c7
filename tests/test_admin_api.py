"""The admin surface over its three fronts: every route, against breakers a real upstream
opened; the auth table; the /events client cap; the standalone server's default address."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time

import httpx
import pytest

import seawall
from integrations.upstream import respond
from seawall.httpx import ResilientTransport
from tests.admin_fronts import CONTROL, FRONTS, READ, TOKENS, WRONG, front


@pytest.fixture
def policies(upstream):
    """'api-pay': its breaker opened by a failing upstream; 'api-ok': healthy."""
    upstream.script("/pay", respond(503), respond(503))
    pay = seawall.Policy(
        "api-pay", retry=None, breaker=seawall.CircuitBreaker(consecutive_failures=2, open_for=30)
    )
    ok = seawall.Policy("api-ok", retry=None)
    with httpx.Client(transport=ResilientTransport(pay)) as client:
        assert [client.get(upstream.url + "/pay").status_code for _ in range(2)] == [503, 503]
        with pytest.raises(seawall.CircuitOpenError):
            client.get(upstream.url + "/pay")
    with httpx.Client(transport=ResilientTransport(ok)) as client:
        assert client.get(upstream.url + "/fine").status_code == 200
    return [pay, ok]


def options(policies, **more):
    return dict(
        read_token=READ,
        control_token={"ops-oncall": CONTROL},
        policies=policies,
        event_interval=0.05,
        **more,
    )


@pytest.mark.parametrize("kind", FRONTS)
def test_every_route_against_a_breaker_a_real_upstream_opened(kind, policies):
    with front(kind, **options(policies, service="shop")) as admin:
        health = admin.request("GET", "/health", READ)
        assert health.status_code == 200
        assert health.headers["content-type"] == "application/health+json"
        document = health.json()
        assert document["status"] == "warn" and document["seawall"]["level"] == "degraded"
        assert document["checks"]["api-pay:circuit_breaker"][0]["status"] == "warn"
        assert document["checks"]["api-ok:circuit_breaker"][0]["status"] == "pass"

        status = admin.request("GET", "/status", READ).json()
        assert status["service"] == "shop" and status["scope"] == "process"
        assert [d["name"] for d in status["dependencies"]] == ["api-pay", "api-ok"]

        breakers = admin.request("GET", "/breakers", READ).json()["breakers"]
        assert [(b["dependency"], b["state"]) for b in breakers] == [
            ("api-pay", "open"),
            ("api-ok", "closed"),
        ]
        one = admin.request("GET", "/breakers/api-pay", READ).json()
        assert one["dependency"] == "api-pay" and one["breakers"][0]["window"]["rejected"] == 1
        assert admin.request("GET", "/breakers/nope", READ).status_code == 404
        bulkheads = admin.request("GET", "/bulkheads", READ).json()["bulkheads"]
        assert [(b["dependency"], b["limit"]) for b in bulkheads] == [
            ("api-pay", 100),
            ("api-ok", 100),
        ]

        events = admin.request("GET", "/events?count=2", READ)
        assert events.headers["content-type"] == "text/event-stream"
        chunks = [c for c in events.text.split("\n\n") if c]
        assert len(chunks) == 2 and all(c.startswith("event: snapshot\ndata: {") for c in chunks)
        assert json.loads(chunks[0].split("data: ", 1)[1])["dependencies"][0]["name"] == "api-pay"

        page = admin.request("GET", "/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<title>seawall</title>" in page.text and "http" not in page.text.split("<script>")[
            0
        ].lower().replace("http-equiv", "")  # nothing fetched from elsewhere

        for action, state in (
            ("isolate", "isolated"),
            ("disable", "disabled"),
            ("reset", "closed"),
        ):
            answer = admin.request(
                "POST", f"/breakers/api-pay/{action}", CONTROL, json={"reason": f"{action} drill"}
            )
            assert answer.status_code == 200, answer.text
            after = answer.json()["breakers"][0]
            assert after["state"] == state
            assert (after["manual"]["by"], after["manual"]["reason"]) == (
                "ops-oncall",
                f"{action} drill",
            )
        assert (
            policies[0].dependency("api-pay").breaker().state(policies[0].now()).value == "closed"
        )
        assert (
            admin.request("POST", "/bulkheads/api-pay/reset", CONTROL).json()["bulkhead"][
                "rejected"
            ]
            == 0
        )
        assert admin.request("POST", "/retry-budgets/api-ok/reset", CONTROL).status_code == 404
        assert admin.request("GET", "/health", READ).json()["status"] == "pass"


ROUTES = [
    ("/health", "GET"),
    ("/status", "GET"),
    ("/breakers", "GET"),
    ("/breakers/api-ok", "GET"),
    ("/bulkheads", "GET"),
    ("/events?count=1", "GET"),
    ("/", "GET"),
    ("/breakers/api-ok/reset", "POST"),
    ("/breakers/api-ok/isolate", "POST"),
    ("/breakers/api-ok/disable", "POST"),
    ("/bulkheads/api-ok/reset", "POST"),
]


def expected(path, allowed, method, who):
    if method != allowed:
        return 405, "method_not_allowed"
    if path == "/":
        return 200, None
    if who == "wrong":
        return 401, "invalid_token"
    if path == "/health":
        return 200, None
    if who == "none":
        return 401, "unauthorized"
    if method == "POST" and who == "read":
        return 403, "forbidden"
    return 200, None


@pytest.mark.parametrize("kind", FRONTS)
def test_auth_table_every_route_by_every_token_by_every_method(kind, policies):
    spare = seawall.Policy("api-spare")  # so that two isolated ones are not "more than half"
    with front(kind, **options([*policies, spare])) as admin:
        checked = 0
        for path, allowed in ROUTES:
            for method in ("GET", "POST"):
                for who, token in TOKENS.items():
                    answer = admin.request(method, path, token)
                    status, error = expected(path, allowed, method, who)
                    where = f"{method} {path} with {who} token"
                    assert answer.status_code == status, f"{where}: {answer.text}"
                    assert not [h for h in answer.headers if h.startswith("access-control-")]
                    if error is not None:
                        body = answer.json()
                        assert (body["error"], body["status"]) == (error, status), where
                        assert body["message"], where
                    if status == 405:
                        assert answer.headers["allow"] == allowed, where
                    if status == 401:
                        assert answer.headers["www-authenticate"].startswith("Bearer"), where
                    if path == "/health" and method == "GET" and who == "none":
                        assert answer.json() == {"status": "warn"}, where  # no detail
                    if path == "/health" and method == "GET" and who in ("read", "control"):
                        assert "checks" in answer.json(), where
                    for secret in (READ, CONTROL, WRONG):
                        assert secret not in answer.text, where
                    checked += 1
        assert checked == len(ROUTES) * 2 * 4
        unknown = admin.request("GET", "/nothing-here", CONTROL)
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
        assert admin.request("OPTIONS", "/status", CONTROL).status_code == 405
        bad = admin.request("POST", "/breakers/api-ok/reset", CONTROL, content=b"[1]")
        assert bad.status_code == 400 and "JSON object" in bad.json()["message"]
        typed = admin.request("POST", "/breakers/api-ok/reset", CONTROL, json={"reason": 3})
        assert typed.status_code == 400 and "reason must be a string" in typed.json()["message"]


def test_without_any_token_configured_only_health_answers_without_detail(policies):
    with front("wsgi", policies=policies) as admin:
        assert admin.request("GET", "/health").json() == {"status": "warn"}
        off = admin.request("GET", "/status")
        assert off.status_code == 401 and "off" in off.json()["message"]
        assert admin.request("GET", "/status", READ).status_code == 401


def test_a_token_must_be_long_enough():
    with pytest.raises(ValueError, match="read_token 'read' must be a string of at least 16"):
        seawall.admin.Admin(read_token="short")
    with pytest.raises(TypeError, match="control_token must be a string, a mapping"):
        seawall.admin.Admin(control_token=12345)  # type: ignore[arg-type]


def test_mounted_under_a_prefix_the_page_is_reached_with_a_trailing_slash(policies):
    app = seawall.admin.asgi_app(**options(policies))

    async def get(path: str, root: str) -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, root_path=root), base_url="http://admin"
        ) as client:
            return await client.get(path, headers={"authorization": f"Bearer {READ}"})

    bare = asyncio.run(get("/seawall", "/seawall"))
    assert bare.status_code == 308 and bare.headers["location"] == "/seawall/"
    assert asyncio.run(get("/seawall/status", "/seawall")).json()["scope"] == "process"
    wsgi = seawall.admin.wsgi_app(**options(policies))
    environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/ops", "PATH_INFO": "", "wsgi.input": None}
    seen = []
    wsgi(environ, lambda status, headers: seen.append((status, dict(headers))))
    assert seen == [("308 Permanent Redirect", {"location": "/ops/"})]


def test_the_standalone_server_binds_127_0_0_1_by_default(policies):
    with seawall.admin.serve(port=0, **options(policies)) as server:
        assert server.host == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
        assert httpx.get(server.url + "/health").json() == {"status": "warn"}
        with pytest.raises(OSError):  # another loopback address of this machine: not bound
            socket.create_connection(("127.0.0.2", server.port), timeout=1).close()


def test_the_events_stream_caps_its_clients_and_frees_a_slot_when_one_leaves(policies):
    auth = {"Authorization": f"Bearer {READ}"}

    def open_stream(server, query=""):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", "/events" + query, headers=auth)
        return connection, connection.getresponse()

    with seawall.admin.serve(port=0, **options(policies, max_event_clients=2)) as server:
        held = [open_stream(server) for _ in range(2)]
        assert [answer.status for _, answer in held] == [200, 200]
        assert held[0][1].readline() == b"event: snapshot\n"
        # ?count=1: were the cap not kept, this would end after one event rather than hang
        connection, refused = open_stream(server, "?count=1")
        assert refused.status == 503
        assert json.loads(refused.read())["error"] == "too_many_clients"
        connection.close()
        for part in held[0]:  # the response holds the socket too
            part.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # freed at the server's next write to it
            connection, again = open_stream(server, "?count=1")
            status = again.status
            again.read()
            connection.close()
            if status == 200:
                break
            time.sleep(0.05)
        assert status == 200
        for part in held[1]:
            part.close()


def test_the_asgi_events_stream_caps_its_clients(policies):
    app = seawall.admin.asgi_app(**options(policies, max_event_clients=1))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/events",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {READ}".encode())],
        "root_path": "",
    }

    async def main() -> tuple[list[int], int]:
        gone = asyncio.Event()
        sent: list[dict] = []
        asked = []

        async def receive() -> dict:  # the request, then a disconnect once `gone` is set
            asked.append(1)
            if len(asked) == 1:
                return {"type": "http.request", "body": b""}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        first = asyncio.create_task(app(scope, receive, send))
        while not any(m.get("more_body") for m in sent):
            await asyncio.sleep(0.01)
        second: list[dict] = []

        async def second_send(message: dict) -> None:
            second.append(message)

        async def nothing() -> dict:
            return {"type": "http.request", "body": b""}

        await app({**scope}, nothing, second_send)
        gone.set()
        await asyncio.wait_for(first, 5)
        third: list[dict] = []

        async def third_send(message: dict) -> None:
            third.append(message)

        await app({**scope, "query_string": b"count=1"}, nothing, third_send)
        return [sent[0]["status"], third[0]["status"]], second[0]["status"]

    statuses, refused = asyncio.run(asyncio.wait_for(main(), 10))
    assert statuses == [200, 200] and refused == 503


def test_routes_can_be_switched_off(policies):
    with front("wsgi", **options(policies, routes={"health", "status"})) as admin:
        assert admin.request("GET", "/status", READ).status_code == 200
        assert admin.request("GET", "/breakers", READ).status_code == 404
        assert admin.request("POST", "/breakers/api-ok/reset", CONTROL).status_code == 404
        assert admin.request("GET", "/").status_code == 404
    with pytest.raises(ValueError, match=r"unknown route\(s\) \['everything'\]"):
        seawall.admin.Admin(routes={"everything"})
