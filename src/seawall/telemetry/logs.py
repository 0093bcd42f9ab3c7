"""The `seawall` logger: what resilience did, at levels a production service can leave on.

Every record carries structured `extra` fields named `seawall.*` (dependency, attempt, delay,
reason...), never a URL, a header or a body. Per-request events go to DEBUG (retries,
rejections) and INFO (a request that stopped retrying); a breaker opening is a WARNING, its
recovery INFO. The metrics count the per-request events; the logs tell the story.
"""

from __future__ import annotations

import logging

from .. import events as ev

logger = logging.getLogger("seawall")

#: The only events the logger listens to: none of them happens on a request that succeeds at
#: once, so logging costs nothing on the happy path.
LOGGED = (
    ev.RetryScheduled,
    ev.RetryStopped,
    ev.CircuitRejected,
    ev.CircuitTransition,
    ev.BulkheadRejected,
    ev.ManualChange,
    ev.HealthChanged,
)


def log_event(event: ev.Event) -> None:
    if isinstance(event, ev.RetryScheduled):
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "retrying %s after attempt %d failed (%s) in %.3f s",
                event.dependency,
                event.attempt,
                event.reason,
                event.delay,
                extra={
                    "seawall.dependency": event.dependency,
                    "seawall.attempt": event.attempt,
                    "seawall.delay": event.delay,
                    "seawall.reason": event.reason,
                    "seawall.retry_after": event.retry_after,
                },
            )
    elif isinstance(event, ev.RetryStopped):
        logger.info(
            "not retrying %s after attempt %d: %s",
            event.dependency,
            event.attempt,
            event.why,
            extra={
                "seawall.dependency": event.dependency,
                "seawall.attempt": event.attempt,
                "seawall.reason": event.why,
            },
        )
    elif isinstance(event, ev.CircuitTransition):
        level = logging.WARNING if event.to_state.value == "open" else logging.INFO
        logger.log(
            level,
            "circuit breaker %s of %s: %s -> %s",
            event.key,
            event.dependency,
            event.from_state.value,
            event.to_state.value,
            extra={
                "seawall.dependency": event.dependency,
                "seawall.breaker.key": event.key,
                "seawall.breaker.from": event.from_state.value,
                "seawall.breaker.to": event.to_state.value,
            },
        )
    elif isinstance(event, ev.CircuitRejected):
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "circuit breaker %s of %s rejected a request (%s)",
                event.key,
                event.dependency,
                event.reason,
                extra={
                    "seawall.dependency": event.dependency,
                    "seawall.breaker.key": event.key,
                    "seawall.breaker.reason": event.reason,
                    "seawall.retry_in": event.retry_in,
                },
            )
    elif isinstance(event, ev.ManualChange):
        target = f"{event.part} {event.key}" if event.key else event.part
        logger.warning(
            "manual %s%s of %s of %s by %s: %s",
            event.action,
            " (fleet-wide)" if event.scope == "fleet" else "",
            target,
            event.dependency,
            event.by or "?",
            event.reason or "(no reason given)",
            extra={
                "seawall.manual.scope": event.scope,
                "seawall.dependency": event.dependency,
                "seawall.manual.part": event.part,
                "seawall.breaker.key": event.key,
                "seawall.manual.action": event.action,
                "seawall.manual.by": event.by,
                "seawall.reason": event.reason,
            },
        )
    elif isinstance(event, ev.HealthChanged):
        logger.log(
            logging.INFO if event.healthy else logging.WARNING,
            "%s is %s (%s: %s)",
            event.dependency,
            "healthy" if event.healthy else "unhealthy",
            event.source,
            event.reason,
            extra={
                "seawall.dependency": event.dependency,
                "seawall.health.source": event.source,
                "seawall.reason": event.reason,
            },
        )
    elif isinstance(event, ev.BulkheadRejected):
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "bulkhead of %s full: request rejected (%s)",
                event.dependency,
                event.reason,
                extra={
                    "seawall.dependency": event.dependency,
                    "seawall.reason": event.reason,
                    "seawall.waited": event.waited,
                },
            )
