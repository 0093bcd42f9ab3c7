"""What a request looks like to the pipeline: the protocols adapters implement.

An adapter presents each logical request as an `Exchange` (threads) or an `AsyncExchange`
(asyncio) and hands it to a `PolicyLike` (a `Policy`, or a `seawall.config.Router` that picks
one per request). The pipeline decides through these members only; telemetry reads a few more
(`url()`, `set_header()`, `protocol()`, `peer()`, `telemetry`), declared here too so that every
member an adapter must provide is in one place. Dead letters (`seawall.deadletters`) read
`headers()` and `body()`, only when a request is recorded.

The total deadline outlives the pipeline: `hold` hands the adapter what is left of it for the
body the caller reads after the request has returned (docs/policies.md, Timeouts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol, TypeVar

from .errors import ErrorTypes
from .policies.classify import ErrorKind
from .policies.pool import Pool

R = TypeVar("R")


#: `Target.scheme` of a protected call (`seawall.protect`): not HTTP. Its host is the
#: dependency, its path the function's name, its method "CALL".
CALL = "call"


class Target(NamedTuple):
    """The parts of a request that name where it goes (for breaker keys and config matching)."""

    method: str
    scheme: str
    host: str
    port: int
    path: str


class Exchange(Protocol[R]):
    """One logical request as a synchronous adapter presents it to the pipeline."""

    method: str  # upper case
    request: Any  # the client's own request object
    errors: ErrorTypes  # seawall's rejections in this client's flavour
    #: Telemetry's per-request state, kept on the exchange (None until telemetry sets it).
    telemetry: Any

    def origin(self) -> str: ...  # "scheme://host:port": the default dependency name
    def target(self) -> Target: ...
    def has_header(self, name: str) -> bool: ...
    def caller_timeout(self) -> bool: ...  # the calling code set this request's timeout itself
    #: One attempt: `timeout` is the attempt's, `time_left` the total deadline's, which a body
    #: read inside the attempt must keep too (raising a timeout of the client past it); both
    #: in seconds, inf when unlimited.
    def send(self, timeout: float, time_left: float) -> R: ...
    #: `response` goes to the caller: keep the total deadline (`time_left` seconds from now,
    #: inf for none) while its body is read, raising `errors[DeadlineExceeded]` for a read
    #: past it (`errors.body_deadline`, of `dependency`).
    def hold(self, response: R, time_left: float, dependency: str) -> None: ...
    def status(self, response: R) -> int | None: ...  # None: not HTTP (a protected call)
    def header(self, response: R, name: str) -> str | None: ...
    def discard(self, response: R) -> None: ...  # close a response that will not be returned
    def rewind(self) -> bool: ...  # make the body ready to send again; False if it cannot be
    def error_kind(self, error: BaseException) -> ErrorKind | None: ...  # None: not transient
    # -- for telemetry
    def url(self) -> str: ...  # the full URL (telemetry redacts it before recording)
    def set_header(self, name: str, value: str) -> None: ...  # e.g. traceparent, per attempt
    def protocol(self, response: R) -> str | None: ...  # HTTP version, "1.1", "2"; None: unknown
    def peer(self, response: R) -> tuple[str, int] | None: ...  # the socket's (address, port)
    # -- for dead letters
    def headers(self) -> list[tuple[str, str]]: ...  # the request's headers, as they were sent
    def body(self) -> bytes | None: ...  # the request's body in memory; None: streamed/unknown


class AsyncExchange(Protocol[R]):
    """The asyncio twin of `Exchange`: `send` and `discard` return awaitables (an adapter may
    hand back its client's own coroutine rather than wrap it: every coroutine layer costs CPU
    on each of the many suspensions of a request)."""

    method: str
    request: Any
    errors: ErrorTypes
    telemetry: Any

    def origin(self) -> str: ...
    def target(self) -> Target: ...
    def has_header(self, name: str) -> bool: ...
    def caller_timeout(self) -> bool: ...  # the calling code set this request's timeout itself
    def send(self, timeout: float, time_left: float) -> Awaitable[R]: ...
    def hold(self, response: R, time_left: float, dependency: str) -> None: ...  # not awaited
    #: None when the client enforces the attempt timeout it is given; otherwise the driver
    #: cuts a late attempt (cancels it) and records `cut_after(timeout)` as its error.
    @property
    def cut_after(self) -> Callable[[float], BaseException] | None: ...
    #: The running loop, when `cut_after` is set (the timer needs it; the client knows it).
    @property
    def loop(self) -> asyncio.AbstractEventLoop | None: ...
    def status(self, response: R) -> int | None: ...
    def header(self, response: R, name: str) -> str | None: ...
    def discard(self, response: R) -> Awaitable[None]: ...
    def rewind(self) -> bool: ...
    def error_kind(self, error: BaseException) -> ErrorKind | None: ...
    # -- for telemetry
    def url(self) -> str: ...
    def set_header(self, name: str, value: str) -> None: ...
    def protocol(self, response: R) -> str | None: ...
    def peer(self, response: R) -> tuple[str, int] | None: ...
    def headers(self) -> list[tuple[str, str]]: ...
    def body(self) -> bytes | None: ...


class PolicyLike(Protocol):
    """What adapters need of a policy: a `Policy`, or a `seawall.config.Router` that picks one
    per request."""

    @property
    def pool(self) -> Pool: ...
    @property
    def telemetry(self) -> Any: ...
    def track_pool(self, pool: Any) -> None: ...
    def run(self, exchange: Exchange[R]) -> R: ...
    def run_async(self, exchange: AsyncExchange[R]) -> Awaitable[R]: ...


__all__ = ["AsyncExchange", "CALL", "Exchange", "PolicyLike", "R", "Target"]
