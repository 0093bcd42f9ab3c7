"""`seawall.protect`: any call, not only HTTP, through the same pipeline.

    @seawall.protect("mongodb", retry_on=(pymongo.errors.AutoReconnect,), idempotent=True)
    def find_user(user_id): ...

A protected call is carried by `Policy.run` (a sync function) or `Policy.run_async` (an async
one, or a sync one with `in_thread=True`) exactly as an HTTP request is: bulkhead, total
deadline, circuit breaker, attempt timeout and retries, with the same events, spans and
metrics. `CallExchange` below is the adapter that presents one call to the pipeline; the
block form (`seawall.retrying`) is in `seawall.retrying`.

What the errors mean is the call's own rules (`CallRules`): `retry_on` errors are transient
(retried, and counted by the breaker), `failure_on` ones are counted but not retried, every
other error is the caller's (neither). A call is not idempotent unless declared so: it is
retried only after an error that proves it never reached the dependency (`unsent_on`), as a
POST is only re-sent when its connection was refused.

The attempt timeout cannot interrupt a sync call. On the calling thread the attempt runs to
its end; if it took longer than its timeout, its result (or error) is discarded and the
attempt ends in `AttemptTimedOut` (a timeout to the policies: counted by the breaker, retried
when idempotent, `DeadlineExceeded` when the total deadline cut it). With `in_thread=True`
the call runs in its dependency's thread pool and the awaiting caller stops waiting at the
timeout; the thread finishes the call in the background and its result is dropped.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, TypeVar

from . import _thread_pools, registry
from .errors import PLAIN, ErrorTypes
from .exchange import CALL, Target
from .pipeline import Policy
from .policies import _validate
from .policies.classify import IDEMPOTENCY_KEY, ErrorKind

F = TypeVar("F", bound=Callable[..., Any])

#: An exception class, a tuple of them, or a predicate `(error) -> bool`.
Errors = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]

#: What `retry_on` is by default: the standard library's own transient failures of a
#: connection (refused, reset, aborted, broken pipe) and timeouts (socket and asyncio ones).
#: Every other error is the caller's until declared otherwise (see docs/protect.md).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)


class AttemptTimedOut(TimeoutError):
    """An attempt of a protected call outlived its attempt timeout (`Timeouts.attempt`):
    cancelled (async), abandoned in its thread (`in_thread=True`), or finished late and
    discarded (sync). Its late error, if any, is the `__cause__`."""


class Call(NamedTuple):
    """A protected call, as a fallback sees it (`FallbackContext.request`)."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallRules:
    """What a protected call's errors mean to the policies (see the module docstring).

    `retry_on`: transient errors, retried (if the call is idempotent) and counted by the
    breaker; `failure_on`: errors counted by the breaker but not retried; `unsent_on`: errors
    that prove the call never reached the dependency, so it is retried even when not
    idempotent. Each is an exception class, a tuple of them, or a predicate `(error) -> bool`.
    An attempt timeout (`AttemptTimedOut`) is always a transient failure."""

    idempotent: bool = False
    retry_on: Errors = TRANSIENT_ERRORS
    failure_on: Errors = ()
    unsent_on: Errors = ()

    RULES: ClassVar[_validate.Rules] = {
        "idempotent": _validate.FLAG,
        "retry_on": _validate.Errors(),
        "failure_on": _validate.Errors(),
        "unsent_on": _validate.Errors(),
    }

    def __post_init__(self) -> None:
        _validate.fields(self, self.RULES, "seawall.protect")

    def kind(self, error: BaseException) -> ErrorKind | None:
        """The neutral kind of a call's error (None: the caller's, neither retried nor
        counted)."""
        if isinstance(error, AttemptTimedOut):
            return ErrorKind.READ_TIMEOUT
        if _matches(self.unsent_on, error):
            return ErrorKind.CONNECT
        if _matches(self.retry_on, error):
            return ErrorKind.CALL_TRANSIENT
        if _matches(self.failure_on, error):
            return ErrorKind.CALL_FAILURE
        return None


def _matches(errors: Errors, error: BaseException) -> bool:
    if isinstance(errors, tuple):
        return isinstance(error, errors)
    return bool(errors(error))


# -- where a protected call's policy comes from ----------------------------------------------
_fallback: Any = None  # the Router of $SEAWALL_CONFIG or seawall's defaults, built when needed
_fallback_lock = threading.Lock()


def resolve(dependency: str) -> Policy:
    """The policy of the dependency named `dependency`: the one of that name in the
    configuration `seawall.instrument()` installed, else the newest live `Policy` of that
    name, else the configuration's defaults (the installed one, $SEAWALL_CONFIG's, or
    seawall's own) under that name."""
    global _fallback
    router = registry.installed()
    if router is None:
        with _fallback_lock:
            if _fallback is None:
                from .config.router import router_from

                _fallback = router_from(None)
            router = _fallback
    named = router.named(dependency)
    if named is not None:
        return named
    for policy in reversed(registry.policies()):
        if policy.name == dependency:
            return policy
    return router.default


class Site:
    """A protected function or block, fixed once: its dependency, name and rules, and the
    policy it runs under (given, or resolved at its first call and again after
    `seawall.instrument()` installs another configuration)."""

    __slots__ = ("dependency", "name", "rules", "target", "_given", "_policy", "_seen")

    def __init__(
        self, owner: str, dependency: str | None, policy: Policy | None, name: str, rules: CallRules
    ) -> None:
        if policy is not None and not isinstance(policy, Policy):
            raise TypeError(
                f"{owner}: policy must be a seawall.Policy or None, got "
                f"{type(policy).__name__} {_validate.show(policy)}"
            )
        if dependency is None:
            if policy is None or policy.name is None:
                raise TypeError(
                    f"{owner}: name the dependency (a str), or give a policy=seawall.Policy"
                    f"(name=...) whose name it is"
                )
            dependency = policy.name
        _validate.arguments(owner, {"dependency": _validate.Text()}, {"dependency": dependency})
        if policy is not None and policy.name is not None and policy.name != dependency:
            raise ValueError(
                f"{owner}: dependency {dependency!r} differs from the name of the policy given "
                f"({policy.name!r}); give one of them, or an unnamed Policy"
            )
        self.dependency = dependency
        self.name = name
        self.rules = rules
        self.target = Target("CALL", CALL, dependency, 0, name)
        self._given = policy
        self._policy = policy
        self._seen: Any = None

    def policy(self) -> Policy:
        if self._given is not None:
            return self._given
        installed = registry.installed()
        if self._policy is None or self._seen is not installed:
            self._policy = resolve(self.dependency)
            self._seen = installed
        return self._policy


# -- the exchanges ---------------------------------------------------------------------------
class CallExchange:
    """One call of a protected function, as the sync driver sees it (`Exchange`)."""

    __slots__ = ("site", "request", "telemetry", "_clock")
    method = "CALL"  # not an HTTP method: never among `Retry.methods` unless listed there
    errors: ErrorTypes = PLAIN

    def __init__(self, site: Site, call: Call, clock: Callable[[], float]) -> None:
        self.site = site
        self.request = call
        self.telemetry: Any = None
        self._clock = clock

    def origin(self) -> str:
        return self.site.dependency

    def target(self) -> Target:
        return self.site.target

    def has_header(self, name: str) -> bool:
        # a call declared idempotent is, to the retry policy, a request with an idempotency key
        return name == IDEMPOTENCY_KEY and self.site.rules.idempotent

    def caller_timeout(self) -> bool:
        return False

    def send(self, timeout: float, time_left: float) -> Any:
        function, args, kwargs = self.request
        started = self._clock()
        try:
            result = function(*args, **kwargs)
        except Exception as error:
            late = self._late(started, timeout)
            if late is not None:
                raise late from error
            raise
        late = self._late(started, timeout)
        if late is not None:
            raise late  # the result is discarded: the attempt was not done in time
        return result

    def _late(self, started: float, timeout: float) -> AttemptTimedOut | None:
        took = self._clock() - started
        if took <= timeout:
            return None
        return AttemptTimedOut(
            f"{self.site.name} took {took:.3f} s, longer than its attempt timeout of "
            f"{timeout:.3f} s (a sync call cannot be interrupted: its outcome is discarded)"
        )

    def status(self, response: Any) -> int | None:
        return None

    def header(self, response: Any, name: str) -> str | None:
        return None

    def discard(self, response: Any) -> None:
        return None

    def hold(self, response: Any, time_left: float, dependency: str) -> None:
        return None  # a call's result has no body still to come

    def rewind(self) -> bool:
        return True

    def error_kind(self, error: BaseException) -> ErrorKind | None:
        return self.site.rules.kind(error)

    def url(self) -> str:
        return f"{CALL}://{self.site.dependency}/{self.site.name}"

    def set_header(self, name: str, value: str) -> None:
        return None

    def protocol(self, response: Any) -> str | None:
        return None

    def peer(self, response: Any) -> tuple[str, int] | None:
        return None

    def headers(self) -> list[tuple[str, str]]:
        return []

    def body(self) -> bytes | None:
        return None


class AsyncCallExchange(CallExchange):
    """One call of a protected async function (or of a sync one in its dependency's thread
    pool), as the async driver sees it (`AsyncExchange`): the driver cancels a late attempt."""

    __slots__ = ("loop", "pool")

    def __init__(
        self,
        site: Site,
        call: Call,
        clock: Callable[[], float],
        loop: asyncio.AbstractEventLoop,
        pool: Any = None,
    ) -> None:
        super().__init__(site, call, clock)
        self.loop = loop
        self.pool = pool  # the dependency's thread pool, for a sync function (in_thread)

    def send(self, timeout: float, time_left: float) -> Awaitable[Any]:
        function, args, kwargs = self.request
        if self.pool is None:
            return function(*args, **kwargs)  # type: ignore[no-any-return]
        # the attempt's context (its span, overrides) goes along into the thread
        run = contextvars.copy_context().run
        return self.loop.run_in_executor(
            self.pool, functools.partial(run, function, *args, **kwargs)
        )

    def cut_after(self, timeout: float) -> BaseException:
        where = "cancelled" if self.pool is None else "no longer awaited (its thread finishes it)"
        return AttemptTimedOut(
            f"{self.site.name} outlived its attempt timeout of {timeout:.3f} s: {where}"
        )

    async def discard(self, response: Any) -> None:  # type: ignore[override]
        return None


# -- the decorator ---------------------------------------------------------------------------
class Protect:
    """What `seawall.protect(...)` returns: a decorator for sync and async functions and
    methods (see `protect`)."""

    def __init__(
        self,
        dependency: str | None,
        policy: Policy | None,
        rules: CallRules,
        in_thread: bool,
    ) -> None:
        _validate.arguments(
            "seawall.protect", {"in_thread": _validate.FLAG}, {"in_thread": in_thread}
        )
        self._dependency = dependency
        self._policy = policy
        self._rules = rules
        self._in_thread = in_thread
        Site("seawall.protect", dependency, policy, "", rules)  # the arguments, checked now

    def __repr__(self) -> str:
        return (
            f"seawall.protect({self._dependency!r}, policy={self._policy!r}, "
            f"{self._rules!r}, in_thread={self._in_thread})"
        )

    def __call__(self, function: F) -> F:
        if not callable(function):
            raise TypeError(
                f"seawall.protect: decorates a function or method, got "
                f"{type(function).__name__} {_validate.show(function)}"
            )
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            raise TypeError(
                f"seawall.protect: {_name(function)} is a generator function: a generator "
                f"cannot be retried once it has yielded; protect the call that makes it"
            )
        is_async = inspect.iscoroutinefunction(function)
        if self._in_thread and is_async:
            raise TypeError(
                f"seawall.protect: in_thread=True runs a sync function in a thread; "
                f"{_name(function)} is already async"
            )
        site = Site("seawall.protect", self._dependency, self._policy, _name(function), self._rules)
        if self._in_thread:
            return _in_thread(site, function)  # type: ignore[return-value]
        if is_async:
            return _async(site, function)  # type: ignore[return-value]
        return _sync(site, function)  # type: ignore[return-value]


def _sync(site: Site, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def protected(*args: Any, **kwargs: Any) -> Any:
        policy = site.policy()
        return policy.run(CallExchange(site, Call(function, args, kwargs), policy.now))

    return protected


def _async(site: Site, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    async def protected(*args: Any, **kwargs: Any) -> Any:
        policy = site.policy()
        loop = asyncio.get_running_loop()
        exchange = AsyncCallExchange(site, Call(function, args, kwargs), policy.now, loop)
        return await policy.run_async(exchange)

    return protected


def _in_thread(site: Site, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    async def protected(*args: Any, **kwargs: Any) -> Any:
        policy = site.policy()
        pool = _thread_pools.pool_for(policy.dependency(site.dependency))
        loop = asyncio.get_running_loop()
        exchange = AsyncCallExchange(site, Call(function, args, kwargs), policy.now, loop, pool)
        return await policy.run_async(exchange)

    return protected


def _name(function: Any) -> str:
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module}.{qualname}" if module else qualname


def protect(
    dependency: str | None = None,
    *,
    policy: Policy | None = None,
    idempotent: bool = False,
    retry_on: Errors = TRANSIENT_ERRORS,
    failure_on: Errors = (),
    unsent_on: Errors = (),
    in_thread: bool = False,
) -> Protect:
    """Protect a function (sync or async, a method too) as a call to `dependency`:

        @seawall.protect("mongodb", retry_on=(AutoReconnect,), idempotent=True)
        def find_user(user_id): ...

    `policy`: the `seawall.Policy` to run under (default: the dependency of that name in the
    installed configuration, else the newest live Policy of that name, else the
    configuration's defaults; resolved at the first call). `idempotent`: whether the call may
    be made again after it started (default False: retried only after `unsent_on` errors).
    `retry_on`, `failure_on`, `unsent_on`: see `CallRules`. `in_thread=True` (a sync function
    only) makes an async function that runs the call in the dependency's own thread pool, as
    large as its bulkhead (docs/protect.md)."""
    rules = CallRules(idempotent, retry_on, failure_on, unsent_on)
    return Protect(dependency, policy, rules, in_thread)


__all__ = [
    "AsyncCallExchange",
    "AttemptTimedOut",
    "Call",
    "CallExchange",
    "CallRules",
    "Errors",
    "Protect",
    "Site",
    "TRANSIENT_ERRORS",
    "protect",
    "resolve",
]
