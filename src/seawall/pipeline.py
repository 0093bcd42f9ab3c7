"""Policy: the whole life of one request, in one fixed order.

    bulkhead -> total deadline -> retry loop [ circuit breaker -> attempt timeout -> transport ]

`Policy.run` (threads) and `Policy.run_async` (asyncio) are the two drivers. They differ only in
how they wait; every decision they take comes from `_Run` below, which asks the sans-I/O
policies. Adapters present a request as an `Exchange` (`seawall.exchange`) and never decide
anything themselves; each dependency's live state is a `DependencyState` (`seawall.state`).
Both modules' names are re-exported here.
"""

from __future__ import annotations

import asyncio
import math
import random as _random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, cast

from . import _attempt_timer, registry
from . import events as ev
from . import overrides as _overrides
from .deadletters import DeadLetters
from .errors import (
    BulkheadFullError,
    CircuitOpenError,
    DeadlineExceeded,
    ResilienceError,
    RetryBudgetExhausted,
)
from .events import CANCELLED, FAILURE, FALLBACK, IGNORED, REJECTED, SUCCESS
from .exchange import AsyncExchange, Exchange, PolicyLike, R, Target
from .policies import _validate
from .policies import retry as retry_mod
from .policies.breaker import CircuitBreaker, State
from .policies.bulkhead import (
    QUEUE_FULL,
    QUEUE_TIMEOUT,
    Admission,
    Bulkhead,
    BulkheadState,
    RejectReason,
)
from .policies.classify import (
    BREAKER_FAILURES,
    FAILURE_STATUSES,
    IDEMPOTENCY_KEY,
    IDEMPOTENT_METHODS,
    TIMEOUTS,
    UNSENT,
    ErrorKind,
)
from .policies.health import HealthCheck
from .policies.pool import Pool
from .policies.retry import AttemptInfo, Retry
from .policies.timeouts import DEFAULTS as DEFAULT_TIMEOUTS
from .policies.timeouts import Timeouts
from .state import LOCAL, DependencyState, Store
from .telemetry import logs

OTHER_DEPENDENCY = "_other"
_current_override = _overrides.CURRENT.get  # (bound once: read on every request)


@dataclass(frozen=True, slots=True)
class FallbackContext(Generic[R]):
    """What a fallback is told: the request would end in `response` (a failing one) or `error`
    (a rejection or the last attempt's error)."""

    dependency: str
    request: Any
    attempts: int
    response: R | None
    error: BaseException | None


Fallback = Callable[[FallbackContext[Any]], Any]
Listener = Callable[[ev.Event], None]


class Policy:
    """Everything seawall does to the requests of one client, configured once.

    Each part can be switched off with None. State (bulkhead slots, breaker, retry budget) is
    kept per dependency: all requests share the dependency `name` when it is given, otherwise
    each scheme://host:port is its own dependency (at most `max_dependencies`, the rest share
    one named "_other", so memory and metric labels stay bounded).

    `fallback(FallbackContext) -> response | None` is called when a request would end in a
    failure or a rejection; a response it returns is returned instead (None keeps the failure).

    `health`: a `seawall.HealthCheck` the httpx and requests adapters probe in the background
    (a thread, or a task in asyncio) straight through their transport; failing probes hold
    the breaker open, passing ones let it half-open (`update_health` does the same by hand).

    `telemetry`: True (default) reports spans and metrics to the global OpenTelemetry providers
    when `opentelemetry-api` is installed; a `seawall.telemetry.otel.Telemetry` to choose the
    providers; False for none. The `seawall` logger always reports retries, rejections and
    breaker transitions (`seawall.telemetry.logs`).

    `dead_letters`: a `seawall.DeadLetters` that keeps the requests that fail for good, to be
    replayed later (docs/dead-letters.md); None (default) keeps none.

    `clock` (monotonic seconds), `wall_clock` (for `Retry-After` dates), `random` (jitter),
    `sleep` and `async_sleep` (the waits between attempts, of `run` and `run_async`) are the
    policy's only contacts with time and chance: tests and simulations replace them.

    `store` keeps breaker and retry-budget state (`seawall.state`): this process only by
    default; a `seawall.Fleet` shares breaker verdicts with the other processes of a service.
    """

    #: What each argument must be (checked, types first, when the policy is built).
    RULES: ClassVar[_validate.Rules] = {
        "name": _validate.Text(optional=True),
        "retry": _validate.Instance(Retry, "a seawall.Retry", optional=True),
        "breaker": _validate.Instance(CircuitBreaker, "a seawall.CircuitBreaker", optional=True),
        "bulkhead": _validate.Instance(Bulkhead, "a seawall.Bulkhead", optional=True),
        "timeouts": _validate.Instance(Timeouts, "a seawall.Timeouts", optional=True),
        "pool": _validate.Instance(Pool, "a seawall.Pool"),
        "fallback": _validate.Function("a callable taking a FallbackContext", optional=True),
        "health": _validate.Instance(HealthCheck, "a seawall.HealthCheck", optional=True),
        "telemetry": _validate.TELEMETRY,
        "dead_letters": _validate.Instance(DeadLetters, "a seawall.DeadLetters", optional=True),
        "max_dependencies": _validate.Count(),
        "clock": _validate.Function("a callable returning monotonic seconds"),
        "wall_clock": _validate.Function("a callable returning Unix time in seconds"),
        "random": _validate.Function("a callable returning a float in [0, 1)"),
        "sleep": _validate.Function("a callable(seconds) that waits"),
        "async_sleep": _validate.Function("a callable(seconds) returning an awaitable wait"),
        "store": _validate.HasMembers(
            ("breaker", "budget"), "a state store (seawall.state.Store, e.g. seawall.Fleet)"
        ),
    }

    def __init__(
        self,
        name: str | None = None,
        *,
        retry: Retry | None = Retry(),
        breaker: CircuitBreaker | None = CircuitBreaker(),
        bulkhead: Bulkhead | None = Bulkhead(),
        timeouts: Timeouts | None = DEFAULT_TIMEOUTS,
        pool: Pool = Pool(),
        fallback: Fallback | None = None,
        health: HealthCheck | None = None,
        telemetry: Any = True,
        dead_letters: DeadLetters | None = None,
        max_dependencies: int = 100,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _random.random,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        store: Store = LOCAL,
    ) -> None:
        _validate.arguments(
            "Policy",
            self.RULES,
            {
                "name": name,
                "retry": retry,
                "breaker": breaker,
                "bulkhead": bulkhead,
                "timeouts": timeouts,
                "pool": pool,
                "fallback": fallback,
                "health": health,
                "telemetry": telemetry,
                "dead_letters": dead_letters,
                "max_dependencies": max_dependencies,
                "clock": clock,
                "wall_clock": wall_clock,
                "random": random,
                "sleep": sleep,
                "async_sleep": async_sleep,
                "store": store,
            },
        )
        if breaker is not None and timeouts is not None:
            problem = breaker.window_problem(timeouts.attempt)
            if problem is not None:
                raise ValueError(f"Policy: {problem}")
        self.name = name
        self.retry = retry
        self.breaker = breaker
        self.bulkhead = bulkhead
        self.timeouts = timeouts or _overrides.NO_TIMEOUTS
        # inf for "no limit", so the per-request arithmetic needs no None checks
        self._total = math.inf if self.timeouts.total is None else self.timeouts.total
        self._attempt = math.inf if self.timeouts.attempt is None else self.timeouts.attempt
        # seawall's own defaults give way to a timeout the calling code set on the request
        self._caller_first = self.timeouts.caller_first
        self.pool = pool
        self.fallback = fallback
        #: Probed in the background by the adapters that support it (`seawall.probes`).
        self.health = health
        self.max_dependencies = max_dependencies
        self._clock = clock
        self._wall_clock = wall_clock
        self._random = random
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._store = store  # where breaker and retry-budget state lives (seawall.state)
        self._failure_statuses = breaker.failure_statuses if breaker else FAILURE_STATUSES
        self._on: dict[type[ev.Event], tuple[Listener, ...]] = {}  # event class -> listeners
        self._subscribing = threading.Lock()  # requests read `_on` without it: tuples swap whole
        self._deps: dict[str, DependencyState] = {}
        self._deps_lock = threading.Lock()
        self._pools: weakref.WeakKeyDictionary[Any, Callable[[str], str]] = (
            weakref.WeakKeyDictionary()
        )
        self.subscribe(logs.log_event, *logs.LOGGED)
        self.dead_letters = dead_letters
        if dead_letters is not None:  # before telemetry: it reads the request's span at the end
            dead_letters.watch(self)
        #: The OpenTelemetry listener, or None: adapters ask it whether seawall reports the
        #: HTTP spans itself (and so must keep the official instrumentations from doubling them).
        self.telemetry = _default_telemetry() if telemetry is True else (telemetry or None)
        if self.telemetry is not None:
            self.telemetry.watch(self)
        registry.register(self)  # held weakly: what seawall.status() and seawall.admin show

    def __repr__(self) -> str:
        return (
            f"Policy(name={self.name!r}, retry={self.retry!r}, breaker={self.breaker!r}, "
            f"bulkhead={self.bulkhead!r}, timeouts={self.timeouts!r}, pool={self.pool!r})"
        )

    # -- events ----------------------------------------------------------------------------
    def subscribe(self, listener: Listener, *kinds: type[ev.Event]) -> None:
        """Call `listener(event)` for every event (see `seawall.events`), or only for the given
        event classes, on the request's own thread or event loop; it must be quick and must
        not raise. Events nobody listens to are never built."""
        with self._subscribing:
            for kind in kinds or ev.ALL:
                self._on[kind] = (*self._on.get(kind, ()), listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling `listener` (every subscription of it)."""
        with self._subscribing:
            for kind in list(self._on):
                left = tuple(x for x in self._on[kind] if x is not listener)
                if left:
                    self._on[kind] = left
                else:
                    del self._on[kind]

    def _emit(self, event: ev.Event) -> None:
        for listener in self._on.get(type(event), ()):
            listener(event)

    def _transitioned(
        self, dependency: str, key: str, before: State, after: State, now: float
    ) -> None:
        if ev.CircuitTransition in self._on:
            self._emit(ev.CircuitTransition(dependency, key, before, after, now))

    # -- state -----------------------------------------------------------------------------
    def dependency(self, name: str) -> DependencyState:
        """The live state of a dependency (created empty if it has not been seen yet)."""
        found = self._deps.get(name)
        if found is not None:
            return found
        with self._deps_lock:
            if name not in self._deps and len(self._deps) >= self.max_dependencies:
                name = OTHER_DEPENDENCY
            found = self._deps.get(name)
            if found is not None:
                return found
            found = self._deps[name] = DependencyState(
                name,
                bulkhead=self.bulkhead,
                breaker=self.breaker,
                budget=self.retry.budget if self.retry else None,
                on_transition=self._transitioned,
                store=self._store,
                clock=self._clock,
            )
        if ev.DependencyAdded in self._on:
            self._emit(ev.DependencyAdded(name, self, found, self._clock()))
        return found

    def dependencies(self) -> list[DependencyState]:
        with self._deps_lock:
            return list(self._deps.values())

    def update_health(
        self, healthy: bool, *, dependency: str | None = None, reason: str = ""
    ) -> None:
        """Tell seawall a dependency's health (default: the policy's own): unhealthy holds its
        breaker open, with `reason` in rejections; healthy lets it half-open, and real traffic
        closes it. Health probes (`health=`) call the same."""
        from .probes import update_health

        update_health(self, healthy, dependency=dependency, reason=reason)

    def now(self) -> float:
        """The policy's clock (monotonic seconds): the `now` its state is read at."""
        return self._clock()

    def track_pool(self, pool: Any, dependency: Callable[[str], str] | None = None) -> None:
        """Report `pool.pool_counts() -> {origin: (active, idle)} | None` in the pool gauge
        (held weakly: adapters register the pools they build), each origin under
        `dependency(origin)` (default `pool_dependency`)."""
        self._pools[pool] = dependency or self.pool_dependency

    def pool_dependency(self, origin: str) -> str:
        """The dependency the requests to `origin` ("scheme://host:port") are reported under
        (a `Router` routes it by host and port)."""
        if self.name is not None:
            return self.name
        return origin if origin in self._deps else OTHER_DEPENDENCY

    def pool_counts(self) -> dict[str, tuple[int, int]]:
        """(active, idle) connections of every tracked pool that can tell, by the dependency
        their origin's requests are reported under."""
        totals: dict[str, tuple[int, int]] = {}
        for pool, dependency in list(self._pools.items()):
            for origin, (active, idle) in (pool.pool_counts() or {}).items():
                name = dependency(origin)
                before = totals.get(name, (0, 0))
                totals[name] = (before[0] + active, before[1] + idle)
        return totals

    # -- drivers ---------------------------------------------------------------------------
    def run(self, exchange: Exchange[R]) -> R:
        """Carry one logical request through every policy, on the calling thread."""
        run: _Run[R] = _Run(self, exchange)
        bulkhead = run.dep.bulkhead
        try:
            # Take a bulkhead slot: a free one, or wait in its queue, or be turned away.
            if bulkhead is not None:
                if bulkhead.try_acquire():
                    if ev.BulkheadAdmitted in run.on:
                        run.admitted(queued=False)
                else:
                    rejection = self._wait_for_slot(run, bulkhead)
                    if rejection is not None:
                        return run.give_up(rejection)
            try:
                while True:
                    # The deadline and the breaker give this attempt's timeout, or refuse it.
                    timeout = run.before_attempt()
                    if timeout is None:
                        return run.give_up()
                    try:
                        response = exchange.send(timeout, run.left)
                    except Exception as error:
                        # A failed attempt: the wait before the next one, or give up.
                        delay = run.after_error(error)
                        if delay is None:
                            return run.give_up()
                    except BaseException as error:
                        # Interrupted (KeyboardInterrupt, ...): no verdict for the breaker.
                        run.abandon(error)
                        raise
                    else:
                        # A response: return it (or the fallback's), or the wait before a retry.
                        try:
                            delay = run.after_response(response)
                            if delay is None:
                                result, replaced = run.finish(response)
                                if replaced:
                                    exchange.discard(response)
                                else:  # its body, read after we return, keeps the deadline
                                    exchange.hold(response, run.time_left(), run.dep.name)
                                return result
                        except BaseException:
                            exchange.discard(response)  # deciding raised: close what is held
                            raise
                        exchange.discard(response)  # its connection back to the pool first
                    if delay > 0:  # (the test switch's retries never wait)
                        self._sleep(delay)
            finally:
                # The slot goes back whatever happened.
                if bulkhead is not None:
                    bulkhead.release()
        except BaseException as error:
            # Whatever escaped still ends the request with one terminal event.
            run.interrupted(error)
            raise

    async def run_async(self, exchange: AsyncExchange[R]) -> R:
        """Carry one logical request through every policy, on the running asyncio loop."""
        run: _Run[R] = _Run(self, exchange)
        bulkhead = run.dep.bulkhead
        try:
            # Take a bulkhead slot: a free one (without a coroutine to wait in), or wait in its
            # queue, or be turned away.
            if bulkhead is not None:
                if bulkhead.try_acquire():
                    if ev.BulkheadAdmitted in run.on:
                        run.admitted(queued=False)
                else:
                    rejection = await self._wait_for_slot_async(run, bulkhead)
                    if rejection is not None:
                        return run.give_up(rejection)
            try:
                # seawall's own attempt timer, for clients that cannot cut an attempt themselves.
                cut_after = exchange.cut_after
                timers = None if cut_after is None else _attempt_timer.timers(exchange.loop)
                while True:
                    # The deadline and the breaker give this attempt's timeout, or refuse it.
                    timeout = run.before_attempt()
                    if timeout is None:
                        return run.give_up()
                    key = None if timers is None or timeout == math.inf else timers.start(timeout)
                    try:
                        response = await exchange.send(timeout, run.left)
                    except BaseException as error:
                        if (
                            key is not None
                            and timers is not None
                            and timers.stop(key)
                            and cut_after is not None
                            and isinstance(error, asyncio.CancelledError)
                        ):
                            # It outlived its timeout: an attempt error like any other.
                            cut = cut_after(timeout)
                            cut.__cause__ = error
                            error = cut
                        elif not isinstance(error, Exception):
                            # Cancelled by the caller: no verdict for the breaker.
                            run.abandon(error)
                            raise
                        # A failed attempt: the wait before the next one, or give up.
                        delay = run.after_error(error)
                        if delay is None:
                            return run.give_up()
                    else:
                        if key is not None and timers is not None:
                            timers.stop(key)
                        # A response: return it (or the fallback's), or the wait before a retry.
                        try:
                            delay = run.after_response(response)
                            if delay is None:
                                result, replaced = run.finish(response)
                                if replaced:
                                    await exchange.discard(response)
                                else:  # its body, read after we return, keeps the deadline
                                    exchange.hold(response, run.time_left(), run.dep.name)
                                return result
                        except BaseException:
                            await exchange.discard(response)  # deciding raised: close what is held
                            raise
                        await exchange.discard(response)  # its connection back to the pool first
                    if delay > 0:  # (the test switch's retries never wait)
                        await self._async_sleep(delay)
            finally:
                # The slot goes back whatever happened.
                if bulkhead is not None:
                    bulkhead.release()
        except BaseException as error:
            # Whatever escaped (cancellation above all) still ends the request with one
            # terminal event.
            run.interrupted(error)
            raise

    # -- waiting for a bulkhead slot ---------------------------------------------------------
    def _wait_for_slot(self, run: _Run[Any], bulkhead: BulkheadState) -> ResilienceError | None:
        """Take a slot (waiting in the queue if need be), or the rejection to raise (the driver
        has tried to take a free one first)."""
        waiter = _ThreadWaiter()
        admission = bulkhead.enqueue(waiter)
        if admission is Admission.QUEUED:
            try:
                woken = waiter.event.wait(bulkhead.config.queue_timeout)
            except BaseException:
                if not bulkhead.withdraw(waiter):
                    bulkhead.release()
                raise
            if not woken and bulkhead.withdraw(waiter):
                return run.bulkhead_rejected(QUEUE_TIMEOUT)
        elif admission is Admission.REJECTED:
            return run.bulkhead_rejected(QUEUE_FULL)
        run.admitted(queued=admission is Admission.QUEUED)
        return None

    async def _wait_for_slot_async(
        self, run: _Run[Any], bulkhead: BulkheadState
    ) -> ResilienceError | None:
        waiter = _TaskWaiter(asyncio.get_running_loop())
        admission = bulkhead.enqueue(waiter)
        if admission is Admission.QUEUED:
            try:
                async with asyncio.timeout(bulkhead.config.queue_timeout):
                    await waiter.future
            except TimeoutError:
                if bulkhead.withdraw(waiter):
                    return run.bulkhead_rejected(QUEUE_TIMEOUT)
            except BaseException:
                if not bulkhead.withdraw(waiter):
                    bulkhead.release()
                raise
        elif admission is Admission.REJECTED:
            return run.bulkhead_rejected(QUEUE_FULL)
        run.admitted(queued=admission is Admission.QUEUED)
        return None


class _ThreadWaiter:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()

    def wake(self) -> None:
        self.event.set()


class _TaskWaiter:
    __slots__ = ("loop", "future")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()

    def wake(self) -> None:
        # May be called from another thread (a sync client sharing the dependency).
        self.loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class _Run(Generic[R]):
    """The decisions of one logical request, from its start to its one terminal event
    (no I/O, no waiting: the drivers do that)."""

    __slots__ = (
        "policy",
        "dep",
        "ex",
        "on",
        "override",
        "retry",
        "started",
        "deadline",
        "left",
        "attempt_limit",
        "attempt",
        "delay",
        "breaker",
        "permit",
        "attempt_started",
        "clipped",
        "error",
        "last_status",
        "finished",
        "keyed",
    )

    def __init__(self, policy: Policy, exchange: Exchange[Any] | AsyncExchange[Any]) -> None:
        self.policy = policy
        self.on = on = policy._on
        self.started = started = policy._clock()
        name = policy.name or exchange.origin()
        self.dep = dep = policy.dependency(name)
        self.ex = exchange
        # `seawall.override(...)` or the test switch: one ContextVar read when neither is set
        self.override = override = _current_override(_overrides.TESTING)
        self.retry = policy.retry
        self.deadline = started + policy._total  # when the whole request must be done by
        self.left = math.inf  # of the deadline when the current attempt started (before_attempt)
        self.attempt_limit = policy._attempt
        if policy._caller_first and exchange.caller_timeout():
            self.deadline = self.attempt_limit = math.inf  # the caller's own timeouts rule
        self.attempt = 0
        self.delay = 0.0
        self.breaker = dep.breaker_for(exchange)
        if override is not None:
            self._overridden(_overrides.resolve(override))
        self.permit: int | None = None
        self.attempt_started = started
        self.clipped = False
        self.error: BaseException | None = None
        self.last_status: int | None = None
        self.finished = False
        # Whether the caller sent an Idempotency-Key, read before the listeners run: a key one
        # of them adds (dead letters generate one) must not make the request retryable, since
        # the upstream may not honour keys. None: no listener could add one (read when asked).
        self.keyed: bool | None = None
        if ev.RequestStarted in on:
            if exchange.method not in IDEMPOTENT_METHODS:
                self.keyed = exchange.has_header(IDEMPOTENCY_KEY)
            policy._emit(ev.RequestStarted(dep.name, exchange, started))

    def _overridden(self, override: _overrides.Override) -> None:
        """What an override (`seawall.override`, the test switch) changes for this request."""
        self.override = override
        policy, exchange = self.policy, self.ex
        self.retry = override.retry_for(policy.retry)
        if override.timeouts is not _overrides.UNSET:
            timeouts = override.timeouts_for(policy.timeouts)
            total, attempt = timeouts.total, timeouts.attempt
            self.deadline = self.started + (math.inf if total is None else total)
            self.attempt_limit = math.inf if attempt is None else attempt
            if timeouts.caller_first and exchange.caller_timeout():
                self.deadline = self.attempt_limit = math.inf
        if override.testing is not None:
            self.breaker = None  # the test switch: no breaker decides, none opens

    def _total_timeout(self) -> float | None:
        """The total timeout this request runs under (for messages)."""
        timeouts = self.policy.timeouts
        if self.override is not None:
            timeouts = self.override.timeouts_for(timeouts)
        return timeouts.total

    # -- the bulkhead ----------------------------------------------------------------------
    def admitted(self, queued: bool) -> None:
        if ev.BulkheadAdmitted in self.on:
            now = self.policy._clock()
            waited = now - self.started if queued else 0.0
            self.policy._emit(ev.BulkheadAdmitted(self.dep.name, waited, now))

    def bulkhead_rejected(self, reason: RejectReason) -> ResilienceError:
        dep, policy = self.dep, self.policy
        if ev.BulkheadRejected in self.on:
            now = policy._clock()
            policy._emit(ev.BulkheadRejected(dep.name, reason, now - self.started, now))
        limit = policy.bulkhead.max_concurrent if policy.bulkhead else 0
        why = (
            "no slot was freed within the queue timeout"
            if reason == QUEUE_TIMEOUT
            else "the queue is full"
        )
        return self.ex.errors[BulkheadFullError](
            f"bulkhead of {dep.name!r} is full ({limit} in flight): {why}",
            dependency=dep.name,
            reason=reason,
        )

    # -- the attempt loop ------------------------------------------------------------------
    def before_attempt(self) -> float | None:
        """The timeout for the next attempt, or None when it must not start (`self.error`)."""
        policy = self.policy
        now = policy._clock()
        self.left = timeout = self.deadline - now
        # the attempt timeout, unless the total deadline comes first (then the attempt is clipped)
        self.clipped = timeout < self.attempt_limit
        if not self.clipped:
            timeout = self.attempt_limit
        elif timeout <= 0:
            self.error = self._rejection(
                DeadlineExceeded,
                f"total timeout of {self._total_timeout()} s ran out before "
                f"attempt {self.attempt + 1}",
            )
            return None
        breaker = self.breaker
        if breaker is not None:
            self.permit = breaker.acquire(now)
            if self.permit is None:
                retry_in = breaker.retry_in(now)
                reason = breaker.rejection_reason()
                if ev.CircuitRejected in self.on:
                    policy._emit(
                        ev.CircuitRejected(self.dep.name, breaker.key, retry_in, now, reason)
                    )
                if reason == "throttled":
                    why = "is throttling calls (client-side throttling)"
                elif reason == "unhealthy":
                    why = f"is held open by health checks ({breaker.unhealthy})"
                elif retry_in == math.inf:
                    why = "is isolated (held open by hand until reset)"
                else:
                    why = f"is open; next probe in {retry_in:.3f} s"
                self.error = self._rejection(
                    CircuitOpenError,
                    f"circuit breaker {breaker.key!r} {why}",
                    key=breaker.key,
                    retry_in=retry_in,
                    reason=reason,
                )
                return None
        if self.attempt == 0 and self.dep.budget is not None:
            self.dep.budget.deposit(now)  # one deposit per logical request that goes out
        self.attempt += 1
        self.attempt_started = now
        if ev.AttemptStarted in self.on:
            policy._emit(ev.AttemptStarted(self.dep.name, self.ex, self.attempt, timeout, now))
        return timeout

    def after_response(self, response: Any) -> float | None:
        """Record a response; the delay before retrying, or None to return it."""
        policy = self.policy
        now = policy._clock()
        status = self.ex.status(response)
        self.last_status = status
        failed = status in policy._failure_statuses
        slow = self._record(failed, now)
        if ev.AttemptEnded in self.on:
            policy._emit(
                ev.AttemptEnded(
                    self.dep.name,
                    self.ex,
                    self.attempt,
                    status,
                    None,
                    None,
                    FAILURE if failed else SUCCESS,
                    slow,
                    now - self.attempt_started,
                    now,
                    response,
                )
            )
        retry = self.retry
        # most responses are not retryable statuses: `_retryable` would say so, in three calls
        if retry is None or (retry.predicate is None and status not in retry.statuses):
            return None
        if not self._retryable(retry, status, None, None, response):
            return None
        retry_after = retry_mod.parse_retry_after(
            self.ex.header(response, "retry-after"), policy._wall_clock()
        )
        return self._decide(retry, now, str(status), None, retry_after)

    def after_error(self, error: BaseException) -> float | None:
        """Record an attempt's error; the delay before retrying, or None to give up
        (`self.error` is then what to raise)."""
        policy = self.policy
        now = policy._clock()
        kind = self.ex.error_kind(error)
        self.error = error
        self.last_status = None
        if kind is None or kind not in BREAKER_FAILURES:
            result: ev.BreakerResult = IGNORED
            slow = False
            self._release()
        else:
            result, slow = FAILURE, self._record(True, now)
        if ev.AttemptEnded in self.on:
            policy._emit(
                ev.AttemptEnded(
                    self.dep.name,
                    self.ex,
                    self.attempt,
                    None,
                    error,
                    kind,
                    result,
                    slow,
                    now - self.attempt_started,
                    now,
                    None,
                )
            )
        # A timeout the deadline cut, or one that ends at or past it, is the deadline's: the
        # client's timeout error becomes the cause of `DeadlineExceeded` (so does one that
        # leaves no room for another attempt: `_decide`).
        if kind in TIMEOUTS and (self.clipped or now >= self.deadline):
            self.error = self._rejection(
                DeadlineExceeded,
                f"total timeout of {self._total_timeout()} s ran out during attempt {self.attempt}",
                cause=error,
            )
            return None
        retry = self.retry
        if retry is None or not self._retryable(retry, None, kind, error, None):
            return None
        return self._decide(retry, now, _error_type(error), kind, None)

    def time_left(self) -> float:
        """Seconds to the total deadline from now (inf: none)."""
        return self.deadline - self.policy._clock()

    def abandon(self, error: BaseException) -> None:
        """The attempt was interrupted (cancelled): no verdict for the breaker, and the
        half-open probe permit goes back, so the breaker can never get stuck."""
        self._release()
        if ev.AttemptEnded in self.on:
            now = self.policy._clock()
            self.policy._emit(
                ev.AttemptEnded(
                    self.dep.name,
                    self.ex,
                    self.attempt,
                    None,
                    error,
                    None,
                    IGNORED,
                    False,
                    now - self.attempt_started,
                    now,
                    None,
                )
            )

    # -- the end ---------------------------------------------------------------------------
    def finish(self, response: R) -> tuple[R, bool]:
        """The response to return, and whether it replaced (so the caller must discard)
        the given one."""
        policy = self.policy
        status = self.last_status
        if status not in policy._failure_statuses:
            self._finished(SUCCESS, status, None)
            return response, False
        if policy.fallback is not None:
            replacement = policy.fallback(
                FallbackContext(self.dep.name, self.ex.request, self.attempt, response, None)
            )
            if replacement is not None:
                self._finished(FALLBACK, status, None)
                return cast(R, replacement), True
        self._finished(FAILURE, status, None)
        return response, False

    def give_up(self, error: BaseException | None = None) -> R:
        """End with an error: return the fallback's response, or raise."""
        error = error if error is not None else self.error
        assert error is not None
        policy = self.policy
        outcome: ev.Outcome = REJECTED if isinstance(error, ResilienceError) else FAILURE
        if policy.fallback is not None:
            replacement = policy.fallback(
                FallbackContext(self.dep.name, self.ex.request, self.attempt, None, error)
            )
            if replacement is not None:
                self._finished(FALLBACK, None, error)
                return cast(R, replacement)
        self._finished(outcome, None, error)
        raise error

    def interrupted(self, error: BaseException) -> None:
        """Anything that escaped the drivers still ends the request with exactly one terminal
        event, and gives back a probe permit still held: "cancelled" for an interruption
        (asyncio cancellation, KeyboardInterrupt), "failure" for an error raised while deciding
        (a user's predicate or fallback, a listener)."""
        if not self.finished:
            self._release()
            self._finished(FAILURE if isinstance(error, Exception) else CANCELLED, None, error)

    # -- internals -------------------------------------------------------------------------
    def _record(self, failed: bool, now: float) -> bool:
        """Tell the breaker how the attempt went; whether it was slow."""
        breaker, permit = self.breaker, self.permit
        if breaker is None or permit is None:
            return False
        threshold = breaker.config.slow_call_duration
        slow = threshold is not None and now - self.attempt_started >= threshold
        breaker.record(permit, failed, slow, now)
        self.permit = None
        return slow

    def _release(self) -> None:
        if self.permit is not None and self.breaker is not None:
            self.breaker.release(self.permit)
        self.permit = None

    def _retryable(
        self,
        retry: Retry,
        status: int | None,
        kind: ErrorKind | None,
        error: BaseException | None,
        response: Any,
    ) -> bool:
        if retry.predicate is not None:
            verdict = retry.predicate(
                AttemptInfo(self.attempt, self.ex.method, status, error, kind, response)
            )
            if verdict is not None:
                return bool(verdict)
        return retry.retryable(status, kind)

    def _decide(
        self,
        retry: Retry,
        now: float,
        reason: str,
        kind: ErrorKind | None,
        retry_after: float | None,
    ) -> float | None:
        policy, ex, dep = self.policy, self.ex, self.dep
        breaker, budget = self.breaker, dep.budget
        if self.override is not None and self.override.testing is not None:
            budget = None  # the test switch: the attempts asked for, whatever the budget says
        verdict = retry.decide(
            attempt=self.attempt,
            method_safe=retry.method_safe(
                ex.method, ex.has_header(IDEMPOTENCY_KEY) if self.keyed is None else self.keyed
            ),
            unsent=kind in UNSENT,
            retry_after=retry_after,
            time_left=self.deadline - now,
            previous_delay=self.delay,
            random=policy._random,
            replayable=ex.rewind,
            withdraw_budget=(lambda: True)
            if budget is None
            else (lambda: budget.try_withdraw(now)),
            circuit_open=breaker is not None and breaker.retry_in(now) > 0,
        )
        if verdict.delay is None:
            why = verdict.reason
            if ev.RetryStopped in self.on and why != retry_mod.RETRY:  # (it never is, here)
                policy._emit(ev.RetryStopped(dep.name, self.attempt, why, now))
            if why == retry_mod.NO_TIME_LEFT and kind in TIMEOUTS:
                self.error = self._rejection(
                    DeadlineExceeded,
                    f"total timeout of {self._total_timeout()} s leaves no room for another "
                    f"attempt after attempt {self.attempt} timed out",
                    cause=self.error,
                )
            elif (
                why == retry_mod.BUDGET_EXHAUSTED
                and self.error is not None
                and self.last_status is None
            ):
                # the error's type, not its text: a client's message can hold the whole URL
                # (requests: "Max retries exceeded with url: /x?sig=..."); it is the __cause__
                self.error = self._rejection(
                    RetryBudgetExhausted,
                    f"retry budget of {dep.name!r} is spent; not retrying "
                    f"after: {_error_type(self.error)}",
                    cause=self.error,
                )
            return None
        self.delay = verdict.delay
        if ev.RetryScheduled in self.on:
            policy._emit(
                ev.RetryScheduled(dep.name, self.attempt, verdict.delay, reason, retry_after, now)
            )
        return verdict.delay

    def _rejection(
        self,
        kind: type[ResilienceError],
        message: str,
        *,
        cause: BaseException | None = None,
        **details: Any,
    ) -> ResilienceError:
        error = self.ex.errors[kind](message, dependency=self.dep.name, **details)
        if cause is not None:
            error.__cause__ = cause
        elif self.error is not None:
            error.__cause__ = self.error
        return error

    def _finished(
        self, outcome: ev.Outcome, status: int | None, error: BaseException | None
    ) -> None:
        self.finished = True
        if ev.RequestFinished in self.on:
            now = self.policy._clock()
            self.policy._emit(
                ev.RequestFinished(
                    self.dep.name,
                    self.ex,
                    outcome,
                    self.attempt,
                    status,
                    error,
                    now - self.started,
                    now,
                )
            )


def _default_telemetry() -> Any:
    """The shared OpenTelemetry listener, or None when opentelemetry-api is not installed."""
    try:
        from .telemetry import otel
    except ImportError:
        return None
    return otel.default()


def _error_type(error: BaseException) -> str:
    """The error's fully qualified class name, as OpenTelemetry's `error.type` wants it."""
    cls = type(error)
    return (
        f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__
    )


__all__ = [
    "AsyncExchange",
    "DependencyState",
    "Exchange",
    "FallbackContext",
    "OTHER_DEPENDENCY",
    "Policy",
    "PolicyLike",
    "Target",
]
