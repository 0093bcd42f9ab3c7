"""Being told when an OpenTelemetry SDK is set up as a global provider, at no cost per request.

The API sets each global provider once, through a `Once` it keeps at module level
(`opentelemetry.trace._TRACER_PROVIDER_SET_ONCE` and
`opentelemetry.metrics._internal._METER_PROVIDER_SET_ONCE`): `set_tracer_provider`,
`set_meter_provider` and the providers named by `OTEL_PYTHON_TRACER_PROVIDER` /
`OTEL_PYTHON_METER_PROVIDER` all go through it, and the API looks it up at each call, so code
that imported `set_tracer_provider` by name before seawall goes through it too. `listen` wraps
each in an `_Announcing`, which does what the `Once` does and then calls every listener.

Both are private to the API (the same since 1.0): where either is missing or is not a `Once`,
`listen` says so and telemetry falls back to looking at the providers once per request.
"""

from __future__ import annotations

import importlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger("seawall")

#: (module, attribute) of the `Once` that guards each global provider
GUARDS = (
    ("opentelemetry.trace", "_TRACER_PROVIDER_SET_ONCE"),
    ("opentelemetry.metrics._internal", "_METER_PROVIDER_SET_ONCE"),
)


class Listener(Protocol):
    def providers_set(self) -> None: ...


_listeners: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()


class _Announcing:
    """Stands in for one of the API's `Once` objects: the same `do_once`, and when it did set
    a provider, every listener is told (after the provider is in place)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def do_once(self, func: Callable[[], None]) -> bool:
        done: bool = self.inner.do_once(func)
        if done:
            _announce()
        return done

    def __getattr__(self, name: str) -> Any:  # `_done`, `_lock`: what else may read them
        return getattr(self.inner, name)


def _announce() -> None:
    for listener in list(_listeners):
        try:
            listener.providers_set()
        except Exception:  # the caller's set_tracer_provider must not fail because of seawall
            logger.exception("seawall telemetry could not start on the new OpenTelemetry provider")


def listen(listener: Listener) -> bool:
    """Call `listener.providers_set()` (held weakly) whenever a global provider is set from
    now on; False when this API keeps its providers some other way (then nothing is hooked)."""
    with _lock:
        guards = []
        for module_name, attribute in GUARDS:
            module = importlib.import_module(module_name)
            guard = getattr(module, attribute, None)
            if not isinstance(guard, _Announcing) and not callable(getattr(guard, "do_once", None)):
                return False
            guards.append((module, attribute, guard))
        for module, attribute, guard in guards:  # (again after a test harness reset one)
            if not isinstance(guard, _Announcing):
                setattr(module, attribute, _Announcing(guard))
        _listeners.add(listener)
        return True


def forget(listener: Listener) -> None:
    _listeners.discard(listener)
