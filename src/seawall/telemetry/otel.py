"""OpenTelemetry spans and metrics from seawall's events: the telemetry contract of DESIGN.md.

Traces: one INTERNAL span per logical request (under the caller's current span) holding, as
span events, what happened between attempts; under it one CLIENT span per attempt following the
stable HTTP client semantic conventions, with `traceparent` injected into that attempt's
headers. While an attempt runs, HTTP instrumentation is suppressed in the context, so the
official httpx/requests/aiohttp instrumentations do not add a second span for it.

Metrics: the catalog of DESIGN.md. Every metric carries `seawall.dependency` (bounded: past
`max_dependencies` distinct values, the rest are reported as "_other"), and no metric holds more
label sets than `cardinality` allows.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable
from contextvars import ContextVar, Token
from typing import Any, ClassVar

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY, Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from .. import events as ev
from ..exchange import CALL
from ..policies import _validate, retry
from ..policies.breaker import State
from ..policies.bulkhead import QUEUE_FULL, QUEUE_TIMEOUT
from ..policies.classify import RETRY_STATUSES
from . import _providers_set
from .cardinality import FirstValues, LabelSets
from .redact import SENSITIVE_QUERY_KEYS, query_keys, redact

#: The semantic conventions' advice for http.client.request.duration (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
#: A logical request lasts up to its total timeout (30 s by default), retries and waits
#: included: the attempt buckets, then on to 5 minutes.
REQUEST_BUCKETS = (*DURATION_BUCKETS, 15, 20, 30, 45, 60, 90, 120, 180, 300)
_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)
OTHER = "_other"
#: `server.address` on metrics for a dependency's servers past its first `max_servers`
#: (semconv's spelling for a value outside the known set, as for methods).
OTHER_SERVER = "_OTHER"
#: The breaker transitions that happen without an operator, the bulkhead's reasons and the
#: breaker's results: each dependency's counter series for them start at 0 (see `_zero`).
AUTOMATIC_TRANSITIONS = (
    (State.CLOSED, State.OPEN),
    (State.OPEN, State.HALF_OPEN),
    (State.HALF_OPEN, State.CLOSED),
    (State.HALF_OPEN, State.OPEN),
)
BULKHEAD_REASONS = (QUEUE_FULL, QUEUE_TIMEOUT)
#: `seawall.breaker.result`: the breaker's verdicts, a slow call, and a call it refused
SLOW = "slow"
BREAKER_RESULTS = (ev.SUCCESS, ev.FAILURE, SLOW, ev.REJECTED)


class _Request:
    """What telemetry keeps about one logical request (hung on the exchange)."""

    __slots__ = (
        "span",
        "token",
        "attempt_span",
        "attempt_token",
        "key",
        "span_attributes",
        "server",
        "started_ns",
        "ended_attempt",
        "current",
        "http",
    )

    def __init__(
        self,
        span: trace.Span | None,
        token: Token[Context] | None,
        key: _Key,
        span_attributes: dict[str, Any],
        server: tuple[str, int],
        http: bool = True,
    ) -> None:
        self.span = span  # the logical span (spans="attempts": only once one is needed)
        self.token = token
        self.attempt_span: trace.Span | None = None
        self.attempt_token: Token[Context] | None = None
        self.key = key  # what every attempt's metrics share, bounded
        self.span_attributes = span_attributes  # what every span shares, as it is
        self.server = server  # (host, port) of the URL
        # spans="attempts" only: when the request started (a late logical span starts then),
        # the last attempt span ended (linked from it) and `_CURRENT`'s token
        self.started_ns = 0
        self.ended_attempt: trace.Span | None = None
        self.current: Token[_Request | None] | None = None
        self.http = http  # False for a protected call (`seawall.protect`): no HTTP semantics


#: spans="attempts": the request whose events are being told, on its own thread or task (its
#: events between attempts do not say which request they belong to, and no span of its own
#: is current then to hold them)
_CURRENT: ContextVar[_Request | None] = ContextVar("seawall_request", default=None)

#: `Telemetry(spans=...)`: a logical span for every request, or only where it tells something
REQUEST_SPANS, ATTEMPT_SPANS = "request", "attempts"


#: (seawall.dependency, http.request.method, server.address, server.port or None)
_Key = tuple[str, str, str, "int | None"]


class Telemetry:
    """Turns a policy's events into spans and metrics. One instance can watch many policies.

    `tracer_provider` / `meter_provider`: default the global ones (looked up when needed, so a
    provider set up after seawall still counts). `max_dependencies`: distinct
    `seawall.dependency` labels (then `_other`); `max_servers`: distinct
    `server.address`/`server.port` pairs per dependency label on metrics (then `_OTHER`, no
    port); `max_label_sets`: label sets per metric (then the overflow set
    `otel.metric.overflow=true`). `redact_query`: more query parameter names
    whose values must never be recorded; `sensitive_query_keys`: the list they are added to
    (default `seawall.telemetry.redact.SENSITIVE_QUERY_KEYS`). Both are compared
    case-insensitively and percent-decoded. `spans`: "request" (default), an INTERNAL span for
    every logical request with the attempts' CLIENT spans under it; "attempts", the official
    instrumentations' shape: the CLIENT spans alone, and the logical span only for a request
    that retried, waited for a slot or was refused (docs/telemetry.md). While no SDK is installed (the API's no-op
    providers), requests cost nothing: the API tells seawall when a provider is set.
    """

    #: What each argument must be (checked, types first, when it is built).
    RULES: ClassVar[_validate.Rules] = {
        "tracer_provider": _validate.Instance(
            trace.TracerProvider, "a TracerProvider", optional=True
        ),
        "meter_provider": _validate.Instance(
            metrics.MeterProvider, "a MeterProvider", optional=True
        ),
        "redact_query": _validate.Each(
            "a collection of query parameter names (str)", str, valid=bool, into=tuple
        ),
        "sensitive_query_keys": _validate.Each(
            "a collection of query parameter names (str)", str, valid=bool, into=tuple
        ),
        "max_dependencies": _validate.Count(),
        "max_servers": _validate.Count(),
        "max_label_sets": _validate.Count(),
        "spans": _validate.Choice(REQUEST_SPANS, ATTEMPT_SPANS),
    }

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        redact_query: Iterable[str] = (),
        sensitive_query_keys: Iterable[str] = SENSITIVE_QUERY_KEYS,
        max_dependencies: int = 100,
        max_servers: int = 10,
        max_label_sets: int = 2000,
        spans: str = REQUEST_SPANS,
    ) -> None:
        checked = _validate.arguments(
            "Telemetry",
            self.RULES,
            {
                "tracer_provider": tracer_provider,
                "meter_provider": meter_provider,
                "redact_query": redact_query,
                "sensitive_query_keys": sensitive_query_keys,
                "max_dependencies": max_dependencies,
                "max_servers": max_servers,
                "max_label_sets": max_label_sets,
                "spans": spans,
            },
        )
        redact_query, sensitive_query_keys = (
            checked["redact_query"],
            checked["sensitive_query_keys"],
        )
        self._explicit = tracer_provider is not None or meter_provider is not None
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._redact = query_keys((*sensitive_query_keys, *redact_query))
        self._per_attempt = spans == ATTEMPT_SPANS
        self._max_dependencies = max_dependencies
        self._dependencies: set[str] = set()
        self._servers = FirstValues(max_servers)
        # the metrics whose attributes come from traffic: each one's label sets, bounded
        self._attempt_sets = LabelSets(max_label_sets)
        self._request_sets = LabelSets(max_label_sets)
        self._retry_sets = LabelSets(max_label_sets)
        self._policies: weakref.WeakSet[Any] = weakref.WeakSet()
        # Breaker calls are tallied here and reported by an observable counter: an SDK counter
        # `add` on every request would cost more than the rest of the metrics together.
        self._calls: dict[tuple[str, str], int] = {}
        self._calls_lock = threading.Lock()
        self._live = False
        self._ready = False
        self._told = False  # whether the API announces the providers set to this instance
        # each event class straight to its handler (no dispatching layer on the hot path);
        # bound once, so that unsubscribing finds them again
        self._handlers = {kind: handler.__get__(self) for kind, handler in _HANDLERS.items()}
        self._listen_for_sdk = self._notice
        # watch() and going live may race on other threads; re-entered when looking at the
        # providers sets one up (the OTEL_PYTHON_*_PROVIDER variables) and so announces it
        self._wiring = threading.RLock()

    # -- wiring ----------------------------------------------------------------------------
    def watch(self, policy: Any) -> None:
        """Subscribe to `policy`'s events and report its live state in the gauges. Until an SDK
        is behind the providers, nothing is listened to, so no event is even built: the API
        tells this instance when a global provider is set (`_providers_set`). Where it cannot,
        the start of each request is listened to instead, to look for one."""
        with self._wiring:
            self._policies.add(policy)
            if not self._live and not self._explicit:
                # before looking: a provider set from now on is announced
                told = _providers_set.listen(self)
                if told != self._told:  # the others' listeners change too
                    self._told = told
                    for watched in list(self._policies):
                        self._subscribe(watched)
                    return
            self._subscribe(policy)

    def _subscribe(self, policy: Any) -> None:
        """(Re)subscribe `policy` for what telemetry needs now (wiring lock held)."""
        policy.unsubscribe(self._listen_for_sdk)
        for handler in self._handlers.values():
            policy.unsubscribe(handler)
        if self._is_live():
            for kind, handler in self._handlers.items():
                policy.subscribe(handler, kind)
        elif not self._told:
            policy.subscribe(self._listen_for_sdk, ev.RequestStarted)

    def providers_set(self) -> None:
        """A global provider was just set: every event of every watched policy, from the next
        request on, if it is an SDK."""
        self._go_live()

    def _notice(self, event: ev.Event) -> None:
        """Where the API cannot announce providers: is there an SDK now? Then every event of
        every watched policy, from this request on."""
        if self._go_live():
            self._handlers[type(event)](event)

    def _go_live(self) -> bool:
        if not self._is_live():
            return False
        with self._wiring:
            for policy in list(self._policies):
                self._subscribe(policy)
        _providers_set.forget(self)
        return True

    def _is_live(self) -> bool:
        """Whether a real SDK is behind the providers (checked until it is); the instruments
        are built on it before this first says so."""
        if not self._live and (self._explicit or _sdk_present()):
            with self._wiring:
                if not self._ready:
                    self._build()
                self._live = True
        return self._live

    def _build(self) -> None:
        from .. import __version__

        tracer_provider = self._tracer_provider or trace.get_tracer_provider()
        meter_provider = self._meter_provider or metrics.get_meter_provider()
        self.tracer = tracer_provider.get_tracer("seawall", __version__)
        meter = meter_provider.get_meter("seawall", __version__)
        self.attempt_duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of each HTTP attempt (one per try, retries included).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.request_duration = meter.create_histogram(
            "seawall.request.duration",
            unit="s",
            description="Duration of each logical request, retries and waits included.",
            explicit_bucket_boundaries_advisory=REQUEST_BUCKETS,
        )
        self.retries = meter.create_counter(
            "seawall.retry.attempts", unit="{retry}", description="Retries made, by reason."
        )
        self.exhausted = meter.create_counter(
            "seawall.retry.exhausted",
            unit="{request}",
            description="Logical requests that failed after their last allowed attempt.",
        )
        self.budget_rejected = meter.create_counter(
            "seawall.retry.budget.rejected",
            unit="{retry}",
            description="Retries refused by the retry budget.",
        )
        self.transitions = meter.create_counter(
            "seawall.circuit_breaker.transitions",
            unit="{transition}",
            description="Circuit breaker state changes.",
        )
        self.manual_changes = meter.create_counter(
            "seawall.manual.changes",
            unit="{change}",
            description="Changes made by hand (seawall.admin): reset, isolate, disable, by part.",
        )
        self.probes = meter.create_counter(
            "seawall.health.probes",
            unit="{probe}",
            description="Health probes sent, by result (pass / fail).",
        )
        self.health_changes = meter.create_counter(
            "seawall.health.changes",
            unit="{change}",
            description="Health verdict changes, by the new one (healthy / unhealthy) and source.",
        )
        meter.create_observable_counter(
            "seawall.circuit_breaker.calls",
            [self._observe_calls],
            unit="{call}",
            description="Calls seen by the circuit breaker, by result.",
        )
        self.bulkhead_rejections = meter.create_counter(
            "seawall.bulkhead.rejections",
            unit="{request}",
            description="Requests turned away by the bulkhead.",
        )
        self.queue_duration = meter.create_histogram(
            "seawall.bulkhead.queue.duration",
            unit="s",
            description="Time spent waiting for a bulkhead slot, by the requests that queued "
            "(admitted, or rejected when the wait ran out).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        meter.create_observable_gauge(
            "seawall.circuit_breaker.state",
            [self._observe_breakers],
            unit="{breaker}",
            description="1 for the breaker's current state, 0 for the others (keyed breakers: "
            "how many are in each state).",
        )
        meter.create_observable_gauge(
            "seawall.bulkhead.active",
            [self._observe_active],
            unit="{request}",
            description="Bulkhead slots in use.",
        )
        meter.create_observable_gauge(
            "seawall.bulkhead.queued",
            [self._observe_queued],
            unit="{request}",
            description="Callers waiting for a slot.",
        )
        meter.create_observable_gauge(
            "seawall.bulkhead.limit",
            [self._observe_limit],
            unit="{request}",
            description="Configured concurrency limit.",
        )
        meter.create_observable_gauge(
            "seawall.fleet.degraded",
            [self._observe_fleets],
            unit="{fleet}",
            description="1 while a seawall.Fleet cannot reach Redis and its breakers decide "
            "locally (fail open), else 0.",
        )
        meter.create_observable_gauge(
            "seawall.pool.connections",
            [self._observe_pools],
            unit="{connection}",
            description="Open connections by state, where the client exposes its pool.",
        )
        self._ready = True
        for policy in list(self._policies):  # the dependencies seen before the SDK was
            for state in policy.dependencies():
                self._zero(policy, state)

    def dependency(self, name: str) -> str:
        """The label for a dependency: bounded across every policy this instance watches."""
        if name in self._dependencies:
            return name
        if len(self._dependencies) >= self._max_dependencies:
            return OTHER
        self._dependencies.add(name)
        return name

    # -- events ----------------------------------------------------------------------------
    def _dependency_added(self, event: ev.DependencyAdded) -> None:
        self._zero(event.policy, event.state)

    def _zero(self, policy: Any, state: Any) -> None:
        """Create the dependency's counter series at 0. A series that first appears at 1 hides
        its first event from `rate()` and `increase()`: 4 breaker openings would read as 3."""
        dependency = self.dependency(state.name)
        attributes = {"seawall.dependency": dependency}
        retried = policy.retry
        if retried is not None:
            self.exhausted.add(0, attributes)
            if state.budget is not None:
                self.budget_rejected.add(0, attributes)
            for status in sorted(retried.statuses & RETRY_STATUSES):  # a few, known in advance
                self.retries.add(0, self._retry_attributes(dependency, str(status)))
        if policy.breaker is not None:
            for before, after in AUTOMATIC_TRANSITIONS:
                self.transitions.add(
                    0,
                    {
                        **attributes,
                        "seawall.breaker.from": before.value,
                        "seawall.breaker.to": after.value,
                    },
                )
            with self._calls_lock:  # the calls of dependencies with a breaker, only
                for result in BREAKER_RESULTS:
                    self._calls.setdefault((dependency, result), 0)
        if state.bulkhead is not None:
            for reason in BULKHEAD_REASONS:
                self.bulkhead_rejections.add(0, {**attributes, "seawall.bulkhead.reason": reason})
        has = {
            "circuit_breaker": policy.breaker is not None,
            "bulkhead": state.bulkhead is not None,
            "retry_budget": state.budget is not None,
        }
        for part, actions in ev.MANUAL_ACTIONS.items():
            for action in actions if has[part] else ():
                self.manual_changes.add(
                    0, {**attributes, "seawall.manual.part": part, "seawall.manual.action": action}
                )

    def _started(self, event: ev.RequestStarted) -> None:
        exchange = event.exchange
        target = exchange.target()
        if target.scheme == CALL:
            return self._call_started(exchange, self.dependency(event.dependency), target.path)
        method = target.method if target.method in _KNOWN_METHODS else "_OTHER"
        dependency = self.dependency(event.dependency)
        host, port = target.host, target.port
        span_attributes: dict[str, Any] = {
            "http.request.method": method,
            "server.address": host,
            "server.port": port,
            "seawall.dependency": dependency,
            "url.full": redact(exchange.url(), self._redact),
        }
        if method == "_OTHER":  # on spans only: any token can be a method
            span_attributes["http.request.method_original"] = target.method
        server = (host, port)
        key: _Key = (
            (dependency, method, host, port)
            if self._servers.admits(dependency, server)
            else (dependency, method, OTHER_SERVER, None)
        )
        if self._per_attempt:  # a logical span only once it has something to tell
            state = exchange.telemetry = _Request(None, None, key, span_attributes, server)
            state.started_ns = time.time_ns()
            state.current = _CURRENT.set(state)
            return
        span = self.tracer.start_span(
            f"seawall {dependency}", kind=SpanKind.INTERNAL, attributes=span_attributes
        )
        token = context.attach(trace.set_span_in_context(span))
        exchange.telemetry = _Request(span, token, key, span_attributes, server)

    def _logical_span(self, state: _Request, current: bool = True) -> trace.Span:
        """spans="attempts": the request's logical span, started now if it has none yet (as
        of the request's start, linked to the attempt that ended before it; `current`: the
        attempts after it are its children)."""
        if state.span is not None:
            return state.span
        ended = state.ended_attempt
        span = state.span = self.tracer.start_span(
            f"seawall {state.key[0]}",
            kind=SpanKind.INTERNAL,
            attributes=state.span_attributes,
            start_time=state.started_ns,
            links=None if ended is None else [Link(ended.get_span_context())],
        )
        if current:
            state.token = context.attach(trace.set_span_in_context(span))
        return span

    def _call_started(self, exchange: Any, dependency: str, function: str) -> None:
        """A protected call's logical span: INTERNAL, named as a request's is."""
        span_attributes: dict[str, Any] = {"seawall.dependency": dependency}
        if function:
            span_attributes["code.function.name"] = function
        span = self.tracer.start_span(
            f"seawall {dependency}", kind=SpanKind.INTERNAL, attributes=span_attributes
        )
        token = context.attach(trace.set_span_in_context(span))
        key: _Key = (dependency, "", "", None)
        exchange.telemetry = _Request(span, token, key, span_attributes, ("", 0), http=False)

    def _attempt_started(self, event: ev.AttemptStarted) -> None:
        state: _Request | None = event.exchange.telemetry
        if state is None:
            return
        if not state.http:
            return self._call_attempt_started(event, state)
        attributes = state.span_attributes  # the SDK copies what it is given
        if event.attempt > 1:
            attributes = {**attributes, "http.request.resend_count": event.attempt - 1}
        method = attributes["http.request.method"]
        span = self.tracer.start_span(
            method if method != "_OTHER" else "HTTP", kind=SpanKind.CLIENT, attributes=attributes
        )
        ctx = trace.set_span_in_context(span)
        # The official HTTP instrumentations stay quiet for this attempt: this span is it.
        ctx = context.set_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, ctx)
        state.attempt_span = span
        state.attempt_token = context.attach(ctx)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=ctx)
        for name, value in carrier.items():
            event.exchange.set_header(name, value)

    def _call_attempt_started(self, event: ev.AttemptStarted, state: _Request) -> None:
        """One INTERNAL span per attempt of a protected call, current while the call runs
        (what the call does, HTTP requests included, nests under it)."""
        attributes = {**state.span_attributes, "seawall.attempt": event.attempt}
        name = state.span_attributes.get("code.function.name") or f"seawall {state.key[0]}"
        span = self.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)
        state.attempt_span = span
        state.attempt_token = context.attach(trace.set_span_in_context(span))

    def _attempt_ended(self, event: ev.AttemptEnded) -> None:
        state: _Request | None = event.exchange.telemetry
        if state is None or state.attempt_span is None:
            return
        if not state.http:
            return self._call_attempt_ended(event, state, state.attempt_span)
        span = state.attempt_span
        ended: dict[str, Any] = {}  # what the attempt's span does not have yet
        status = event.status
        error_type = version = None
        peer: tuple[str, int] | None
        if status is not None:
            ended["http.response.status_code"] = status
            if status >= 400:
                error_type = str(status)
        elif event.error is not None:
            error_type = _qualified(event.error)
        if event.response is not None:
            version = event.exchange.protocol(event.response)
            if version:
                ended["network.protocol.version"] = version
            peer = event.exchange.peer(event.response)
        else:
            peer = None
        if peer is None:  # the socket is gone, or never was: the URL's, as the official
            peer = state.server  # instrumentations report
        # (on the span only: one per socket, no label for a metric)
        ended["network.peer.address"], ended["network.peer.port"] = peer
        if error_type is not None:
            ended["error.type"] = error_type
        cancelled = (
            event.error is not None
            and event.breaker_result == ev.IGNORED
            and not isinstance(event.error, Exception)
        )
        if span.is_recording():
            span.set_attributes(ended)  # each attribute given is validated: only the new ones
            if error_type is not None and not cancelled:
                # semconv: no description when the status code says it all
                span.set_status(
                    _ERROR if status is not None else Status(StatusCode.ERROR, error_type)
                )
        key = (state.key, status, error_type, version)
        attributes = self._attempt_sets.get(key) or self._attempt_sets.add(
            key, _metric_attributes(state.key, status, error_type, version)
        )
        self.attempt_duration.record(event.duration, attributes)  # exemplar: this attempt
        self._attempt_over(event, state, span)
        if self._per_attempt:
            state.ended_attempt = span

    def _call_attempt_ended(self, event: ev.AttemptEnded, state: _Request, span: Any) -> None:
        if event.error is not None and span.is_recording():
            error_type = _qualified(event.error)
            span.set_attribute("error.type", error_type)
            if isinstance(event.error, Exception):  # not for a cancellation
                span.set_status(Status(StatusCode.ERROR, error_type))
        self._attempt_over(event, state, span)

    def _attempt_over(self, event: ev.AttemptEnded, state: _Request, span: Any) -> None:
        """What ends every attempt's telemetry: the breaker's tally, its span, its context."""
        if event.breaker_result != ev.IGNORED:
            self._count_call(state.key[0], SLOW if event.slow else event.breaker_result)
        span.end()
        if state.attempt_token is not None:
            context.detach(state.attempt_token)
        state.attempt_span = state.attempt_token = None

    def _finished(self, event: ev.RequestFinished) -> None:
        state: _Request | None = event.exchange.telemetry
        if state is None:
            return
        dependency, method = state.key[0], state.key[1]
        key = (dependency, event.outcome, method)
        self.request_duration.record(
            event.duration,
            self._request_sets.get(key)
            or self._request_sets.add(key, _request_attributes(dependency, event.outcome, method)),
        )
        if self._per_attempt and state.current is not None:
            try:
                _CURRENT.reset(state.current)
            except ValueError:  # ended in another context than it started in
                _CURRENT.set(None)
            if state.span is None and event.attempts == 1:
                event.exchange.telemetry = None
                return  # one attempt that waited for nothing: its span says it all
        span = state.span
        if span is None:  # spans="attempts": no attempt, or retried without waiting
            span = self._logical_span(state, current=False)
        if span.is_recording():
            ended: dict[str, Any] = {
                "seawall.outcome": event.outcome,
                "seawall.attempts": event.attempts,
            }
            if event.status is not None:
                ended["http.response.status_code"] = event.status
            if event.outcome in (ev.FAILURE, ev.REJECTED):
                if event.error is None:  # a failing status: semconv wants no description
                    ended["error.type"] = str(event.status)
                    status: Status | None = _ERROR
                else:
                    ended["error.type"] = kind = _qualified(event.error)
                    status = Status(StatusCode.ERROR, kind)
            else:
                status = None
            span.set_attributes(ended)
            if status is not None:
                span.set_status(status)
        span.end()
        if state.token is not None:
            context.detach(state.token)
        event.exchange.telemetry = None

    def _current_event(self, name: str, attributes: dict[str, Any], opens: bool = False) -> None:
        # These events happen on the request's own thread or task: between attempts its
        # logical span is current; a breaker transition lands on the attempt that caused it.
        # spans="attempts": between attempts, a request without a logical span yet gets one
        # for what it `opens` with (a wait, a retry, a rejection), and the others are dropped.
        if self._per_attempt:
            state = _CURRENT.get()
            if state is not None and state.attempt_span is None and state.span is None:
                if not opens:
                    return
                self._logical_span(state)
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(name, attributes)

    def _admitted(self, event: ev.BulkheadAdmitted) -> None:
        # Only requests that queued: a zero for every request would cost a histogram record on
        # the hot path and tell nothing the request rate does not.
        if event.waited > 0:
            dependency = self.dependency(event.dependency)
            self.queue_duration.record(event.waited, {"seawall.dependency": dependency})
            self._current_event(
                "seawall.bulkhead.wait", {"seawall.bulkhead.waited": event.waited}, opens=True
            )

    def _bulkhead_rejected(self, event: ev.BulkheadRejected) -> None:
        dependency = self.dependency(event.dependency)
        self.bulkhead_rejections.add(
            1, {"seawall.dependency": dependency, "seawall.bulkhead.reason": event.reason}
        )
        if event.reason == QUEUE_TIMEOUT:  # a full queue turns the request away unqueued
            self.queue_duration.record(event.waited, {"seawall.dependency": dependency})
        self._current_event(
            "seawall.bulkhead.rejected",
            {"seawall.bulkhead.reason": event.reason, "seawall.bulkhead.waited": event.waited},
            opens=True,
        )

    def _retry(self, event: ev.RetryScheduled) -> None:
        self.retries.add(1, self._retry_attributes(self.dependency(event.dependency), event.reason))
        attributes: dict[str, Any] = {
            "seawall.retry.attempt": event.attempt,
            "seawall.retry.delay": event.delay,
            "seawall.retry.reason": event.reason,
        }
        if event.retry_after is not None:
            attributes["seawall.retry.retry_after"] = event.retry_after
        self._current_event("seawall.retry", attributes, opens=True)

    def _retry_stopped(self, event: ev.RetryStopped) -> None:
        dependency = self.dependency(event.dependency)
        if event.why == retry.ATTEMPTS_EXHAUSTED:
            self.exhausted.add(1, {"seawall.dependency": dependency})
        elif event.why == retry.BUDGET_EXHAUSTED:
            self.budget_rejected.add(1, {"seawall.dependency": dependency})
        self._current_event(
            "seawall.retry.stopped",
            {"seawall.retry.attempt": event.attempt, "seawall.retry.stopped_because": event.why},
        )

    def _circuit_rejected(self, event: ev.CircuitRejected) -> None:
        dependency = self.dependency(event.dependency)
        if event.reason == "throttled":  # a series of its own, only where throttling is on
            with self._calls_lock:
                key = (dependency, "throttled")
                self._calls[key] = self._calls.get(key, 0) + 1
        else:
            self._count_call(dependency, ev.REJECTED)
        self._current_event(
            "seawall.circuit_breaker.rejected",
            {
                "seawall.breaker.key": event.key,
                "seawall.breaker.retry_in": event.retry_in,
                "seawall.breaker.reason": event.reason,
            },
            opens=True,
        )

    def _probed(self, event: ev.HealthProbed) -> None:
        self.probes.add(
            1,
            {
                "seawall.dependency": self.dependency(event.dependency),
                "seawall.health.result": "pass" if event.passed else "fail",
            },
        )

    def _health_changed(self, event: ev.HealthChanged) -> None:
        self.health_changes.add(
            1,
            {
                "seawall.dependency": self.dependency(event.dependency),
                "seawall.health.state": "healthy" if event.healthy else "unhealthy",
                "seawall.health.source": event.source,
            },
        )

    def _transition(self, event: ev.CircuitTransition) -> None:
        self.transitions.add(
            1,
            {
                "seawall.dependency": self.dependency(event.dependency),
                "seawall.breaker.from": event.from_state.value,
                "seawall.breaker.to": event.to_state.value,
            },
        )
        self._current_event(
            "seawall.circuit_breaker.transition",
            {
                "seawall.breaker.key": event.key,
                "seawall.breaker.from": event.from_state.value,
                "seawall.breaker.to": event.to_state.value,
            },
        )

    def _manual(self, event: ev.ManualChange) -> None:
        self.manual_changes.add(
            1,
            {
                "seawall.dependency": self.dependency(event.dependency),
                "seawall.manual.part": event.part,
                "seawall.manual.action": event.action,
            },
        )

    def _retry_attributes(self, dependency: str, reason: str) -> dict[str, Any]:
        key = (dependency, reason)
        return self._retry_sets.get(key) or self._retry_sets.add(
            key, {"seawall.dependency": dependency, "error.type": reason}
        )

    def _count_call(self, dependency: str, result: str) -> None:
        key = (dependency, result)
        with self._calls_lock:
            if key in self._calls:  # created at 0 for the dependencies that have a breaker
                self._calls[key] += 1

    # -- observed instruments ----------------------------------------------------------------
    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._calls_lock:
            totals = list(self._calls.items())
        for (dependency, result), total in totals:
            yield Observation(
                total, {"seawall.dependency": dependency, "seawall.breaker.result": result}
            )

    def _states(self) -> Iterable[tuple[str, Any]]:
        for policy in list(self._policies):
            for state in policy.dependencies():
                yield self.dependency(state.name), state

    def _observe_breakers(self, options: CallbackOptions) -> Iterable[Observation]:
        for policy in list(self._policies):
            now = policy.now()
            for state in policy.dependencies():
                breakers = state.breakers()
                if not breakers:
                    continue
                counts = dict.fromkeys(State, 0)
                for breaker in breakers:
                    counts[breaker.state(now)] += 1
                dependency = self.dependency(state.name)
                for breaker_state, count in counts.items():
                    yield Observation(
                        count,
                        {
                            "seawall.dependency": dependency,
                            "seawall.breaker.state": breaker_state.value,
                        },
                    )

    def _observe_fleets(self, options: CallbackOptions) -> Iterable[Observation]:
        seen: set[int] = set()
        for policy in list(self._policies):
            store = policy._store
            if not hasattr(store, "degraded") or id(store) in seen:
                continue  # the local store, or a fleet already reported
            seen.add(id(store))
            yield Observation(int(store.degraded), {"seawall.fleet.namespace": store.namespace})

    def _observe_active(self, options: CallbackOptions) -> Iterable[Observation]:
        for dependency, state in self._states():
            if state.bulkhead is not None:
                yield Observation(state.bulkhead.active, {"seawall.dependency": dependency})

    def _observe_queued(self, options: CallbackOptions) -> Iterable[Observation]:
        for dependency, state in self._states():
            if state.bulkhead is not None:
                yield Observation(state.bulkhead.queued, {"seawall.dependency": dependency})

    def _observe_limit(self, options: CallbackOptions) -> Iterable[Observation]:
        for dependency, state in self._states():
            if state.bulkhead is not None:
                yield Observation(
                    state.bulkhead.config.max_concurrent, {"seawall.dependency": dependency}
                )

    def _observe_pools(self, options: CallbackOptions) -> Iterable[Observation]:
        totals: dict[str, tuple[int, int]] = {}
        for policy in list(self._policies):
            for name, (active, idle) in policy.pool_counts().items():
                dependency = self.dependency(name)
                before = totals.get(dependency, (0, 0))
                totals[dependency] = (before[0] + active, before[1] + idle)
        for dependency, (active, idle) in totals.items():
            yield Observation(active, {"seawall.dependency": dependency, "state": "active"})
            yield Observation(idle, {"seawall.dependency": dependency, "state": "idle"})


_ERROR = Status(StatusCode.ERROR)


def _sdk_present() -> bool:
    """Whether either global provider is something other than the API's no-op or proxy."""
    tracer_live = not isinstance(
        trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    )
    meter_live = type(metrics.get_meter_provider()).__name__ not in (
        "_ProxyMeterProvider",
        "NoOpMeterProvider",
    )
    return tracer_live or meter_live


def _request_attributes(dependency: str, outcome: str, method: str) -> dict[str, Any]:
    """A logical request's attributes on `seawall.request.duration` (a protected call has no
    method)."""
    attributes = {"seawall.dependency": dependency, "seawall.outcome": outcome}
    if method:
        attributes["http.request.method"] = method
    return attributes


def _metric_attributes(
    key: _Key, status: int | None, error_type: str | None, version: str | None
) -> dict[str, Any]:
    """An attempt's attributes on `http.client.request.duration`."""
    dependency, method, address, port = key
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "server.address": address,
        "seawall.dependency": dependency,
    }
    if port is not None:
        attributes["server.port"] = port
    if status is not None:
        attributes["http.response.status_code"] = status
    if error_type is not None:
        attributes["error.type"] = error_type
    if version:
        attributes["network.protocol.version"] = version
    return attributes


def _qualified(error: BaseException) -> str:
    cls = type(error)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


_HANDLERS: dict[type, Any] = {
    ev.DependencyAdded: Telemetry._dependency_added,
    ev.RequestStarted: Telemetry._started,
    ev.AttemptStarted: Telemetry._attempt_started,
    ev.AttemptEnded: Telemetry._attempt_ended,
    ev.RequestFinished: Telemetry._finished,
    ev.BulkheadAdmitted: Telemetry._admitted,
    ev.BulkheadRejected: Telemetry._bulkhead_rejected,
    ev.RetryScheduled: Telemetry._retry,
    ev.RetryStopped: Telemetry._retry_stopped,
    ev.CircuitRejected: Telemetry._circuit_rejected,
    ev.CircuitTransition: Telemetry._transition,
    ev.ManualChange: Telemetry._manual,
    ev.HealthProbed: Telemetry._probed,
    ev.HealthChanged: Telemetry._health_changed,
}

_default: Telemetry | None = None


def default() -> Telemetry:
    """The shared instance on the global providers (what `Policy(telemetry=True)` uses)."""
    global _default
    if _default is None:
        _default = Telemetry()
    return _default
