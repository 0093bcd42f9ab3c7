"""httpx transports: `ResilientTransport` (httpx.Client) and `AsyncResilientTransport`
(httpx.AsyncClient).

They only translate between httpx and the pipeline; every decision is the Policy's. Responses
are returned unread, so `client.stream(...)` streams as before. A failure while the *client*
reads the body (after the transport returned) cannot be seen here; pass `buffer_body=True` to
read bodies inside the attempt, so that such failures are retried too (and streaming is lost).
"""

from __future__ import annotations

import logging
import math
import time
from asyncio import _get_running_loop as _running_loop  # C-fast; None outside asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, ClassVar

import httpx

from . import errors, probes
from ._layers import warn_if_retrying
from .overrides import override
from .pipeline import Policy, PolicyLike, Target
from .policies import _validate
from .policies.classify import ErrorKind, kind_of

_logger = logging.getLogger("seawall")


# seawall's rejections as httpx errors: `except httpx.TransportError` still catches them, and
# a `DeadlineExceeded` is also an `httpx.TimeoutException`.
class CircuitOpenError(errors.CircuitOpenError, httpx.TransportError):
    """`seawall.CircuitOpenError`, as an `httpx.TransportError`."""


class BulkheadFullError(errors.BulkheadFullError, httpx.TransportError):
    """`seawall.BulkheadFullError`, as an `httpx.TransportError`."""


class RetryBudgetExhausted(errors.RetryBudgetExhausted, httpx.TransportError):
    """`seawall.RetryBudgetExhausted`, as an `httpx.TransportError`."""


class DeadlineExceeded(errors.DeadlineExceeded, httpx.TimeoutException):
    """`seawall.DeadlineExceeded`, as an `httpx.TimeoutException` (a `TransportError`)."""


ERRORS = errors.flavours(
    CircuitOpenError, BulkheadFullError, RetryBudgetExhausted, DeadlineExceeded
)

# Most specific first: ConnectTimeout is also a TimeoutException, and so on.
_KINDS: tuple[tuple[type[Exception], ErrorKind], ...] = (
    (httpx.ConnectTimeout, ErrorKind.CONNECT_TIMEOUT),
    (httpx.PoolTimeout, ErrorKind.POOL_TIMEOUT),
    (httpx.ReadTimeout, ErrorKind.READ_TIMEOUT),
    (httpx.WriteTimeout, ErrorKind.WRITE_TIMEOUT),
    (httpx.ConnectError, ErrorKind.CONNECT),
    (httpx.ReadError, ErrorKind.RESET),
    (httpx.WriteError, ErrorKind.RESET),
    (httpx.RemoteProtocolError, ErrorKind.PROTOCOL),
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def error_kind(error: BaseException) -> ErrorKind | None:
    """The neutral kind of an httpx error; None for errors that are not transient."""
    if isinstance(error, httpx.TransportError) and not isinstance(error, errors.ResilienceError):
        return kind_of(error, _KINDS)
    return None


def limits(policy: PolicyLike) -> httpx.Limits:
    """The policy's pool limits as httpx.Limits."""
    pool = policy.pool
    return httpx.Limits(
        max_connections=pool.max_connections,
        max_keepalive_connections=pool.max_keepalive,
        keepalive_expiry=pool.keepalive_expiry,
    )


#: The per-request override channel: `client.get(url, extensions={"seawall": {...}})` takes the
#: arguments of `seawall.override` (`retry`, `timeouts`) for that request alone.
_CHANNEL = "seawall"


def _channel(request: httpx.Request) -> override:
    """The override a request asks for in its `extensions["seawall"]` (checked)."""
    return override.of(request.extensions[_CHANNEL], 'httpx extensions["seawall"]')


_HTTPX_DEFAULT_TIMEOUT = httpx.Timeout(5.0).as_dict()  # httpx.Client()'s own, not the caller's


class _Exchange:
    """One request, as the pipeline sees it (shared by the sync and async flavours)."""

    __slots__ = ("request", "method", "telemetry", "_transport", "_timeouts", "_buffer")
    errors = ERRORS

    def __init__(self, request: httpx.Request, transport: Any, buffer: bool) -> None:
        self.request = request
        self.method = request.method
        self.telemetry: Any = None  # the telemetry listener's per-request state
        self._transport = transport
        self._timeouts: dict[str, float | None] | None = request.extensions.get("timeout")
        self._buffer = buffer  # the body is read inside the attempt

    def url(self) -> str:
        return str(self.request.url)

    def set_header(self, name: str, value: str) -> None:
        self.request.headers[name] = value

    def protocol(self, response: httpx.Response) -> str:
        return response.http_version.removeprefix("HTTP/")

    def peer(self, response: httpx.Response) -> tuple[str, int] | None:
        """The address and port of the socket the response came on."""
        stream = response.extensions.get("network_stream")
        address = stream.get_extra_info("server_addr") if stream is not None else None
        return (address[0], address[1]) if address else None

    def headers(self) -> list[tuple[str, str]]:
        return list(self.request.headers.multi_items())

    def body(self) -> bytes | None:
        # httpx reads a ByteStream body when the request is built; anything else streams
        return self.request.content if isinstance(self.request.stream, httpx.ByteStream) else None

    def origin(self) -> str:
        url = self.request.url
        return f"{url.scheme}://{url.host}:{url.port or _DEFAULT_PORTS.get(url.scheme, 0)}"

    def target(self) -> Target:
        url = self.request.url
        return Target(
            self.method,
            url.scheme,
            url.host,
            url.port or _DEFAULT_PORTS.get(url.scheme, 0),
            url.path,
        )

    def has_header(self, name: str) -> bool:
        return name in self.request.headers

    def caller_timeout(self) -> bool:
        # httpx puts a timeout on every request: only one other than its default was chosen
        return self._timeouts is not None and self._timeouts != _HTTPX_DEFAULT_TIMEOUT

    def status(self, response: httpx.Response) -> int:
        return int(response.status_code)

    def header(self, response: httpx.Response, name: str) -> str | None:
        value: str | None = response.headers.get(name)
        return value

    def rewind(self) -> bool:
        # Bytes, str, JSON, forms and no body live in a ByteStream and can be sent again;
        # generators would raise StreamConsumed and file-likes would silently send b"".
        return isinstance(self.request.stream, httpx.ByteStream)

    def error_kind(self, error: BaseException) -> ErrorKind | None:
        return error_kind(error)

    def _limit(self, timeout: float) -> None:
        """Cut the client's connect/read/write/pool timeouts to this attempt's share."""
        if timeout == math.inf:
            return
        own = self._timeouts or {}
        cut = {}
        for phase in ("connect", "read", "write", "pool"):
            limit = own.get(phase)
            cut[phase] = timeout if limit is None or limit > timeout else limit
        self.request.extensions["timeout"] = cut


class _Deadline:
    """The total deadline a response body keeps (see `_HeldStream`): past it, a read raises
    the flavoured `DeadlineExceeded` of `dependency` (a held body, read after the pipeline
    returned), or, with no dependency (a body read inside the attempt), an `httpx.ReadTimeout`
    that the pipeline reports as the deadline, with it as the cause."""

    def __init__(self, time_left: float, table: errors.ErrorTypes, dependency: str | None) -> None:
        self._at = time.monotonic() + time_left
        self._errors = table
        self._dependency = dependency

    def _late(self, cause: httpx.TimeoutException | None) -> Exception:
        if self._dependency is None:
            return httpx.ReadTimeout("the total deadline ran out while the body was being read")
        return errors.body_deadline(self._errors, self._dependency, cause)


class _HeldStream(_Deadline, httpx.SyncByteStream):
    """A response body that keeps the request's total deadline: a read that starts past it,
    or that times out past it, raises instead (and the client closes the response, so its
    connection is not reused half-read). A read that starts in time may end up to one read
    timeout later."""

    def __init__(
        self,
        inner: httpx.SyncByteStream,
        time_left: float,
        table: errors.ErrorTypes,
        dependency: str | None,
    ) -> None:
        super().__init__(time_left, table, dependency)
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        at, chunks = self._at, iter(self._inner)
        try:
            while True:
                if time.monotonic() >= at:
                    raise self._late(None)
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                except httpx.TimeoutException as error:
                    if time.monotonic() >= at:
                        raise self._late(error) from error
                    raise
                yield chunk
        finally:
            close = getattr(chunks, "close", None)  # a generator left mid-way: end it now
            if close is not None:
                close()

    def close(self) -> None:
        self._inner.close()


class _AsyncHeldStream(_Deadline, httpx.AsyncByteStream):
    """The asyncio twin of `_HeldStream`."""

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        time_left: float,
        table: errors.ErrorTypes,
        dependency: str | None,
    ) -> None:
        super().__init__(time_left, table, dependency)
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        at, chunks = self._at, self._inner.__aiter__()
        try:
            while True:
                if time.monotonic() >= at:
                    raise self._late(None)
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
                except httpx.TimeoutException as error:
                    if time.monotonic() >= at:
                        raise self._late(error) from error
                    raise
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)  # an async generator left mid-way
            if aclose is not None:
                await aclose()

    async def aclose(self) -> None:
        await self._inner.aclose()


class _SyncExchange(_Exchange):
    __slots__ = ()

    def send(self, timeout: float, time_left: float) -> httpx.Response:
        self._limit(timeout)
        response: httpx.Response = self._transport.handle_request(self.request)
        if self._buffer:
            if time_left != math.inf:
                assert isinstance(response.stream, httpx.SyncByteStream)
                response.stream = _HeldStream(response.stream, time_left, ERRORS, None)
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        return response

    def hold(self, response: httpx.Response, time_left: float, dependency: str) -> None:
        if time_left != math.inf and not self._buffer:  # (a buffered one kept it in the attempt)
            assert isinstance(response.stream, httpx.SyncByteStream)
            response.stream = _HeldStream(response.stream, time_left, self.errors, dependency)

    def discard(self, response: httpx.Response) -> None:
        response.close()


class _AsyncExchange(_Exchange):
    __slots__ = ()
    cut_after = None  # httpcore enforces the attempt timeout itself (request extensions)
    loop = None

    def send(self, timeout: float, time_left: float) -> Awaitable[httpx.Response]:
        self._limit(timeout)
        if self._buffer:
            return self._send_buffered(time_left)
        # httpcore's own coroutine, not wrapped: one coroutine layer less on every suspension
        sent: Awaitable[httpx.Response] = self._transport.handle_async_request(self.request)
        return sent

    async def _send_buffered(self, time_left: float) -> httpx.Response:
        response: httpx.Response = await self._transport.handle_async_request(self.request)
        if time_left != math.inf:
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _AsyncHeldStream(response.stream, time_left, ERRORS, None)
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        return response

    def hold(self, response: httpx.Response, time_left: float, dependency: str) -> None:
        if time_left != math.inf and not self._buffer:  # (a buffered one kept it in the attempt)
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _AsyncHeldStream(response.stream, time_left, self.errors, dependency)

    def discard(self, response: httpx.Response) -> Awaitable[None]:
        return response.aclose()


def _pool_counts(transport: Any) -> dict[str, tuple[int, int]] | None:
    """(active, idle) connections of an httpx pool by origin ("scheme://host:port", as
    `origin()` names it), when the transport has one."""
    pool = getattr(transport, "_pool", None)
    connections = getattr(pool, "connections", None)
    if connections is None:
        return None
    counts: dict[str, tuple[int, int]] = {}
    for connection in list(connections):
        origin = getattr(connection, "_origin", None)  # httpcore's, set when it is made
        name = (
            "_unknown"
            if origin is None
            else f"{origin.scheme.decode()}://{origin.host.decode()}:{origin.port}"
        )
        active, idle = counts.get(name, (0, 0))
        counts[name] = (active, idle + 1) if connection.is_idle() else (active + 1, idle)
    return counts


def _setup(
    owner: Any, policy: PolicyLike | None, transport: Any, build: type, options: dict[str, Any]
) -> tuple[PolicyLike, Any]:
    """The policy and the inner transport of a seawall transport (built with the policy's pool
    limits unless one is given)."""
    chosen: PolicyLike = policy if policy is not None else Policy()
    if transport is not None and options:
        raise TypeError(
            f"{type(owner).__name__}: pass either transport= or options to build "
            f"one, not both (got {sorted(options)})"
        )
    options.setdefault("limits", limits(chosen))
    if transport is not None:
        warn_if_retrying(type(owner).__name__, transport)
    return chosen, transport if transport is not None else build(**options)


class ResilientTransport(httpx.BaseTransport):
    """An httpx transport that runs every request through `policy`.

    `transport`: the transport to wrap (default: an `httpx.HTTPTransport` with the policy's pool
    limits, built with `transport_options`, e.g. `verify=`, `http2=`). Use it as
    `httpx.Client(transport=ResilientTransport(policy))`.
    """

    RULES: ClassVar[_validate.Rules] = {
        "policy": _validate.POLICY,
        "transport": _validate.Instance(
            httpx.BaseTransport, "an httpx.BaseTransport", optional=True
        ),
        "buffer_body": _validate.FLAG,
    }

    def __init__(
        self,
        policy: PolicyLike | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        buffer_body: bool = False,
        **transport_options: Any,
    ) -> None:
        _validate.arguments(
            type(self).__name__,
            self.RULES,
            {"policy": policy, "transport": transport, "buffer_body": buffer_body},
        )
        self.policy, self.transport = _setup(
            self, policy, transport, httpx.HTTPTransport, transport_options
        )
        self.buffer_body = buffer_body
        self.policy.track_pool(self)  # once it has a pool: the gauge reads it from any thread
        self._prober = probes.thread_for(self.policy, self._probe)

    def pool_counts(self) -> dict[str, tuple[int, int]] | None:
        return _pool_counts(self.transport)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        exchange = _SyncExchange(request, self.transport, self.buffer_body)
        if _CHANNEL in request.extensions:  # extensions={"seawall": {"retry": None, ...}}
            with _channel(request):
                return self.policy.run(exchange)
        return self.policy.run(exchange)

    def _probe(self, url: str, timeout: float) -> int:
        """One health probe, straight through the wrapped transport."""
        response = self.transport.handle_request(_probe_request(url, timeout))
        try:
            response.read()
        finally:
            response.close()
        return int(response.status_code)

    def close(self) -> None:
        if self._prober is not None:
            self._prober.stop()
        self.transport.close()


class AsyncResilientTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of `ResilientTransport`, for `httpx.AsyncClient`. Under another event
    loop (Trio), requests pass through to the wrapped transport untouched, with one warning."""

    RULES: ClassVar[_validate.Rules] = {
        **ResilientTransport.RULES,
        "transport": _validate.Instance(
            httpx.AsyncBaseTransport, "an httpx.AsyncBaseTransport", optional=True
        ),
    }

    def __init__(
        self,
        policy: PolicyLike | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        buffer_body: bool = False,
        **transport_options: Any,
    ) -> None:
        _validate.arguments(
            type(self).__name__,
            self.RULES,
            {"policy": policy, "transport": transport, "buffer_body": buffer_body},
        )
        self.policy, self.transport = _setup(
            self, policy, transport, httpx.AsyncHTTPTransport, transport_options
        )
        self.buffer_body = buffer_body
        self.policy.track_pool(self)  # once it has a pool: the gauge reads it from any thread
        self._prober = probes.task_for(self.policy, self._probe)

    def pool_counts(self) -> dict[str, tuple[int, int]] | None:
        return _pool_counts(self.transport)

    def handle_async_request(  # type: ignore[override]
        self, request: httpx.Request
    ) -> Awaitable[httpx.Response]:
        if _running_loop() is None:  # not asyncio: Trio, or anyio's Trio backend
            return self._pass_through(request)
        if self._prober is not None:
            self._prober.ensure_started()  # a loop is running now
        exchange = _AsyncExchange(request, self.transport, self.buffer_body)
        if _CHANNEL in request.extensions:  # extensions={"seawall": {"retry": None, ...}}
            return self._overridden(request, exchange)
        # The pipeline's coroutine itself, awaited by httpx: no wrapping layer.
        return self.policy.run_async(exchange)

    async def _overridden(self, request: httpx.Request, exchange: _AsyncExchange) -> httpx.Response:
        with _channel(request):
            return await self.policy.run_async(exchange)

    _warned = False

    def _pass_through(self, request: httpx.Request) -> Awaitable[httpx.Response]:
        """seawall's async driver waits, queues and times out on asyncio's loop: under another
        event loop the request goes to the wrapped transport untouched, said once per client."""
        if not self._warned:
            self._warned = True
            _logger.warning(
                "seawall: httpx.AsyncClient under an event loop other than asyncio (Trio?): its "
                "requests pass through without seawall's retries, breaker, bulkhead and "
                "timeouts (seawall's async driver needs asyncio)"
            )
        passed: Awaitable[httpx.Response] = self.transport.handle_async_request(request)
        return passed

    async def _probe(self, url: str, timeout: float) -> int:
        """One health probe, straight through the wrapped transport."""
        response = await self.transport.handle_async_request(_probe_request(url, timeout))
        try:
            await response.aread()
        finally:
            await response.aclose()
        return int(response.status_code)

    async def aclose(self) -> None:
        if self._prober is not None:
            await self._prober.stop()
        await self.transport.aclose()


def _probe_request(url: str, timeout: float) -> httpx.Request:
    limits = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    return httpx.Request("GET", url, extensions={"timeout": limits})


__all__ = [
    "AsyncResilientTransport",
    "BulkheadFullError",
    "CircuitOpenError",
    "DeadlineExceeded",
    "ERRORS",
    "ResilientTransport",
    "RetryBudgetExhausted",
    "error_kind",
    "limits",
]
