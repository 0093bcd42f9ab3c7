"""Keeping the official OpenTelemetry HTTP instrumentations from doubling seawall's spans.

seawall reports one CLIENT span per attempt itself; where a client would let an official
instrumentation wrap the whole logical request in one more CLIENT span, its adapter calls one
of these hooks. Each is a no-op without opentelemetry-api, and needs no SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def quietly(send: Callable[[], T]) -> T:
    """`send()` with HTTP instrumentation suppressed in the OpenTelemetry context: the flag the
    official instrumentations (requests' patched `Session.send` among them) check first."""
    try:
        from opentelemetry import context
    except ImportError:
        return send()
    token = context.attach(context.set_value(context._SUPPRESS_HTTP_INSTRUMENTATION_KEY, True))
    try:
        return send()
    finally:
        context.detach(token)


def without_official(trace_configs: Iterable[T]) -> list[T]:
    """aiohttp trace configs, less the one the official aiohttp-client instrumentation adds
    to every session."""
    return [
        config
        for config in trace_configs
        if not hasattr(config, "_is_instrumented_by_opentelemetry")
    ]
