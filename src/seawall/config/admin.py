"""The `admin:` section of the configuration: the admin surface with no code (see
docs/operations.md), started by `seawall.instrument()` / `opentelemetry-instrument`.

    admin:
      listen: 127.0.0.1:9901                        # the standalone server; default shown
      read_token_env: SEAWALL_ADMIN_READ_TOKEN      # where the tokens are (never in the file)
      control_token_env: SEAWALL_ADMIN_CONTROL_TOKEN
      routes: [health, status, breakers, bulkheads, controls, events, page, dead-letters]
      max_event_clients: 5
      service: checkout                              # default: $OTEL_SERVICE_NAME
      health: {critical: [payments], critical_share: 0.5, rejecting_within: 10s}
    dependencies:
      payments: {critical: true, match: ...}         # the same as listing it in health.critical

Problems are reported with the rest of the file's (`ConfigError`), each with its key path.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..admin.core import ROUTES
from ..admin.rollup import HealthRules
from .errors import show as _show

if TYPE_CHECKING:
    from ..admin.fronts import AdminServer

logger = logging.getLogger("seawall")

_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\s]+)):(?P<port>\d{1,5})$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEYS = (
    "listen",
    "read_token_env",
    "control_token_env",
    "routes",
    "max_event_clients",
    "service",
    "health",
)


@dataclass(frozen=True)
class AdminSettings:
    host: str = "127.0.0.1"
    port: int = 9901
    read_token_env: str | None = "SEAWALL_ADMIN_READ_TOKEN"
    control_token_env: str | None = "SEAWALL_ADMIN_CONTROL_TOKEN"
    routes: frozenset[str] = ROUTES
    max_event_clients: int = 5
    service: str | None = None
    health: HealthRules = field(default_factory=HealthRules)


def critical(dependencies: Mapping[str, Any], problems: list[str]) -> frozenset[str]:
    """The dependencies marked `critical: true`: their breaker open makes the health critical."""
    marked = set()
    for name, raw in dependencies.items():
        if not isinstance(raw, Mapping) or "critical" not in raw:
            continue
        if not isinstance(raw["critical"], bool):
            problems.append(
                f"dependencies.{name}.critical: {_show(raw['critical'])}; expected true or false"
            )
        elif raw["critical"]:
            marked.add(str(name))
    return frozenset(marked)


def parse(
    raw: Any, problems: list[str], critical: frozenset[str] = frozenset()
) -> AdminSettings | None:
    """The settings of an `admin:` section (None when there is none, or it is `false`);
    `critical`: the dependencies marked so, joined to `admin.health.critical`."""
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(
            f"admin: {_show(raw)}; expected a mapping (listen, read_token_env, ...) or true"
        )
        return None
    start = len(problems)
    for key in raw:
        if key not in KEYS:
            problems.append(f"admin.{key}: unknown key; expected {', '.join(KEYS)}")
    settings: dict[str, Any] = {}
    if "listen" in raw:
        found = _LISTEN.match(str(raw["listen"])) if isinstance(raw["listen"], str) else None
        if found is None or int(found["port"]) > 65535:
            problems.append(
                f"admin.listen: {_show(raw['listen'])}; expected host:port, e.g. "
                "127.0.0.1:9901 or [::1]:9901 (port 0: any free one)"
            )
        else:
            settings["host"] = found["v6"] or found["host"]
            settings["port"] = int(found["port"])
    for key in ("read_token_env", "control_token_env"):
        if key in raw:
            value = raw[key]
            if value is not None and not (isinstance(value, str) and _ENV_NAME.match(value)):
                problems.append(
                    f"admin.{key}: {_show(value)}; expected the name of an "
                    "environment variable (the token itself never goes in the file)"
                )
            else:
                settings[key] = value
    if "routes" in raw:
        routes = raw["routes"]
        if (
            not isinstance(routes, list)
            or not all(isinstance(r, str) for r in routes)
            or set(routes) - ROUTES
        ):
            problems.append(
                f"admin.routes: {_show(routes)}; expected a list of some of "
                f"{', '.join(sorted(ROUTES))}"
            )
        else:
            settings["routes"] = frozenset(routes)
    if "max_event_clients" in raw:
        value = raw["max_event_clients"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(
                f"admin.max_event_clients: {_show(value)}; expected a whole number >= 0"
            )
        else:
            settings["max_event_clients"] = value
    if "service" in raw:
        if not isinstance(raw["service"], str) or not raw["service"]:
            problems.append(f"admin.service: {_show(raw['service'])}; expected a name")
        else:
            settings["service"] = raw["service"]
    rules = _health(raw["health"], problems) if "health" in raw else HealthRules()
    if rules is not None:
        settings["health"] = dataclasses.replace(rules, critical=rules.critical | critical)
    return AdminSettings(**settings) if len(problems) == start else None


def _health(raw: Any, problems: list[str]) -> HealthRules | None:
    from .load import parse_duration

    if not isinstance(raw, Mapping):
        problems.append(
            f"admin.health: {_show(raw)}; expected a mapping (critical, "
            "critical_share, rejecting_within)"
        )
        return None
    start = len(problems)
    args: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "critical":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(
                    f"admin.health.critical: {_show(value)}; expected a list of dependency names"
                )
            else:
                args["critical"] = frozenset(value)
        elif key == "critical_share":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                problems.append(
                    f"admin.health.critical_share: {_show(value)}; expected a "
                    "number from 0 to below 1"
                )
            else:
                args["critical_share"] = float(value)
        elif key == "rejecting_within":
            try:
                seconds = parse_duration(value)
            except ValueError:
                seconds = 0.0
            if seconds <= 0:
                problems.append(
                    f"admin.health.rejecting_within: {_show(value)}; expected a "
                    "duration > 0, like 10s"
                )
            else:
                args["rejecting_within"] = seconds
        else:
            problems.append(
                f"admin.health.{key}: unknown key; expected critical, "
                "critical_share, rejecting_within"
            )
    return HealthRules(**args) if len(problems) == start else None


def start(
    settings: AdminSettings,
    environ: Mapping[str, str] | None = None,
    *,
    dead_letters: Sequence[Any] = (),
) -> AdminServer | None:
    """Start the standalone admin server the settings describe, showing every live policy
    and the configuration's dead letters (when it keeps them in one store: with several, the
    first, and a warning naming the others, which `seawall dlq` reads); None (and a warning)
    when it cannot bind: the application runs on without it (in a pre-fork server only one
    worker gets a fixed port)."""
    from ..admin.fronts import serve

    if len(dead_letters) > 1:
        logger.warning(
            "seawall admin server serves the dead letters of %r only; read the others with "
            "seawall dlq: %s",
            dead_letters[0].store,
            ", ".join(repr(x.store) for x in dead_letters[1:]),
        )
    environ = os.environ if environ is None else environ
    read = environ.get(settings.read_token_env) if settings.read_token_env else None
    control = environ.get(settings.control_token_env) if settings.control_token_env else None
    try:
        server = serve(
            settings.host,
            settings.port,
            read_token=read or None,
            control_token=control or None,
            routes=settings.routes,
            max_event_clients=settings.max_event_clients,
            service=settings.service,
            health_rules=settings.health,
            dead_letters=dead_letters[0] if dead_letters else None,
        )
    except (OSError, ValueError) as error:
        logger.warning(
            "seawall admin server not started on %s:%s: %s", settings.host, settings.port, error
        )
        return None
    if not (read or control):
        logger.warning(
            "seawall admin server on %s answers /health only: neither $%s nor $%s holds a token",
            server.url,
            settings.read_token_env,
            settings.control_token_env,
        )
    else:
        logger.info("seawall admin server on %s", server.url)
    return server
