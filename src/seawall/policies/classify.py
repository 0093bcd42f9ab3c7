"""What is transient, what counts against a dependency, and which requests may be sent again."""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """A client error, translated by an adapter into the neutral kinds the policies reason about."""

    CONNECT = "connect"  # refused, unreachable, DNS: the request never reached the upstream
    CONNECT_TIMEOUT = "connect_timeout"  # no connection in time: never reached the upstream
    POOL_TIMEOUT = "pool_timeout"  # no free connection in our own pool: never sent
    WRITE_TIMEOUT = "write_timeout"
    READ_TIMEOUT = "read_timeout"
    RESET = "reset"  # the connection broke mid-exchange
    PROTOCOL = "protocol"  # closed without a response, or a truncated body
    #: A protected call (`seawall.protect`) raised one of its `retry_on` errors: transient.
    CALL_TRANSIENT = "call_transient"
    #: A protected call raised one of its `failure_on` errors: the dependency's fault, but
    #: not worth another attempt.
    CALL_FAILURE = "call_failure"


#: Failures that happened before a byte of the request reached the upstream: re-sending cannot
#: repeat a side effect, so they are retried whatever the method (as urllib3 does).
UNSENT = frozenset({ErrorKind.CONNECT, ErrorKind.CONNECT_TIMEOUT, ErrorKind.POOL_TIMEOUT})

TIMEOUTS = frozenset(
    {
        ErrorKind.CONNECT_TIMEOUT,
        ErrorKind.POOL_TIMEOUT,
        ErrorKind.WRITE_TIMEOUT,
        ErrorKind.READ_TIMEOUT,
    }
)

#: Retried by default. A pool timeout is our own congestion, not the upstream's: waiting again
#: for the same pool only adds load, so it is not retried unless asked for; a call failure is
#: by definition not transient.
TRANSIENT = frozenset(ErrorKind) - {ErrorKind.POOL_TIMEOUT, ErrorKind.CALL_FAILURE}

#: Recorded as failures by the circuit breaker: everything the upstream can be blamed for.
BREAKER_FAILURES = frozenset(ErrorKind) - {ErrorKind.POOL_TIMEOUT}

#: RFC 9110 section 9.2.2 (idempotent) methods.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

#: Statuses worth another attempt: timeouts, throttling and the gateway/unavailable family.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

#: Statuses the breaker records as failures: the server's errors plus timeouts and throttling
#: (the set Polly's standard handler uses). Other 4xx are the caller's fault, not the upstream's.
FAILURE_STATUSES = frozenset({408, 429, *range(500, 600)})

IDEMPOTENCY_KEY = "idempotency-key"


def kind_of(
    error: BaseException, table: tuple[tuple[type[BaseException], ErrorKind | None], ...]
) -> ErrorKind | None:
    """The kind of the first (most specific) class in `table` that `error` is an instance of."""
    for cls, kind in table:
        if isinstance(error, cls):
            return kind
    return None
