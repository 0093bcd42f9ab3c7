"""The admin surface's one data model and router, whatever front serves it (`fronts`).

`Admin.handle(method, path, query, authorization, body)` answers every route with an `Answer`
(or an `EventStream` for /events); the ASGI app, the WSGI app and the standalone server only
move bytes. Security, in one place:

- off until configured: with no token at all, only /health (with no detail) and the page answer;
- a read token and a control token, as `Authorization: Bearer ...` (never a cookie, so no
  cross-site request can act), compared in constant time; each token has a name, which is what
  the logs say asked for a change;
- mutations are POST only (GET gets 405), no CORS headers at all, JSON error bodies;
- nothing secret in any answer (names built from URLs are redacted by the snapshot).
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from . import controls, rollup, snapshot
from .page import page

if TYPE_CHECKING:
    from ..pipeline import Policy

READ, CONTROL = "read", "control"
#: The route groups a deployment may switch on (`routes=`): all of them by default.
ROUTES = frozenset(
    {"health", "status", "breakers", "bulkheads", "controls", "events", "page", "dead-letters"}
)
MAX_BODY = 16 * 1024
_JSON = "application/json"
_COMMON = [("cache-control", "no-store"), ("x-content-type-options", "nosniff")]
# The page is one file with inline script and style: it may talk to its own origin only.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)

Tokens = str | Mapping[str, str] | None


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class EventStream:
    """/events: one snapshot per `interval` seconds (at most `count` when the query asks),
    holding one of the admin's client slots until `close()`."""

    def __init__(self, admin: Admin, count: int | None) -> None:
        self._admin = admin
        self._left = count
        self.interval = admin.event_interval
        self.status = 200
        self.headers = [("content-type", "text/event-stream"), *_COMMON]
        self._closed = False

    def next_chunk(self) -> bytes | None:
        """The next event, or None when the asked-for count is sent."""
        if self._left is not None:
            if self._left <= 0:
                return None
            self._left -= 1
        data = json.dumps(self._admin.snapshot(), allow_nan=False, separators=(",", ":"))
        return f"event: snapshot\ndata: {data}\n\n".encode()

    @property
    def finished(self) -> bool:
        """The asked-for count is sent (no need to wait for the next)."""
        return self._left == 0

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._admin._release_client()


@dataclass
class Admin:
    """The admin surface's configuration and state (see the module docstring).

    `read_token` / `control_token`: a string (named "read" / "control") or a mapping of token
    names to tokens; the control token may read too. `policies`: what to show (default: every
    live policy). `critical` etc.: the health rules. `routes`: which groups of `ROUTES` answer.
    `max_event_clients`: /events streams at once (the next gets 503, as Hystrix's stream does).
    `dead_letters`: a `seawall.DeadLetters` to serve at /dead-letters (`seawall.deadletters.admin`).
    """

    read_token: Tokens = None
    control_token: Tokens = None
    policies: Iterable[Policy] | None = None
    service: str | None = None
    health_rules: rollup.HealthRules = field(default_factory=rollup.HealthRules)
    routes: Iterable[str] = ROUTES
    max_event_clients: int = 5
    event_interval: float = 1.0
    dead_letters: Any = None

    def __post_init__(self) -> None:
        self._tokens = [
            *_named(self.read_token, READ, "read_token"),
            *_named(self.control_token, CONTROL, "control_token"),
        ]
        if isinstance(self.routes, str) or not isinstance(self.routes, Iterable):
            raise TypeError(
                f"admin: routes must be a collection of route names, got {self.routes!r}"
            )
        self.routes = frozenset(self.routes)
        unknown = self.routes - ROUTES
        if unknown:
            raise ValueError(
                f"admin: unknown route(s) {sorted(unknown)}: expected some of {sorted(ROUTES)}"
            )
        if self.policies is not None:
            self.policies = list(self.policies)
        if not (isinstance(self.max_event_clients, int) and self.max_event_clients >= 0):
            raise ValueError(
                f"admin: max_event_clients must be a whole number >= 0, got "
                f"{self.max_event_clients!r}"
            )
        if not (isinstance(self.event_interval, (int, float)) and self.event_interval > 0):
            raise ValueError(
                f"admin: event_interval must be a number of seconds > 0, got "
                f"{self.event_interval!r}"
            )
        self._clients = 0
        self._clients_lock = threading.Lock()

    # -- the data ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return snapshot.status(self.policies, service=self.service)

    def health(self) -> dict[str, Any]:
        return rollup.rollup(self.snapshot(), self.health_rules)

    # -- routing ----------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: str = "",
        authorization: str | None = None,
        body: bytes = b"",
    ) -> Answer | EventStream:
        """Answer one request; `path` is relative to where the surface is mounted."""
        method = method.upper()
        route = _route(path)
        if route is None or route[0] not in self.routes:
            return _error(404, "not_found", f"no admin route {path!r}")
        group, allowed, args = route
        if method not in allowed:
            return _error(
                405,
                "method_not_allowed",
                f"{path} answers {' and '.join(sorted(allowed))} only"
                + (" (changes are POST only)" if "POST" in allowed else ""),
                [("allow", ", ".join(sorted(allowed)))],
            )
        if group == "page":
            return Answer(
                200,
                [
                    ("content-type", "text/html; charset=utf-8"),
                    ("content-security-policy", _PAGE_POLICY),
                    ("x-frame-options", "DENY"),
                    ("referrer-policy", "no-referrer"),
                    *_COMMON,
                ],
                page(),
            )
        role, name = self._who(authorization)
        if role == "wrong":
            return _error(
                401,
                "invalid_token",
                "the bearer token is not one of the admin's tokens",
                [("www-authenticate", 'Bearer error="invalid_token"')],
            )
        if group == "health":
            document = self.health()
            status = rollup.http_status(document)
            if role is None:  # a load balancer's probe: the verdict and nothing else
                document = {"status": document["status"]}
            answer = _json(status, document, rollup.MEDIA_TYPE, [("cache-control", "max-age=1")])
            if role is not None:
                answer.headers.append(("x-seawall-role", role))
            return answer
        if role is None:
            why = (
                "the admin API is off: no token is configured"
                if not self._tokens
                else "this route needs a bearer token in the Authorization header"
            )
            return _error(
                401, "unauthorized", why, [("www-authenticate", 'Bearer realm="seawall"')]
            )
        if group == "dead-letters":
            return self._dead_letters(args, role, query, body)
        if group == "controls" and role != CONTROL:
            return _error(403, "forbidden", "changes need the control token; this is a read token")
        try:
            result: Answer | EventStream = self._answer(group, args, query, body, name or "")
        except controls.ControlError as error:
            result = _error(
                error.status, "not_found" if error.status == 404 else "conflict", str(error)
            )
        result.headers.append(("x-seawall-role", role))  # the page shows controls by it
        return result

    def _answer(
        self, group: str, args: list[str], query: str, body: bytes, who: str
    ) -> Answer | EventStream:
        if group == "status":
            return _json(200, self.snapshot())
        if group == "breakers":
            snap = self.snapshot()
            if args:
                controls.find(self.policies, args[0])  # 404 / 409
                [dep] = [d for d in snap["dependencies"] if d["name"] == args[0]]
                return _json(200, {"dependency": dep["name"], "breakers": dep["breakers"]})
            return _json(
                200,
                {
                    "breakers": [
                        {"dependency": d["name"], "policy": d["policy"], **b}
                        for d in snap["dependencies"]
                        for b in d["breakers"]
                    ]
                },
            )
        if group == "bulkheads":
            snap = self.snapshot()
            return _json(
                200,
                {
                    "bulkheads": [
                        {"dependency": d["name"], "policy": d["policy"], **d["bulkhead"]}
                        for d in snap["dependencies"]
                        if d["bulkhead"]
                    ]
                },
            )
        if group == "events":
            return self._events(query)
        # controls: /breakers/{dependency}/{action}, /bulkheads/.../reset, /retry-budgets/...
        part, dependency, action = args
        options = _control_body(body)
        if isinstance(options, Answer):
            return options
        reason = options.get("reason", "")
        if part == "breakers":
            after = controls.breaker(
                self.policies,
                dependency,
                action,
                key=options.get("key"),
                reason=reason,
                by=who,
                scope=options.get("scope", "process"),
            )
        elif options.get("scope", "process") != "process":
            return _error(400, "bad_request", "scope=fleet is for breaker controls only")
        elif part == "bulkheads":
            after = controls.bulkhead(self.policies, dependency, reason=reason, by=who)
        else:
            after = controls.retry_budget(self.policies, dependency, reason=reason, by=who)
        return _json(200, after)

    def _dead_letters(self, args: list[str], role: str, query: str, body: bytes) -> Answer:
        from ..deadletters import admin as dlq

        changes = args[0] == "POST"
        if changes and role != CONTROL:
            return _error(403, "forbidden", "changes need the control token; this is a read token")
        if self.dead_letters is None:
            return _error(404, "not_found", "no dead letters are kept by this admin surface")
        if len(body) > MAX_BODY:
            return _error(413, "too_large", f"the body must be at most {MAX_BODY} bytes")
        try:
            result = _json(200, dlq.answer(self.dead_letters, args[1], query, body))
        except dlq.Refused as refused:
            result = _error(refused.status, refused.code, str(refused))
        result.headers.append(("x-seawall-role", role))
        return result

    def _events(self, query: str) -> Answer | EventStream:
        raw = parse_qs(query).get("count", [None])[0]
        count = None
        if raw is not None:
            if not raw.isdigit() or int(raw) < 1:
                return _error(400, "bad_request", f"count must be a whole number >= 1, got {raw!r}")
            count = int(raw)
        with self._clients_lock:
            if self._clients >= self.max_event_clients:
                return _error(
                    503,
                    "too_many_clients",
                    f"at most {self.max_event_clients} /events clients at once",
                    [("retry-after", "5")],
                )
            self._clients += 1
        return EventStream(self, count)

    def _release_client(self) -> None:
        with self._clients_lock:
            self._clients -= 1

    def _who(self, authorization: str | None) -> tuple[str | None, str | None]:
        """(role, token name): (None, None) without a token, ("wrong", None) for a bad one."""
        if authorization is None:
            return None, None
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return "wrong", None
        offered = given.strip().encode()
        found: tuple[str | None, str | None] = ("wrong", None)
        for name, secret, role in self._tokens:  # every one compared: no early exit
            if hmac.compare_digest(offered, secret) and found[0] != CONTROL:
                found = (role, name)
        return found


def _named(tokens: Tokens, role: str, what: str) -> list[tuple[str, bytes, str]]:
    if tokens is None:
        return []
    if isinstance(tokens, str):
        tokens = {role: tokens}
    if not isinstance(tokens, Mapping):
        raise TypeError(f"admin: {what} must be a string, a mapping of names to tokens, or None")
    named = []
    for name, secret in tokens.items():
        if not isinstance(secret, str) or len(secret) < 16:
            raise ValueError(
                f"admin: {what} {name!r} must be a string of at least 16 "
                f"characters (a long random one)"
            )
        named.append((str(name), secret.encode(), role))
    return named


_ACTIONS = {
    "breakers": controls.BREAKER_ACTIONS,
    "bulkheads": ("reset",),
    "retry-budgets": ("reset",),
}


def _route(path: str) -> tuple[str, frozenset[str], list[str]] | None:
    """(group, methods, arguments) of a path, or None."""
    get, post = frozenset({"GET"}), frozenset({"POST"})
    path = "/" + path.lstrip("/")
    if path == "/":
        return "page", get, []
    simple = {
        "/health": "health",
        "/status": "status",
        "/breakers": "breakers",
        "/bulkheads": "bulkheads",
        "/events": "events",
    }
    if path in simple:
        return simple[path], get, []
    top, _, rest = path[1:].partition("/")
    if top == "dead-letters":
        from ..deadletters.admin import route

        found = route(rest)
        return (
            None
            if found is None
            else ("dead-letters", found[0], ["POST" if found[1] else "GET", rest])
        )
    if top not in _ACTIONS or not rest:
        return None
    dependency, _, action = rest.rpartition("/")
    if dependency and action in _ACTIONS[top]:
        return "controls", post, [top, dependency, action]
    if top == "breakers":
        return "breakers", get, [rest]
    return None


def _control_body(body: bytes) -> dict[str, str] | Answer:
    if len(body) > MAX_BODY:
        return _error(413, "too_large", f"the body must be at most {MAX_BODY} bytes")
    if not body.strip():
        return {}
    try:
        options = json.loads(body)
    except ValueError:
        return _error(400, "bad_request", 'the body must be JSON: {"key": ..., "reason": ...}')
    if not isinstance(options, dict):
        return _error(
            400, "bad_request", 'the body must be a JSON object: {"key": ..., "reason": ...}'
        )
    unknown = set(options) - {"key", "reason", "scope"}
    if unknown:
        return _error(
            400, "bad_request", f"unknown field(s) {sorted(unknown)}: expected key, reason, scope"
        )
    for name in ("key", "reason", "scope"):
        if name in options and not isinstance(options[name], str):
            return _error(
                400, "bad_request", f"{name} must be a string, got {type(options[name]).__name__}"
            )
    if "reason" in options:  # it is logged: one line, bounded
        options["reason"] = " ".join(options["reason"].split())[:200]
    return options


def _json(
    status: int, document: Any, media: str = _JSON, extra: list[tuple[str, str]] | None = None
) -> Answer:
    headers = [
        ("content-type", media),
        *(extra or []),
        *(h for h in _COMMON if not extra or h[0] not in dict(extra)),
    ]
    return Answer(status, headers, json.dumps(document, allow_nan=False).encode())


def _error(
    status: int, code: str, message: str, extra: list[tuple[str, str]] | None = None
) -> Answer:
    return _json(status, {"error": code, "message": message, "status": status}, _JSON, extra)
