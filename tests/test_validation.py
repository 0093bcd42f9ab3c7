"""Every public constructor and factory rejects a bad argument at once, naming it (issue 11,
item 4): the type is checked first (`TypeError`, the given type shown before the value), then
the value (`ValueError`), and the message says which argument and what was expected."""

import dataclasses
import inspect
from math import inf, nan

import httpx
import pytest

import seawall.aiohttp
import seawall.requests
from seawall import (
    Backoff,
    Bulkhead,
    CircuitBreaker,
    ErrorKind,
    Policy,
    Pool,
    Retry,
    RetryBudget,
    Timeouts,
)
from seawall.config import Router, load
from seawall.httpx import AsyncResilientTransport, ResilientTransport
from seawall.instrumentation import router_from
from seawall.requests import ResilientAdapter
from seawall.telemetry.otel import Telemetry

# (how it is built, the exception, the start of its message: for all but two rows, the whole)
BAD = [
    # -- CircuitBreaker ----------------------------------------------------------------------
    (
        lambda: CircuitBreaker(failure_rate="0.5"),
        TypeError,  # listed in issue 11
        "CircuitBreaker: failure_rate must be a ratio from above 0 to 1, got str '0.5'",
    ),
    (
        lambda: CircuitBreaker(failure_rate=None),
        TypeError,  # listed in issue 11
        "CircuitBreaker: failure_rate must be a ratio from above 0 to 1, got None",
    ),
    (
        lambda: CircuitBreaker(failure_rate=0),
        ValueError,
        "CircuitBreaker: failure_rate must be a ratio from above 0 to 1, got 0",
    ),
    (
        lambda: CircuitBreaker(failure_rate=1.5),
        ValueError,
        "CircuitBreaker: failure_rate must be a ratio from above 0 to 1, got 1.5",
    ),
    (
        lambda: CircuitBreaker(failure_rate=nan),
        ValueError,
        "CircuitBreaker: failure_rate must be a ratio from above 0 to 1, got nan",
    ),
    (
        lambda: CircuitBreaker(failure_rate=True),
        TypeError,
        "CircuitBreaker: failure_rate must be a ratio from above 0 to 1, got bool True",
    ),
    (
        lambda: CircuitBreaker(slow_call_rate="x"),
        TypeError,  # listed in issue 11
        "CircuitBreaker: slow_call_rate must be a ratio from above 0 to 1, got str 'x'",
    ),
    (
        lambda: CircuitBreaker(slow_call_rate=-0.1),
        ValueError,
        "CircuitBreaker: slow_call_rate must be a ratio from above 0 to 1, got -0.1",
    ),
    (
        lambda: CircuitBreaker(window="30"),
        TypeError,
        "CircuitBreaker: window must be a number of seconds (or of calls) > 0, got str '30'",
    ),
    (
        lambda: CircuitBreaker(window=-1),
        ValueError,
        "CircuitBreaker: window must be a number of seconds (or of calls) > 0, got -1",
    ),
    (
        lambda: CircuitBreaker(window=inf),
        ValueError,
        "CircuitBreaker: window must be a number of seconds (or of calls) > 0, got inf",
    ),
    (
        lambda: CircuitBreaker(window=2.5, window_type="count"),
        ValueError,
        "CircuitBreaker: window must be a whole number of calls with window_type='count', got 2.5",
    ),
    (
        lambda: CircuitBreaker(window_type=1),
        TypeError,
        "CircuitBreaker: window_type must be one of time, count, got int 1",
    ),
    (
        lambda: CircuitBreaker(window_type="sliding"),
        ValueError,
        "CircuitBreaker: window_type must be one of time, count, got 'sliding'",
    ),
    (
        lambda: CircuitBreaker(min_calls=True),
        TypeError,
        "CircuitBreaker: min_calls must be a whole number >= 1, got bool True",
    ),
    (
        lambda: CircuitBreaker(min_calls=0),
        ValueError,
        "CircuitBreaker: min_calls must be a whole number >= 1, got 0",
    ),
    (
        lambda: CircuitBreaker(min_calls=2.0),
        TypeError,
        "CircuitBreaker: min_calls must be a whole number >= 1, got float 2.0",
    ),
    (
        lambda: CircuitBreaker(consecutive_failures="3"),
        TypeError,
        "CircuitBreaker: consecutive_failures must be a whole number >= 1 or None, got str '3'",
    ),
    (
        lambda: CircuitBreaker(consecutive_failures=0),
        ValueError,
        "CircuitBreaker: consecutive_failures must be a whole number >= 1 or None, got 0",
    ),
    (
        lambda: CircuitBreaker(slow_call_duration=0),
        ValueError,
        "CircuitBreaker: slow_call_duration must be a number of seconds > 0 or None, got 0",
    ),
    (
        lambda: CircuitBreaker(slow_call_duration="1s"),
        TypeError,
        "CircuitBreaker: slow_call_duration must be a number of seconds > 0 or None, got str '1s'",
    ),
    (
        lambda: CircuitBreaker(open_for=None),
        TypeError,
        "CircuitBreaker: open_for must be a number of seconds > 0, got None",
    ),
    (
        lambda: CircuitBreaker(open_for=-1),
        ValueError,
        "CircuitBreaker: open_for must be a number of seconds > 0, got -1",
    ),
    (
        lambda: CircuitBreaker(open_for=inf),
        ValueError,
        "CircuitBreaker: open_for must be a number of seconds > 0, got inf",
    ),
    (
        lambda: CircuitBreaker(half_open_calls=0),
        ValueError,
        "CircuitBreaker: half_open_calls must be a whole number >= 1, got 0",
    ),
    (
        lambda: CircuitBreaker(half_open_calls=1.5),
        TypeError,
        "CircuitBreaker: half_open_calls must be a whole number >= 1, got float 1.5",
    ),
    (
        lambda: CircuitBreaker(success_threshold=-1),
        ValueError,
        "CircuitBreaker: success_threshold must be a whole number >= 1, got -1",
    ),
    (
        lambda: CircuitBreaker(failure_statuses=["500", "503"]),
        TypeError,  # listed in issue 11
        (
            "CircuitBreaker: failure_statuses must be a collection of HTTP status codes (int 100-599), "
            "got str '500' in ['500', '503']"
        ),
    ),
    (
        lambda: CircuitBreaker(failure_statuses=503),
        TypeError,
        (
            "CircuitBreaker: failure_statuses must be a collection of HTTP status codes (int 100-599), "
            "got int 503"
        ),
    ),
    (
        lambda: CircuitBreaker(failure_statuses="503"),
        TypeError,
        (
            "CircuitBreaker: failure_statuses must be a collection of HTTP status codes (int 100-599), "
            "got str '503'"
        ),
    ),
    (
        lambda: CircuitBreaker(failure_statuses={99, 503}),
        ValueError,
        (
            "CircuitBreaker: failure_statuses must be a collection of HTTP status codes (int 100-599), "
            "got [99]"
        ),
    ),
    (
        lambda: CircuitBreaker(failure_statuses=[True]),
        TypeError,
        (
            "CircuitBreaker: failure_statuses must be a collection of HTTP status codes (int 100-599), "
            "got bool True in [True]"
        ),
    ),
    (
        lambda: CircuitBreaker(key=5),
        TypeError,
        "CircuitBreaker: key must be a callable taking a Target or None, got int 5",
    ),
    (
        lambda: CircuitBreaker(max_keys=0),
        ValueError,
        "CircuitBreaker: max_keys must be a whole number >= 1, got 0",
    ),
    # -- Backoff -----------------------------------------------------------------------------
    (
        lambda: Backoff.exponential(base="1"),
        TypeError,
        "Backoff.exponential: base must be a number of seconds >= 0, got str '1'",
    ),
    (
        lambda: Backoff.exponential(base=-1),
        ValueError,
        "Backoff.exponential: base must be a number of seconds >= 0, got -1",
    ),
    (
        lambda: Backoff.exponential(cap=nan),
        ValueError,
        "Backoff.exponential: cap must be a number of seconds >= 0, got nan",
    ),
    (
        lambda: Backoff.exponential(multiplier=0.5),
        ValueError,
        "Backoff.exponential: multiplier must be a number >= 1, got 0.5",
    ),
    (
        lambda: Backoff.exponential(multiplier=inf),
        ValueError,
        "Backoff.exponential: multiplier must be a number >= 1, got inf",
    ),
    (
        lambda: Backoff.exponential(multiplier="2"),
        TypeError,
        "Backoff.exponential: multiplier must be a number >= 1, got str '2'",
    ),
    (
        lambda: Backoff.exponential(jitter="sometimes"),
        ValueError,
        "Backoff.exponential: jitter must be one of none, full, equal, decorrelated, got 'sometimes'",
    ),
    (
        lambda: Backoff.exponential(jitter=None),
        TypeError,
        "Backoff.exponential: jitter must be one of none, full, equal, decorrelated, got None",
    ),
    (
        lambda: Backoff(kind="quadratic"),
        ValueError,
        "Backoff: kind must be one of exponential, linear, constant, got 'quadratic'",
    ),
    (
        lambda: Backoff.constant(delay=-1),
        ValueError,
        "Backoff.constant: delay must be a number of seconds >= 0, got -1",
    ),
    (
        lambda: Backoff.constant(delay="1"),
        TypeError,
        "Backoff.constant: delay must be a number of seconds >= 0, got str '1'",
    ),
    (
        lambda: Backoff.linear(cap=None),
        TypeError,
        "Backoff.linear: cap must be a number of seconds >= 0, got None",
    ),
    (
        lambda: Backoff.exponential(base=2, cap=1),
        ValueError,
        "Backoff.exponential: cap (1) must be >= base (2)",
    ),
    # -- RetryBudget -------------------------------------------------------------------------
    (
        lambda: RetryBudget(ratio="0.2"),
        TypeError,  # listed in issue 11
        "RetryBudget: ratio must be a ratio from 0 to 1, got str '0.2'",
    ),
    (
        lambda: RetryBudget(ratio=1.5),
        ValueError,
        "RetryBudget: ratio must be a ratio from 0 to 1, got 1.5",
    ),
    (
        lambda: RetryBudget(min_per_second=-1),
        ValueError,
        "RetryBudget: min_per_second must be a number of retries per second >= 0, got -1",
    ),
    (
        lambda: RetryBudget(min_per_second=None),
        TypeError,
        "RetryBudget: min_per_second must be a number of retries per second >= 0, got None",
    ),
    (
        lambda: RetryBudget(ttl="10"),
        TypeError,  # listed in issue 11
        "RetryBudget: ttl must be a number of seconds from 1 to 60, got str '10'",
    ),
    (
        lambda: RetryBudget(ttl=0.5),
        ValueError,
        "RetryBudget: ttl must be a number of seconds from 1 to 60, got 0.5",
    ),
    (
        lambda: RetryBudget(ttl=61),
        ValueError,
        "RetryBudget: ttl must be a number of seconds from 1 to 60, got 61",
    ),
    # -- Retry -------------------------------------------------------------------------------
    (
        lambda: Retry(max_attempts=0),
        ValueError,
        "Retry: max_attempts must be a whole number >= 1, got 0",
    ),
    (
        lambda: Retry(max_attempts="3"),
        TypeError,
        "Retry: max_attempts must be a whole number >= 1, got str '3'",
    ),
    (
        lambda: Retry(max_attempts=2.0),
        TypeError,
        "Retry: max_attempts must be a whole number >= 1, got float 2.0",
    ),
    (
        lambda: Retry(max_attempts=True),
        TypeError,
        "Retry: max_attempts must be a whole number >= 1, got bool True",
    ),
    (
        lambda: Retry(backoff=0.2),
        TypeError,
        "Retry: backoff must be a seawall.Backoff, got float 0.2",
    ),
    (lambda: Retry(backoff=None), TypeError, "Retry: backoff must be a seawall.Backoff, got None"),
    (
        lambda: Retry(statuses=["503", 99]),
        TypeError,  # listed in issue 11
        (
            "Retry: statuses must be a collection of HTTP status codes (int 100-599), got str '503' in "
            "['503', 99]"
        ),
    ),
    (
        lambda: Retry(statuses=503),
        TypeError,
        "Retry: statuses must be a collection of HTTP status codes (int 100-599), got int 503",
    ),
    (
        lambda: Retry(statuses={200, 999}),
        ValueError,
        "Retry: statuses must be a collection of HTTP status codes (int 100-599), got [999]",
    ),
    (
        lambda: Retry(errors=["connect"]),
        TypeError,  # listed in issue 11
        (
            "Retry: errors must be a collection of seawall.ErrorKind, got str 'connect' in ['connect'] "
            "(ErrorKind.CONNECT?)"
        ),
    ),
    (
        lambda: Retry(errors=ErrorKind.CONNECT),
        TypeError,
        (
            "Retry: errors must be a collection of seawall.ErrorKind, got ErrorKind "
            "<ErrorKind.CONNECT: 'connect'>"
        ),
    ),
    (
        lambda: Retry(errors=[ErrorKind.CONNECT, "bogus"]),
        TypeError,
        (
            "Retry: errors must be a collection of seawall.ErrorKind, got str 'bogus' in "
            "[<ErrorKind.CONNECT: 'connect'>, 'bogus']"
        ),
    ),
    (
        lambda: Retry(methods=[1]),
        TypeError,  # listed in issue 11
        "Retry: methods must be a collection of HTTP method names (str), got int 1 in [1]",
    ),
    (
        lambda: Retry(methods="GET"),
        TypeError,
        "Retry: methods must be a collection of HTTP method names (str), got str 'GET'",
    ),
    (
        lambda: Retry(methods=["GET /x"]),
        ValueError,
        "Retry: methods must be a collection of HTTP method names (str), got ['GET /x']",
    ),
    (
        lambda: Retry(methods=[""]),
        ValueError,
        "Retry: methods must be a collection of HTTP method names (str), got ['']",
    ),
    (
        lambda: Retry(unsafe_methods=1),
        TypeError,
        "Retry: unsafe_methods must be True or False, got int 1",
    ),
    (
        lambda: Retry(respect_retry_after=None),
        TypeError,
        "Retry: respect_retry_after must be True or False, got None",
    ),
    (
        lambda: Retry(max_retry_after=-1),
        ValueError,
        "Retry: max_retry_after must be a number of seconds >= 0, got -1",
    ),
    (
        lambda: Retry(max_retry_after="60"),
        TypeError,
        "Retry: max_retry_after must be a number of seconds >= 0, got str '60'",
    ),
    (
        lambda: Retry(budget=0.2),
        TypeError,
        "Retry: budget must be a seawall.RetryBudget or None, got float 0.2",
    ),
    (
        lambda: Retry(budget=True),
        TypeError,
        "Retry: budget must be a seawall.RetryBudget or None, got bool True",
    ),
    (
        lambda: Retry(predicate=5),
        TypeError,  # listed in issue 11
        "Retry: predicate must be a callable taking an AttemptInfo or None, got int 5",
    ),
    # -- Bulkhead ----------------------------------------------------------------------------
    (
        lambda: Bulkhead(max_concurrent=0),
        ValueError,
        "Bulkhead: max_concurrent must be a whole number >= 1, got 0",
    ),
    (
        lambda: Bulkhead(max_concurrent="10"),
        TypeError,
        "Bulkhead: max_concurrent must be a whole number >= 1, got str '10'",
    ),
    (
        lambda: Bulkhead(max_concurrent=1.5),
        TypeError,
        "Bulkhead: max_concurrent must be a whole number >= 1, got float 1.5",
    ),
    (
        lambda: Bulkhead(max_queued=-1),
        ValueError,
        "Bulkhead: max_queued must be a whole number >= 0, got -1",
    ),
    (
        lambda: Bulkhead(max_queued=None),
        TypeError,
        "Bulkhead: max_queued must be a whole number >= 0, got None",
    ),
    (
        lambda: Bulkhead(queue_timeout=-1),
        ValueError,
        "Bulkhead: queue_timeout must be a number of seconds >= 0 or None, got -1",
    ),
    (
        lambda: Bulkhead(queue_timeout="1"),
        TypeError,
        "Bulkhead: queue_timeout must be a number of seconds >= 0 or None, got str '1'",
    ),
    (
        lambda: Bulkhead(queue_timeout=inf),
        ValueError,
        "Bulkhead: queue_timeout must be a number of seconds >= 0 or None, got inf",
    ),
    (
        lambda: Bulkhead(max_concurrent=0, queue_timeout="x"),
        TypeError,
        "Bulkhead: queue_timeout must be a number of seconds >= 0 or None, got str 'x'",
    ),
    # -- Timeouts ----------------------------------------------------------------------------
    (
        lambda: Timeouts(attempt=0),
        ValueError,
        "Timeouts: attempt must be a number of seconds > 0 or None, got 0",
    ),
    (
        lambda: Timeouts(attempt="10"),
        TypeError,
        "Timeouts: attempt must be a number of seconds > 0 or None, got str '10'",
    ),
    (
        lambda: Timeouts(attempt=nan),
        ValueError,
        "Timeouts: attempt must be a number of seconds > 0 or None, got nan",
    ),
    (
        lambda: Timeouts(total=-1),
        ValueError,
        "Timeouts: total must be a number of seconds > 0 or None, got -1",
    ),
    (
        lambda: Timeouts(total=10**400),
        ValueError,
        "Timeouts: total must be a number of seconds > 0 or None, got 1000000000000000000000000",
    ),
    (
        lambda: Timeouts(total=True),
        TypeError,
        "Timeouts: total must be a number of seconds > 0 or None, got bool True",
    ),
    (
        lambda: Timeouts(attempt=5, total=2),
        ValueError,
        (
            "Timeouts: attempt (5 s) must not exceed total (2 s): the total would cut every slow "
            "attempt first"
        ),
    ),
    # -- Pool --------------------------------------------------------------------------------
    (
        lambda: Pool(max_connections="10"),
        TypeError,
        "Pool: max_connections must be a whole number >= 1, got str '10'",
    ),
    (
        lambda: Pool(max_connections=0),
        ValueError,
        "Pool: max_connections must be a whole number >= 1, got 0",
    ),
    (
        lambda: Pool(max_keepalive=-1),
        ValueError,
        "Pool: max_keepalive must be a whole number >= 0, got -1",
    ),
    (
        lambda: Pool(keepalive_expiry=None),
        TypeError,
        "Pool: keepalive_expiry must be a number of seconds >= 0, got None",
    ),
    (
        lambda: Pool(keepalive_expiry=inf),
        ValueError,
        "Pool: keepalive_expiry must be a number of seconds >= 0, got inf",
    ),
    # -- Policy ------------------------------------------------------------------------------
    (lambda: Policy(5), TypeError, "Policy: name must be a non-empty str or None, got int 5"),
    (lambda: Policy(""), ValueError, "Policy: name must be a non-empty str or None, got ''"),
    (
        lambda: Policy(retry=3),
        TypeError,
        "Policy: retry must be a seawall.Retry or None, got int 3",
    ),
    (
        lambda: Policy(breaker="on"),
        TypeError,
        "Policy: breaker must be a seawall.CircuitBreaker or None, got str 'on'",
    ),
    (
        lambda: Policy(bulkhead=True),
        TypeError,
        "Policy: bulkhead must be a seawall.Bulkhead or None, got bool True",
    ),
    (
        lambda: Policy(timeouts=10),
        TypeError,
        "Policy: timeouts must be a seawall.Timeouts or None, got int 10",
    ),
    (lambda: Policy(pool=None), TypeError, "Policy: pool must be a seawall.Pool, got None"),
    (
        lambda: Policy(fallback=5),
        TypeError,
        "Policy: fallback must be a callable taking a FallbackContext or None, got int 5",
    ),
    (
        lambda: Policy(telemetry="yes"),
        TypeError,  # listed in issue 11
        (
            "Policy: telemetry must be True, False, None or a seawall.telemetry.otel.Telemetry, got "
            "str 'yes'"
        ),
    ),
    (
        lambda: Policy(max_dependencies=True),
        TypeError,  # listed in issue 11
        "Policy: max_dependencies must be a whole number >= 1, got bool True",
    ),
    (
        lambda: Policy(max_dependencies=0),
        ValueError,
        "Policy: max_dependencies must be a whole number >= 1, got 0",
    ),
    (
        lambda: Policy(clock=5),
        TypeError,
        "Policy: clock must be a callable returning monotonic seconds, got int 5",
    ),
    (
        lambda: Policy(wall_clock=None),
        TypeError,
        "Policy: wall_clock must be a callable returning Unix time in seconds, got None",
    ),
    (
        lambda: Policy(random=0.5),
        TypeError,
        "Policy: random must be a callable returning a float in [0, 1), got float 0.5",
    ),
    # -- Telemetry ---------------------------------------------------------------------------
    (
        lambda: Telemetry(tracer_provider="x"),
        TypeError,
        "Telemetry: tracer_provider must be a TracerProvider or None, got str 'x'",
    ),
    (
        lambda: Telemetry(meter_provider=5),
        TypeError,
        "Telemetry: meter_provider must be a MeterProvider or None, got int 5",
    ),
    (
        lambda: Telemetry(redact_query="token"),
        TypeError,  # listed in issue 11
        "Telemetry: redact_query must be a collection of query parameter names (str), got str 'token'",
    ),
    (
        lambda: Telemetry(redact_query=[1]),
        TypeError,
        (
            "Telemetry: redact_query must be a collection of query parameter names (str), got int 1 in "
            "[1]"
        ),
    ),
    (
        lambda: Telemetry(redact_query=[""]),
        ValueError,
        "Telemetry: redact_query must be a collection of query parameter names (str), got ['']",
    ),
    (
        lambda: Telemetry(max_dependencies=-1),
        ValueError,  # listed in issue 11
        "Telemetry: max_dependencies must be a whole number >= 1, got -1",
    ),
    (
        lambda: Telemetry(max_dependencies="100"),
        TypeError,
        "Telemetry: max_dependencies must be a whole number >= 1, got str '100'",
    ),
    # -- adapters ----------------------------------------------------------------------------
    (
        lambda: ResilientTransport(policy="x"),
        TypeError,  # listed in issue 11
        (
            "ResilientTransport: policy must be a seawall.Policy or seawall.config.Router or None, got "
            "str 'x'"
        ),
    ),
    (
        lambda: ResilientTransport(transport=5),
        TypeError,
        "ResilientTransport: transport must be an httpx.BaseTransport or None, got int 5",
    ),
    (
        lambda: ResilientTransport(transport=httpx.AsyncHTTPTransport()),
        TypeError,
        (
            "ResilientTransport: transport must be an httpx.BaseTransport or None, got "
            "AsyncHTTPTransport "
        ),
    ),
    (
        lambda: ResilientTransport(buffer_body="yes"),
        TypeError,
        "ResilientTransport: buffer_body must be True or False, got str 'yes'",
    ),
    (
        lambda: AsyncResilientTransport(policy="x"),
        TypeError,
        (
            "AsyncResilientTransport: policy must be a seawall.Policy or seawall.config.Router or "
            "None, got str 'x'"
        ),
    ),
    (
        lambda: AsyncResilientTransport(transport=httpx.HTTPTransport()),
        TypeError,
        (
            "AsyncResilientTransport: transport must be an httpx.AsyncBaseTransport or None, got "
            "HTTPTransport "
        ),
    ),
    (
        lambda: AsyncResilientTransport(buffer_body=1),
        TypeError,
        "AsyncResilientTransport: buffer_body must be True or False, got int 1",
    ),
    (
        lambda: ResilientAdapter("x"),
        TypeError,
        (
            "ResilientAdapter: policy must be a seawall.Policy or seawall.config.Router or None, got "
            "str 'x'"
        ),
    ),
    (
        lambda: ResilientAdapter(pool_connections=0),
        ValueError,
        "ResilientAdapter: pool_connections must be a whole number >= 1, got 0",
    ),
    (
        lambda: ResilientAdapter(pool_connections="10"),
        TypeError,
        "ResilientAdapter: pool_connections must be a whole number >= 1, got str '10'",
    ),
    (
        lambda: ResilientAdapter(adapter=5),
        TypeError,
        "ResilientAdapter: adapter must be a requests.adapters.BaseAdapter or None, got int 5",
    ),
    (
        lambda: seawall.requests.session("x"),
        TypeError,  # listed in issue 11
        (
            "seawall.requests.session: policy must be a seawall.Policy or seawall.config.Router or "
            "None, got str 'x'"
        ),
    ),
    (
        lambda: seawall.aiohttp.middleware("x"),
        TypeError,  # listed in issue 11
        (
            "seawall.aiohttp.middleware: policy must be a seawall.Policy or seawall.config.Router or "
            "None, got str 'x'"
        ),
    ),
    (
        lambda: seawall.aiohttp.middleware(read_body="yes"),
        TypeError,
        "seawall.aiohttp.middleware: read_body must be True or False, got str 'yes'",
    ),
    (
        lambda: seawall.aiohttp.connector("x"),
        TypeError,
        (
            "seawall.aiohttp.connector: policy must be a seawall.Policy or seawall.config.Router or "
            "None, got str 'x'"
        ),
    ),
    (
        lambda: seawall.aiohttp.session("x"),
        TypeError,
        (
            "seawall.aiohttp.session: policy must be a seawall.Policy or seawall.config.Router or "
            "None, got str 'x'"
        ),
    ),
    (
        lambda: seawall.aiohttp.session(read_body=None),
        TypeError,
        "seawall.aiohttp.session: read_body must be True or False, got None",
    ),
    # -- Router ------------------------------------------------------------------------------
    (
        lambda: Router("x"),
        TypeError,
        "Router: config must be a seawall.config.Config (from load or load_file), got str 'x'",
    ),
    (
        lambda: Router(load({}), telemetry="x"),
        TypeError,
        (
            "Router: telemetry must be True, False, None or a seawall.telemetry.otel.Telemetry, got "
            "str 'x'"
        ),
    ),
    (
        lambda: router_from(5),
        TypeError,
        (
            "seawall.instrument: config must be a path, a dict, a seawall.config.Config or Router, or "
            "None, got int 5"
        ),
    ),
]


def _id(row):
    message = row[2]
    return message.split(" must ")[0] + " <- " + message.rsplit(", got ", 1)[-1][:30]


@pytest.mark.parametrize("make, error, message", BAD, ids=[_id(row) for row in BAD])
def test_a_bad_argument_is_named_with_what_was_expected(make, error, message):
    with pytest.raises((TypeError, ValueError)) as info:
        make()
    assert type(info.value) is error
    assert str(info.value).startswith(message)


def test_types_are_checked_before_values():
    # max_concurrent=0 is a bad value and comes first; queue_timeout="x" is the wrong type
    with pytest.raises(TypeError, match="queue_timeout must be a number of seconds"):
        Bulkhead(max_concurrent=0, queue_timeout="x")


DATACLASSES = [Backoff, Bulkhead, CircuitBreaker, Pool, Retry, RetryBudget, Timeouts]


@pytest.mark.parametrize("cls", DATACLASSES, ids=lambda cls: cls.__name__)
def test_every_field_has_one_rule(cls):
    """The rules are the one table of what each field takes (the config reads it too)."""
    assert list(cls.RULES) == [field.name for field in dataclasses.fields(cls)]


@pytest.mark.parametrize(
    "owner",
    [Policy, Telemetry, ResilientTransport, AsyncResilientTransport, ResilientAdapter, Router],
    ids=lambda owner: owner.__name__,
)
def test_every_named_argument_has_one_rule(owner):
    named = [
        name
        for name, parameter in inspect.signature(owner).parameters.items()
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    assert list(owner.RULES) == named


def test_good_arguments_are_kept_in_their_canonical_form():
    retry = Retry(statuses=[503, 429], methods=["get", "Put"], errors=[ErrorKind.CONNECT])
    assert retry.statuses == frozenset({429, 503})
    assert retry.methods == frozenset({"GET", "PUT"})
    assert retry.errors == frozenset({ErrorKind.CONNECT})
    assert CircuitBreaker(failure_statuses=range(500, 505)).failure_statuses == frozenset(
        range(500, 505)
    )
    # query keys as redaction compares them: the given list and the added names, lower case
    assert Telemetry(
        redact_query=["Tenant-Key"], sensitive_query_keys=["sig"]
    )._redact == frozenset({"tenant-key", "sig"})
    assert CircuitBreaker(window=10.0, window_type="count").window == 10.0  # a whole float


def test_a_count_window_from_the_config_file_is_accepted():
    # YAML durations are floats: `window: 10` reaches the breaker as 10.0
    config = load({"defaults": {"breaker": {"window": 10, "window_type": "count"}}})
    assert config.defaults.breaker is not None
    assert (config.defaults.breaker.window, config.defaults.breaker.min_calls) == (10.0, 10)
