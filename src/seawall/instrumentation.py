"""Auto-instrumentation: every httpx, requests and aiohttp client created after start-up gets
seawall, with no change to the code that builds or calls it.

    SEAWALL_CONFIG=seawall.yaml opentelemetry-instrument python app.py
    # or, from code, before the clients are built:
    seawall.instrument(config="seawall.yaml")

What is patched (with wrapt; `uninstrument()` takes every patch back):
- `httpx.Client` / `httpx.AsyncClient`: the client's transports (its own, one the user passed,
  and mounted ones) are wrapped in seawall's transports, not replaced; a client already using
  seawall is left alone. The official httpx instrumentation stays quiet for seawall's attempts.
- `requests.Session`: its default adapters become `ResilientAdapter`s, an adapter mounted later
  is wrapped; while seawall reports the spans, the official requests instrumentation is
  silenced for the session's requests (seawall reports one span per attempt itself).
- `aiohttp.ClientSession`: seawall's middleware goes first (outermost), before any the user
  passed; a session already carrying it is left alone.

`SEAWALL_DISABLED=true` (or `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=seawall` under
`opentelemetry-instrument`) turns it all off.

A configuration that cannot be used stops the process at start-up with one message and exit
status 1: running without the resilience the file asks for is the failure nobody notices.
`SEAWALL_ON_CONFIG_ERROR=continue` opts into running without seawall instead (one warning).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Collection
from types import FrameType
from typing import Any, NoReturn

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap

from . import registry
from .admin.fronts import AdminServer
from .config import ConfigError, Router
from .config import admin as admin_section
from .config.router import router_from

_TRUE = ("1", "true", "yes", "on")
_logger = logging.getLogger("seawall")


class SeawallInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """The `opentelemetry_instrumentor` entry point named `seawall`. `instrument(config=...)`
    takes what `router_from` takes."""

    _patches: list[tuple[Any, str]] = []
    #: The admin server the config's `admin:` section started, if any.
    admin_server: AdminServer | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        # Any one of the clients is enough: the distribution's `instruments-any` extra tells
        # opentelemetry-instrument so; each client missing here is simply not patched.
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        if os.environ.get("SEAWALL_DISABLED", "").strip().lower() in _TRUE:
            return
        try:
            router = router_from(kwargs.get("config"))
        except ConfigError as error:
            if os.environ.get("SEAWALL_ON_CONFIG_ERROR", "").strip().lower() == "continue":
                _logger.warning(
                    "seawall is NOT applied (SEAWALL_ON_CONFIG_ERROR=continue): %s",
                    " ".join(str(error).split()),
                )
                return  # other instrumentations go on
            _stop(error, at_start_up=kwargs.get("at_start_up", False))
        self.router = router
        registry.install(router)  # what seawall.protect("name") resolves its dependencies in
        patches: list[tuple[Any, str]] = []
        for patch in (_patch_httpx, _patch_requests, _patch_aiohttp):
            patches += patch(router)
        type(self)._patches = patches
        if router.config.admin is not None:  # the config's `admin:` section
            type(self).admin_server = admin_section.start(
                router.config.admin, dead_letters=router.dead_letters
            )

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner, name in type(self)._patches:
            unwrap(owner, name)
        type(self)._patches = []
        registry.install(None)
        server, type(self).admin_server = type(self).admin_server, None
        if server is not None:
            server.close()


def _stop(error: ConfigError, *, at_start_up: bool) -> NoReturn:
    """End the process with one message (the file, every problem, the way out)."""
    message = (
        f"seawall: not started, the program is stopped: {error}\n"
        f"Fix the configuration (`seawall check-config {error.source}` checks it), or set "
        f"SEAWALL_DISABLED=true to run without seawall."
    )
    if at_start_up or _in_auto_instrumentation():
        # opentelemetry-instrument and `seawall run` run us from sitecustomize, where an
        # exception becomes logged tracebacks and the program runs anyway, and SystemExit a
        # fatal-error dump.
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        os._exit(1)
    raise SystemExit(message)


def _in_auto_instrumentation() -> bool:
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(
            "opentelemetry.instrumentation.auto_instrumentation"
        ):
            return True
        frame = frame.f_back
    return False


def _patch_httpx(router: Router) -> list[tuple[Any, str]]:
    try:
        import httpx
    except ImportError:
        return []
    from .httpx import AsyncResilientTransport, ResilientTransport

    def wrap(client: Any, kind: type) -> None:
        def resilient(transport: Any) -> Any:
            if transport is None or isinstance(transport, kind):
                return transport
            return kind(router, transport=transport)

        client._transport = resilient(client._transport)
        client._mounts = {
            pattern: resilient(transport) for pattern, transport in client._mounts.items()
        }

    def sync_init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        wrap(instance, ResilientTransport)

    def async_init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        wrap(instance, AsyncResilientTransport)

    wrapt.wrap_function_wrapper(httpx.Client, "__init__", sync_init)
    wrapt.wrap_function_wrapper(httpx.AsyncClient, "__init__", async_init)
    return [(httpx.Client, "__init__"), (httpx.AsyncClient, "__init__")]


def _patch_requests(router: Router) -> list[tuple[Any, str]]:
    try:
        import requests
    except ImportError:
        return []
    from .requests import ResilientAdapter, ResilientSession, quiet_send

    def init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        for prefix, adapter in list(instance.adapters.items()):
            if not isinstance(adapter, ResilientAdapter):
                # the defaults requests just built: seawall's adapter has the bounded pool
                instance.adapters[prefix] = ResilientAdapter(router)
        if router.telemetry is not None and not isinstance(instance, ResilientSession):
            # silence the official requests instrumentation for this session's requests
            instance.send = functools.partial(quiet_send, instance)

    def mount(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> None:
        prefix, adapter = _mount_args(*args, **kwargs)
        if not isinstance(adapter, ResilientAdapter):
            adapter = ResilientAdapter(router, adapter=adapter)  # wrapped, not replaced
        wrapped(prefix, adapter)

    wrapt.wrap_function_wrapper(requests.Session, "__init__", init)
    wrapt.wrap_function_wrapper(requests.Session, "mount", mount)
    return [(requests.Session, "__init__"), (requests.Session, "mount")]


def _mount_args(prefix: str, adapter: Any) -> tuple[str, Any]:
    return prefix, adapter


def _patch_aiohttp(router: Router) -> list[tuple[Any, str]]:
    try:
        import aiohttp
    except ImportError:
        return []
    from .aiohttp import _take_over, middleware

    def init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> None:
        given = tuple(kwargs.get("middlewares") or ())
        ours = any(getattr(m, "__name__", "") == "seawall_middleware" for m in given)
        if not ours:
            kwargs["middlewares"] = (middleware(router), *given)  # outermost
        wrapped(*args, **kwargs)
        if not ours:
            _take_over(instance, router)

    wrapt.wrap_function_wrapper(aiohttp.ClientSession, "__init__", init)
    return [(aiohttp.ClientSession, "__init__")]


def instrument(config: Any = None) -> SeawallInstrumentor:
    """Make every client created from now on resilient and observable (see the module
    docstring); `config` is a path, a dict, a Config or a Router (default: $SEAWALL_CONFIG)."""
    instrumentor = SeawallInstrumentor()
    instrumentor.instrument(config=config)
    return instrumentor
