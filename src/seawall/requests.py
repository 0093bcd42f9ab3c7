"""requests adapter: `ResilientAdapter`, an `HTTPAdapter` to mount on a `requests.Session`.

    session = requests.Session()
    session.mount("https://", ResilientAdapter(policy))
    session.mount("http://", ResilientAdapter(policy))
    # or: session = seawall.requests.session(policy)

It only translates between requests and the pipeline. urllib3's own retries are off, so nothing
retries twice. With `stream=False` (the default) the body is read inside the attempt, so a
failure while reading it is retried like any other; with `stream=True` the response is returned
unread. File bodies are rewound before a resend; generators and bodies that cannot be rewound
are never resent. Waiting for a free pooled connection is bounded by the attempt's connect
timeout (plain requests either fails at once or, with `pool_block=True`, waits forever).
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Generator
from typing import Any, ClassVar

import requests
import requests.adapters
import urllib3
from requests.utils import rewind_body
from urllib3.exceptions import (
    EmptyPoolError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.timeout import Timeout as Urllib3Timeout

from . import errors, probes
from ._layers import warn_if_retrying
from .pipeline import Policy, PolicyLike, Target
from .policies import _validate
from .policies.classify import ErrorKind
from .telemetry import official


class _Timeout(requests.ConnectionError, requests.Timeout):
    """requests' own shape of a timeout that is also a connection error (like ConnectTimeout)."""


# seawall's rejections as requests errors: `except requests.RequestException` (and
# `requests.ConnectionError`) still catch them; `DeadlineExceeded` is also `requests.Timeout`.
class CircuitOpenError(errors.CircuitOpenError, requests.ConnectionError):
    """`seawall.CircuitOpenError`, as a `requests.ConnectionError`."""


class BulkheadFullError(errors.BulkheadFullError, requests.ConnectionError):
    """`seawall.BulkheadFullError`, as a `requests.ConnectionError`."""


class RetryBudgetExhausted(errors.RetryBudgetExhausted, requests.ConnectionError):
    """`seawall.RetryBudgetExhausted`, as a `requests.ConnectionError`."""


class DeadlineExceeded(errors.DeadlineExceeded, _Timeout):
    """`seawall.DeadlineExceeded`, as a `requests.Timeout` and a `requests.ConnectionError`."""


ERRORS = errors.flavours(
    CircuitOpenError, BulkheadFullError, RetryBudgetExhausted, DeadlineExceeded
)


class PoolTimeout(requests.ConnectionError):
    """No pooled connection was freed in time (urllib3's EmptyPoolError, as a requests error)."""


def error_kind(error: BaseException) -> ErrorKind | None:
    """The neutral kind of a requests error; None for errors that are not transient."""
    if isinstance(error, errors.ResilienceError):
        return None
    if isinstance(error, PoolTimeout):
        return ErrorKind.POOL_TIMEOUT
    if isinstance(error, requests.ConnectTimeout):
        return ErrorKind.CONNECT_TIMEOUT
    if isinstance(error, requests.ReadTimeout):
        return ErrorKind.READ_TIMEOUT
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return ErrorKind.PROTOCOL  # a body cut short
    if isinstance(error, requests.exceptions.SSLError):
        return None  # a certificate will not fix itself on a retry
    if isinstance(error, requests.ConnectionError):
        cause = error.args[0] if error.args else None
        if isinstance(cause, MaxRetryError):
            cause = cause.reason
        if isinstance(cause, NewConnectionError):
            return ErrorKind.CONNECT
        if isinstance(cause, ReadTimeoutError):
            return ErrorKind.READ_TIMEOUT  # a read timeout while reading the body
        if isinstance(cause, ProtocolError):
            return ErrorKind.PROTOCOL  # closed without a response
        return ErrorKind.RESET
    return None


def _cut(timeout: Any, limit: float) -> Any:
    """The caller's requests timeout, each phase cut to `limit` seconds."""
    if limit == math.inf:
        return timeout
    if isinstance(timeout, Urllib3Timeout):
        connect, read = timeout.connect_timeout, timeout.read_timeout
    elif isinstance(timeout, tuple):
        connect, read = timeout
    else:
        connect = read = timeout
    return _phase(connect, limit), _phase(read, limit)


def _phase(value: Any, limit: float) -> float:
    # None, or urllib3's default sentinel, means no limit of the caller's own
    if isinstance(value, (int, float)) and value <= limit:
        return float(value)
    return limit


class _BoundedWaitMixin:
    """A urllib3 pool whose wait for a free connection ends with the connect timeout."""

    def urlopen(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("pool_timeout") is None:
            timeout = kwargs.get("timeout")
            if isinstance(timeout, Urllib3Timeout):
                kwargs["pool_timeout"] = timeout.connect_timeout
        return super().urlopen(*args, **kwargs)  # type: ignore[misc]


class _HTTPPool(_BoundedWaitMixin, urllib3.HTTPConnectionPool):
    pass


class _HTTPSPool(_BoundedWaitMixin, urllib3.HTTPSConnectionPool):
    pass


class _Exchange:
    """One request, as the pipeline sees it."""

    __slots__ = ("request", "method", "telemetry", "_adapter", "_stream", "_timeout", "_options")
    errors = ERRORS

    def __init__(
        self,
        adapter: ResilientAdapter,
        request: requests.PreparedRequest,
        stream: bool,
        timeout: Any,
        options: dict[str, Any],
    ) -> None:
        self.request = request
        self.method = (request.method or "GET").upper()
        self.telemetry: Any = None  # the telemetry listener's per-request state
        self._adapter = adapter
        self._stream = stream
        self._timeout = timeout
        self._options = options

    def origin(self) -> str:
        target = self.target()
        return f"{target.scheme}://{target.host}:{target.port}"

    def target(self) -> Target:
        parsed = urllib3.util.parse_url(self.request.url or "")
        scheme = parsed.scheme or "http"
        return Target(
            self.method,
            scheme,
            parsed.host or "",
            parsed.port or (443 if scheme == "https" else 80),
            parsed.path or "/",
        )

    def has_header(self, name: str) -> bool:
        return name in self.request.headers

    def caller_timeout(self) -> bool:
        return self._timeout is not None  # requests' default is no timeout at all

    def url(self) -> str:
        return self.request.url or ""

    def set_header(self, name: str, value: str) -> None:
        self.request.headers[name] = value

    def headers(self) -> list[tuple[str, str]]:
        return [
            (name, value if isinstance(value, str) else value.decode("latin-1"))
            for name, value in self.request.headers.items()
        ]

    def body(self) -> bytes | None:
        body = self.request.body
        if body is None:
            return b""
        if isinstance(body, str):
            return body.encode("utf-8")
        return body if isinstance(body, bytes) else None  # a file or a generator: streamed

    def protocol(self, response: requests.Response) -> str | None:
        version = getattr(response.raw, "version", None)  # urllib3: 11, 10, 20
        return {10: "1.0", 11: "1.1", 20: "2"}.get(version) if isinstance(version, int) else None

    def peer(self, response: requests.Response) -> tuple[str, int] | None:
        """The address and port of the socket the response came on (while it is open)."""
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        try:
            address = sock.getpeername() if sock is not None else None
        except OSError:
            return None
        return (address[0], address[1]) if isinstance(address, tuple) else None

    def send(self, timeout: float, time_left: float) -> requests.Response:
        adapter = self._adapter
        send = (
            adapter.inner.send
            if adapter.inner is not None
            else super(ResilientAdapter, adapter).send
        )
        try:
            response = send(
                self.request,
                stream=self._stream,
                timeout=_cut(self._timeout, timeout),
                **self._options,
            )
        except EmptyPoolError as error:
            raise PoolTimeout(error, request=self.request) from error
        if not self._stream:
            if time_left != math.inf:
                _HeldBody(response, time_left, self.errors, None)
            try:
                response.content  # noqa: B018 - read the body inside the attempt
            except BaseException:
                response.close()
                raise
        return response

    def hold(self, response: requests.Response, time_left: float, dependency: str) -> None:
        if time_left != math.inf and self._stream:  # (an unstreamed one kept it in the attempt)
            _HeldBody(response, time_left, self.errors, dependency)

    def status(self, response: requests.Response) -> int:
        return response.status_code

    def header(self, response: requests.Response, name: str) -> str | None:
        value: str | None = response.headers.get(name)
        return value

    def discard(self, response: requests.Response) -> None:
        response.close()

    def rewind(self) -> bool:
        body = self.request.body
        if body is None or isinstance(body, (bytes, str)):
            return True
        if not hasattr(body, "read"):
            return False  # a generator or iterator: its items are gone
        try:
            rewind_body(self.request)  # seeks back to where the body started
        except requests.exceptions.UnrewindableBodyError:
            return False
        return True

    def error_kind(self, error: BaseException) -> ErrorKind | None:
        return error_kind(error)


class _HeldBody:
    """A response body that keeps the request's total deadline, for every read through
    `raw.stream` (`.content`, `.text`, `.json()`, `iter_content`, `iter_lines`; reading
    `response.raw` itself is not covered): each read takes at most what the socket has (one
    `read1`), waiting no longer than the time left (the socket's timeout is cut to it), and a
    read past the deadline raises the flavoured `DeadlineExceeded` of `dependency` (a held body,
    read after the pipeline returned) or, with no dependency (the body read inside the attempt),
    a `requests.ReadTimeout` that the pipeline reports as the deadline, with it as the cause."""

    __slots__ = ("_raw", "_at", "_read_timeout", "_errors", "_dependency")

    def __init__(
        self,
        response: requests.Response,
        time_left: float,
        table: errors.ErrorTypes,
        dependency: str | None,
    ) -> None:
        raw = response.raw
        self._raw = weakref.ref(raw)  # raw holds this one's stream: no cycle for the GC
        self._at = time.monotonic() + time_left
        connection = getattr(raw, "connection", None)
        timeout = getattr(connection, "timeout", None)  # the read timeout urllib3 set
        self._read_timeout = timeout if isinstance(timeout, (int, float)) else math.inf
        self._errors = table
        self._dependency = dependency
        if isinstance(raw, urllib3.HTTPResponse):
            raw.stream = self.stream  # type: ignore[method-assign]

    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Generator[bytes]:
        raw = self._raw()
        if raw is None:  # (never: raw is what calls this)
            return
        # read1: what the socket has, one recv at most (urllib3 1.26 has none: read, which
        # waits for `size` bytes, so there the deadline is checked between reads only)
        read = getattr(raw, "read1", None) or raw.read
        at, size = self._at, amt or 2**16
        while True:
            left = at - time.monotonic()
            if left <= 0:
                raise self._late(None)
            if left < self._read_timeout:  # else the socket keeps urllib3's read timeout
                sock = getattr(raw.connection, "sock", None)  # None once the body is in
                if sock is not None:
                    sock.settimeout(left)
            try:
                data = read(size, decode_content=decode_content)
            except ReadTimeoutError as error:
                if time.monotonic() >= at:
                    raise self._late(error) from error
                raise
            if not data:
                return
            yield data

    def _late(self, cause: BaseException | None) -> Exception:
        if self._dependency is None:
            return requests.ReadTimeout("the total deadline ran out while the body was being read")
        return errors.body_deadline(self._errors, self._dependency, cause)


class ResilientAdapter(requests.adapters.HTTPAdapter):
    """An `HTTPAdapter` that runs every request through `policy` (thread-safe).

    The pool is sized from `policy.pool`: `pool_maxsize` connections per host (the pool blocks
    for a free one, for at most the attempt's connect timeout) and `pool_connections` hosts
    kept (default 10, as requests).
    """

    RULES: ClassVar[_validate.Rules] = {
        "policy": _validate.POLICY,
        "pool_connections": _validate.Count(),
        "adapter": _validate.Instance(
            requests.adapters.BaseAdapter, "a requests.adapters.BaseAdapter", optional=True
        ),
    }

    def __init__(
        self,
        policy: PolicyLike | None = None,
        *,
        pool_connections: int = 10,
        adapter: requests.adapters.BaseAdapter | None = None,
    ) -> None:
        _validate.arguments(
            type(self).__name__,
            self.RULES,
            {"policy": policy, "pool_connections": pool_connections, "adapter": adapter},
        )
        self.policy: PolicyLike = policy if policy is not None else Policy()
        #: An adapter to wrap (its sends go through the policy), instead of our own pool.
        self.inner = adapter
        if adapter is not None:
            warn_if_retrying(type(self).__name__, adapter)
        super().__init__(
            pool_connections=pool_connections,
            pool_maxsize=self.policy.pool.max_connections,
            max_retries=0,
            pool_block=True,
        )
        self._prober = probes.thread_for(self.policy, self._probe)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        options = {"verify": verify, "cert": cert, "proxies": proxies}
        return self.policy.run(_Exchange(self, request, stream, timeout, options))

    def _probe(self, url: str, timeout: float) -> int:
        """One health probe, straight through the wrapped adapter (not the policy)."""
        prepared = requests.Request("GET", url).prepare()
        send = self.inner.send if self.inner is not None else super().send
        response = send(prepared, timeout=timeout)
        response.close()
        return int(response.status_code)

    def close(self) -> None:
        prober, self._prober = getattr(self, "_prober", None), None
        if prober is not None:
            prober.stop()
        super().close()
        if self.inner is not None:
            self.inner.close()


class ResilientSession(requests.Session):
    """A `requests.Session` that, when seawall reports the HTTP spans (`seawall_spans`), keeps
    the official OpenTelemetry requests instrumentation from wrapping the whole logical request
    in one more CLIENT span around seawall's one-per-attempt spans."""

    seawall_spans = True

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if not self.seawall_spans:
            return super().send(request, **kwargs)
        return official.quietly(lambda: super(ResilientSession, self).send(request, **kwargs))


def quiet_send(
    session: requests.Session, request: requests.PreparedRequest, **kwargs: Any
) -> requests.Response:
    """`session.send` with HTTP instrumentation suppressed (its class's own send, which the
    official instrumentation may have patched, sees the suppression and stays quiet)."""
    return official.quietly(lambda: type(session).send(session, request, **kwargs))


def session(policy: PolicyLike | None = None) -> requests.Session:
    """A `ResilientSession` with one `ResilientAdapter` mounted for http:// and https://."""
    _validate.arguments(
        "seawall.requests.session", {"policy": _validate.POLICY}, {"policy": policy}
    )
    adapter = ResilientAdapter(policy)
    resilient = ResilientSession()
    resilient.seawall_spans = adapter.policy.telemetry is not None
    resilient.mount("https://", adapter)
    resilient.mount("http://", adapter)
    return resilient


__all__ = [
    "BulkheadFullError",
    "CircuitOpenError",
    "DeadlineExceeded",
    "ERRORS",
    "PoolTimeout",
    "ResilientAdapter",
    "ResilientSession",
    "RetryBudgetExhausted",
    "error_kind",
    "session",
]
