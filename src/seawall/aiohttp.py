"""aiohttp adapter: a client middleware (aiohttp >= 3.12).

    session = aiohttp.ClientSession(middlewares=[seawall.aiohttp.middleware(policy)],
                                    connector=seawall.aiohttp.connector(policy))
    # or: session = seawall.aiohttp.session(policy)

It only translates between aiohttp and the pipeline. aiohttp builds the middleware chain inside
its redirect loop, so each hop is its own logical request. The per-attempt timeout is enforced
here, because aiohttp's `ClientTimeout.total` is one timer over every attempt. Discarded
responses are released; a payload aiohttp has consumed (an async generator) is never resent.

aiohttp itself silently re-sends an idempotent request once when a connection breaks
(`ClientOSError` / `ServerDisconnectedError`), around the whole middleware chain, which would
repeat all of seawall's attempts unseen by the retry policy and the budget. seawall retries
those errors itself, so the middleware switches that off on its session (`session()` does it
from the start). On a session built elsewhere, aiohttp has already decided the re-run of the
request that makes the middleware's first call; if it re-runs it, the middleware answers with
seawall's verdict instead of making every attempt again. (aiohttp decides and calls the
middleware in one step, so no other request is affected, unless the session has
`trust_env=True`: its netrc and proxy look-ups let others begin in between.)
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import aiohttp
from aiohttp import ClientRequest, ClientResponse

from . import errors, probes
from .pipeline import Policy, PolicyLike, Target
from .policies import _validate
from .policies.classify import ErrorKind, kind_of
from .telemetry import official

Handler = Callable[[ClientRequest], Awaitable[ClientResponse]]
Middleware = Callable[[ClientRequest, Handler], Awaitable[ClientResponse]]


class _Timeout(aiohttp.ServerTimeoutError):
    """aiohttp's own shape of a timeout: a ClientConnectionError and an asyncio.TimeoutError."""


# seawall's rejections as aiohttp errors: `except aiohttp.ClientError` still catches them, and
# `DeadlineExceeded` is also an `aiohttp.ServerTimeoutError` (and so an `asyncio.TimeoutError`).
class CircuitOpenError(errors.CircuitOpenError, aiohttp.ClientConnectionError):
    """`seawall.CircuitOpenError`, as an `aiohttp.ClientConnectionError`."""


class BulkheadFullError(errors.BulkheadFullError, aiohttp.ClientConnectionError):
    """`seawall.BulkheadFullError`, as an `aiohttp.ClientConnectionError`."""


class RetryBudgetExhausted(errors.RetryBudgetExhausted, aiohttp.ClientConnectionError):
    """`seawall.RetryBudgetExhausted`, as an `aiohttp.ClientConnectionError`."""


class DeadlineExceeded(errors.DeadlineExceeded, _Timeout):
    """`seawall.DeadlineExceeded`, as an `aiohttp.ServerTimeoutError` (a
    `ClientConnectionError` and an `asyncio.TimeoutError`)."""


ERRORS = errors.flavours(
    CircuitOpenError, BulkheadFullError, RetryBudgetExhausted, DeadlineExceeded
)


class AttemptTimeout(aiohttp.SocketTimeoutError):
    """One attempt took longer than its share of the timeouts (seawall cut it)."""


# Most specific first.
_KINDS: tuple[tuple[type[BaseException], ErrorKind | None], ...] = (
    (aiohttp.ClientSSLError, None),  # certificates do not fix themselves
    (aiohttp.ConnectionTimeoutError, ErrorKind.CONNECT_TIMEOUT),
    (aiohttp.SocketTimeoutError, ErrorKind.READ_TIMEOUT),
    (aiohttp.ServerTimeoutError, ErrorKind.READ_TIMEOUT),
    (aiohttp.ClientConnectorError, ErrorKind.CONNECT),
    (aiohttp.ServerDisconnectedError, ErrorKind.PROTOCOL),
    (aiohttp.ClientPayloadError, ErrorKind.PROTOCOL),
    (aiohttp.ClientOSError, ErrorKind.RESET),
    (aiohttp.ClientConnectionError, ErrorKind.RESET),
)


def error_kind(error: BaseException) -> ErrorKind | None:
    """The neutral kind of an aiohttp error; None for errors that are not transient."""
    if isinstance(error, aiohttp.ClientError) and not isinstance(error, errors.ResilienceError):
        return kind_of(error, _KINDS)
    return None


class _Exchange:
    """One request (one redirect hop), as the pipeline sees it."""

    __slots__ = ("request", "method", "loop", "telemetry", "_handler", "_read")
    errors = ERRORS

    def __init__(self, request: ClientRequest, handler: Handler, read: bool) -> None:
        self.request = request
        self.method = request.method  # aiohttp has upper-cased it
        self.loop = request.loop
        self.telemetry: Any = None  # the telemetry listener's per-request state
        self._handler = handler
        self._read = read

    def origin(self) -> str:
        url = self.request.url
        return f"{url.scheme}://{url.host}:{url.port}"

    def target(self) -> Target:
        url = self.request.url
        return Target(self.method, url.scheme, url.host or "", url.port or 0, url.path)

    def has_header(self, name: str) -> bool:
        return name in self.request.headers

    def caller_timeout(self) -> bool:
        return False  # the middleware cannot see a session's or request's ClientTimeout

    def url(self) -> str:
        return str(self.request.url)

    def set_header(self, name: str, value: str) -> None:
        self.request.headers[name] = value

    def headers(self) -> list[tuple[str, str]]:
        return list(self.request.headers.items())

    def body(self) -> bytes | None:
        body = self.request.body
        if isinstance(body, (bytes, bytearray)):
            return bytes(body)
        if isinstance(body, aiohttp.payload.BytesPayload):
            value = body._value  # aiohttp keeps the bytes there, unread
            return bytes(value) if isinstance(value, (bytes, bytearray)) else None
        return None  # a stream, a file, an async generator: not in memory

    def protocol(self, response: ClientResponse) -> str | None:
        version = response.version
        return f"{version.major}.{version.minor}" if version is not None else None

    def peer(self, response: ClientResponse) -> tuple[str, int] | None:
        return None  # aiohttp has released the connection by the time the attempt ends

    def send(self, timeout: float, time_left: float) -> Awaitable[ClientResponse]:
        # aiohttp's own coroutine unless the body is read here: one coroutine layer less. The
        # timeout is the pipeline's to enforce (`cut_after`): aiohttp cannot take one per
        # attempt. It cuts the whole attempt, a body read here included, so `time_left` (which
        # it never exceeds) needs nothing more.
        return self._attempt() if self._read else self._handler(self.request)

    def hold(self, response: ClientResponse, time_left: float, dependency: str) -> None:
        """aiohttp reads the body as it arrives, into `response.content`: unless it has all
        arrived, a timer at the deadline fails the body with the flavoured `DeadlineExceeded`
        (what every later read raises) and closes the connection; the body's end disarms it."""
        content = response.content
        if time_left == math.inf or content.is_eof():
            return
        timer = self.loop.call_later(time_left, _body_late, response, self.errors, dependency)
        content.on_eof(timer.cancel)

    @staticmethod
    def cut_after(timeout: float) -> BaseException:
        return AttemptTimeout(f"attempt timed out after {timeout:.3f} s")

    async def _attempt(self) -> ClientResponse:
        response = await self._handler(self.request)
        if self._read:
            try:
                await response.read()
            except BaseException:
                response.release()
                raise
        return response

    def status(self, response: ClientResponse) -> int:
        return response.status

    def header(self, response: ClientResponse, name: str) -> str | None:
        return response.headers.get(name)

    async def discard(self, response: ClientResponse) -> None:
        response.release()  # returns a no-op awaitable in aiohttp 3

    def rewind(self) -> bool:
        body = self.request.body
        return not getattr(body, "consumed", False)

    def error_kind(self, error: BaseException) -> ErrorKind | None:
        return error_kind(error)


def _body_late(response: ClientResponse, table: errors.ErrorTypes, dependency: str) -> None:
    """The deadline of a held body that is still arriving: every read from now on raises the
    flavoured `DeadlineExceeded`, and the connection (half-read) is closed, not reused."""
    if not response.content.is_eof():
        response.content.set_exception(errors.body_deadline(table, dependency))
        response.close()


#: What the arguments of `middleware`, `connector` and `session` must be.
_RULES: _validate.Rules = {"policy": _validate.POLICY, "read_body": _validate.FLAG}


def middleware(policy: PolicyLike | None = None, *, read_body: bool = False) -> Middleware:
    """An aiohttp client middleware that runs every request (each redirect hop) through
    `policy`. `read_body=True` reads each body inside the attempt, so a body cut short is
    retried like any other transient failure."""
    _validate.arguments(
        "seawall.aiohttp.middleware", _RULES, {"policy": policy, "read_body": read_body}
    )
    chosen: PolicyLike = policy if policy is not None else Policy()
    probing = bool(probes.probed(chosen))
    probers: weakref.WeakKeyDictionary[aiohttp.ClientSession, probes.TaskProbers] = (
        weakref.WeakKeyDictionary()
    )

    def seawall_middleware(request: ClientRequest, handler: Handler) -> Awaitable[ClientResponse]:
        exchange = _Exchange(request, handler, read_body)
        owner = getattr(request, "_session", None)
        if probing and owner is not None and owner not in probers:
            probers[owner] = _start_prober(chosen, owner)
        if owner is not None and getattr(owner, "_retry_connection", False):
            _take_over(owner, chosen)
            return _rerun_decided(chosen, exchange)
        verdict = _verdict.get()
        if verdict is not None:
            _verdict.set(None)
            if verdict[0] == (request.method, request.url):
                return _raise(verdict[1])  # aiohttp's re-run: seawall has answered already
        # The pipeline's coroutine itself, awaited by aiohttp: no wrapping layer.
        return chosen.run_async(exchange)

    seawall_middleware.policy = chosen  # type: ignore[attr-defined]
    return seawall_middleware


def _start_prober(policy: PolicyLike, owner: aiohttp.ClientSession) -> probes.TaskProbers:
    """The health prober of one session, started with its first request (a loop runs then).
    The middleware has no close hook: the prober holds the session weakly, ends at its first
    wake after `close()` (never probing a closed session, nor counting a probe the close cut
    short), and is cancelled when the session is collected."""
    session = weakref.ref(owner)

    def alive() -> bool:
        found = session()
        return found is not None and not found.closed

    async def send(url: str, timeout: float) -> int:
        found = session()
        if found is None:
            raise RuntimeError("the session is gone")
        # straight through: no middleware (not the policy), no redirect followed
        async with found.get(
            url,
            middlewares=(),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            await response.read()
            return response.status

    prober = probes.task_for(policy, send, alive)
    assert prober is not None  # (only called when a policy has a health check)
    prober.ensure_started()
    weakref.finalize(owner, prober.cancel)
    if isinstance(owner.connector, _Connector):  # seawall's: it stops the prober as it closes
        owner.connector.probers.append(prober)
    return prober


class _Connector(aiohttp.TCPConnector):
    """`connector()`'s TCPConnector: when its session closes it, it first stops the health
    probers of that session (so none is left pending on the loop)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.probers: list[probes.TaskProbers] = []

    async def close(self, *, abort_ssl: bool = False) -> None:
        probers, self.probers = self.probers, []
        for prober in probers:
            await prober.stop()
        await super().close(abort_ssl=abort_ssl)


#: What aiohttp's `ClientSession._request` re-runs once, around the whole middleware chain,
#: when the session's `_retry_connection` was still on as the request began.
_RERUN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_RERUN_ERRORS = (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)
#: The failure aiohttp is about to re-run in this task: ((method, url), error).
_verdict: ContextVar[tuple[tuple[str, Any], BaseException] | None] = ContextVar(
    "seawall_aiohttp_verdict", default=None
)


async def _rerun_decided(policy: PolicyLike, exchange: _Exchange) -> ClientResponse:
    """A request for which aiohttp had already decided its silent re-run: if it fails in a way
    aiohttp re-runs, leave seawall's verdict for the re-run to find."""
    try:
        return await policy.run_async(exchange)
    except _RERUN_ERRORS as error:
        request = exchange.request
        if (
            request.method in _RERUN_METHODS
            and exchange.rewind()
            and not isinstance(error, aiohttp.ClientConnectorError)
        ):
            _verdict.set(((request.method, request.url), error))
        raise


async def _raise(error: BaseException) -> ClientResponse:
    raise error


def connector(policy: PolicyLike | None = None, **options: Any) -> aiohttp.TCPConnector:
    """A `TCPConnector` sized from `policy.pool` (`limit`, `keepalive_timeout`); call it
    inside a running event loop. `limit_per_host` stays 0 (none of its own): the pool's limit
    is per client, and a per-host limit equal to it could never bind first, while aiohttp would
    keep per-host books on every request for it (about 1% of a request's CPU). Any option given
    here is passed on as it is."""
    _validate.arguments("seawall.aiohttp.connector", _RULES, {"policy": policy})
    pool = (policy if policy is not None else Policy()).pool
    options.setdefault("limit", pool.max_connections)
    options.setdefault("keepalive_timeout", pool.keepalive_expiry)
    return _Connector(**options)


def session(
    policy: PolicyLike | None = None, *, read_body: bool = False, **options: Any
) -> aiohttp.ClientSession:
    """An `aiohttp.ClientSession` with seawall's middleware and a connector sized from the
    pool (call it inside a running event loop)."""
    _validate.arguments(
        "seawall.aiohttp.session", _RULES, {"policy": policy, "read_body": read_body}
    )
    chosen: PolicyLike = policy if policy is not None else Policy()
    options.setdefault("connector", connector(chosen))
    resilient = aiohttp.ClientSession(
        middlewares=[middleware(chosen, read_body=read_body)], **options
    )
    _take_over(resilient, chosen)
    return resilient


def _take_over(owner: aiohttp.ClientSession, policy: PolicyLike) -> None:
    """seawall does, per attempt, two things aiohttp does per logical request: it retries
    broken connections (aiohttp would re-run the whole chain once more), and, when its
    telemetry is on, it reports a CLIENT span (the official aiohttp-client instrumentation's
    TraceConfig would add one around all attempts)."""
    owner._retry_connection = False
    if policy.telemetry is not None:
        owner._trace_configs = official.without_official(owner._trace_configs)


__all__ = [
    "AttemptTimeout",
    "BulkheadFullError",
    "CircuitOpenError",
    "DeadlineExceeded",
    "ERRORS",
    "RetryBudgetExhausted",
    "connector",
    "error_kind",
    "middleware",
    "session",
]
