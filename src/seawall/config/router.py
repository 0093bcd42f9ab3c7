"""The router: each request gets the policy of the first dependency it matches.

A `Router` stands where a `Policy` stands (adapters take either): it picks, per request, the
named dependency's policy by host glob, path prefix and method, in the order of the file, or
the defaults' policy, which names unmatched dependencies after scheme://host:port (at most
`max_dependencies` of them; the rest share "_other").
"""

from __future__ import annotations

import atexit
import dataclasses
import fnmatch
import os
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..deadletters import DeadLetters
from ..exchange import AsyncExchange, Exchange, R, Target
from ..pipeline import Policy
from ..policies import _validate
from ..policies.pool import Pool
from ..state import LOCAL, Store
from ..telemetry.redact import redact_url
from .load import Config, PolicyParts, load, load_file
from .schema import Arguments


@dataclass(frozen=True)
class Match:
    hosts: tuple[str, ...] = ()
    path: str | None = None
    methods: frozenset[str] | None = None

    def matches(self, target: Target) -> bool:
        if self.methods is not None and target.method not in self.methods:
            return False
        if self.path is not None and not target.path.startswith(self.path):
            return False
        if self.hosts:
            host = target.host.lower()
            with_port = f"{host}:{target.port}"
            return any(
                fnmatch.fnmatchcase(host, glob) or fnmatch.fnmatchcase(with_port, glob)
                for glob in self.hosts
            )
        return True


class Router:
    """Policies per named dependency, chosen per request (see the module docstring)."""

    RULES: ClassVar[_validate.Rules] = {
        "config": _validate.Instance(Config, "a seawall.config.Config (from load or load_file)"),
        "telemetry": _validate.TELEMETRY,
        "dead_letters": _validate.FLAG,
    }

    def __init__(self, config: Config, *, telemetry: Any = True, dead_letters: bool = True) -> None:
        _validate.arguments(
            "Router",
            self.RULES,
            {"config": config, "telemetry": telemetry, "dead_letters": dead_letters},
        )
        self.config = config
        #: The `fleet:` section's store, shared by every policy (started here), or LOCAL.
        self.store: Store = LOCAL if config.fleet is None else config.fleet
        #: One DeadLetters per distinct `dead_letters:` settings (dependencies that share a
        #: store share its one writer); none built with `dead_letters=False` (check-config,
        #: and `seawall dlq`, which opens the store itself).
        self.dead_letters: list[DeadLetters] = []
        self._parts = {d.name: d.parts for d in config.dependencies}
        built: dict[Arguments, DeadLetters] = {}

        def letters(parts: PolicyParts) -> DeadLetters | None:
            wanted = parts.dead_letters
            if wanted is None or not dead_letters:
                return None
            if wanted not in built:
                # the Router's telemetry off: theirs too (on: the global meter provider)
                built[wanted] = found = wanted.build(telemetry=telemetry not in (False, None))
                self.dead_letters.append(found)
                atexit.register(found.close)  # what is queued is stored before the exit
            return built[wanted]

        self.default = Policy(
            None,
            telemetry=telemetry,
            max_dependencies=config.max_dependencies,
            store=self.store,
            dead_letters=letters(config.defaults),
            **config.defaults.kwargs(),
        )
        self.routes = [
            (
                Match(tuple(d.match.get("host", ())), d.match.get("path"), d.match.get("methods")),
                Policy(
                    d.name,
                    telemetry=telemetry,
                    store=self.store,
                    dead_letters=letters(d.parts),
                    **d.parts.kwargs(),
                ),
            )
            for d in config.dependencies
            if d.match
        ]
        #: The dependencies without `match`: no HTTP request goes to them, only protected
        #: calls (`seawall.protect("name")`) do.
        self.calls = {
            d.name: Policy(d.name, telemetry=telemetry, store=self.store, **d.parts.kwargs())
            for d in config.dependencies
            if not d.match
        }
        if config.fleet is not None:
            config.fleet.start()

    # -- what the adapters use of a policy -------------------------------------------------
    @property
    def pool(self) -> Pool:
        return self.default.pool

    @property
    def telemetry(self) -> Any:
        return self.default.telemetry

    def track_pool(self, pool: Any) -> None:
        self.default.track_pool(pool, self.pool_dependency)

    def pool_dependency(self, origin: str) -> str:
        """The dependency of the connections to `origin`: the first route whose host globs
        match it (a connection has no path or method: routes that match only by those share
        the pool of their host), or the defaults' name for it."""
        scheme, _, host_port = origin.partition("://")
        host, _, port = host_port.rpartition(":")
        target = Target("", scheme, host, int(port) if port.isdigit() else 0, "")
        for match, policy in self.routes:
            if match.hosts and Match(match.hosts).matches(target) and policy.name is not None:
                return policy.name
        return self.default.pool_dependency(origin)

    def policy_for(self, target: Target) -> Policy:
        for match, policy in self.routes:
            if match.matches(target):
                return policy
        return self.default

    def run(self, exchange: Exchange[R]) -> R:
        return self.policy_for(exchange.target()).run(exchange)

    def run_async(self, exchange: AsyncExchange[R]) -> Awaitable[R]:
        return self.policy_for(exchange.target()).run_async(exchange)

    def policies(self) -> list[Policy]:
        return [self.default, *(policy for _, policy in self.routes), *self.calls.values()]

    def named(self, dependency: str) -> Policy | None:
        """The policy of the dependency named `dependency`, if the configuration has one."""
        found = self.calls.get(dependency)
        if found is not None:
            return found
        return next((policy for _, policy in self.routes if policy.name == dependency), None)

    def describe(self) -> str:
        """The effective policy of every dependency, for `seawall check-config`."""
        lines = []
        calls_only: list[tuple[Match | None, Policy]] = [
            (Match(), policy) for policy in self.calls.values()
        ]
        for match, policy in [(None, self.default), *self.routes, *calls_only]:
            if match is None:
                title = "defaults (unmatched hosts, one dependency per scheme://host:port)"
            elif policy.name in self.calls:
                title = f"{policy.name}: protected calls only (no match)"
            else:
                title = f"{policy.name}: {_describe_match(match)}"
            lines.append(title)
            for part in ("retry", "timeouts", "breaker", "bulkhead", "pool", "health"):
                value = getattr(policy, part)
                lines.append(f"  {part:9s} {_describe(value)}")
            parts = self.config.defaults if match is None else self._parts[str(policy.name)]
            lines.append(f"  dead_letters {_describe_letters(parts.dead_letters)}")
        fleet = self.config.fleet
        if fleet is not None:
            lines.append(
                f"fleet: every policy above shares breaker state through Redis at "
                f"{redact_url(fleet.url)} (namespace {fleet.namespace}, flush every "
                f"{fleet.interval:g} s, window {fleet.window:g} s, min_reporters "
                f"{fleet.min_reporters})"
            )
        return "\n".join(lines)


def _describe_letters(wanted: Arguments | None) -> str:
    if wanted is None:
        return "off"
    shown = []
    for name, value in sorted(wanted.items):
        if name == "store":
            value = _redacted_store(str(value))
        elif isinstance(value, frozenset):
            value = ",".join(sorted(map(str, value)))
        shown.append(f"{name}={value}")
    return " ".join(shown)


def _redacted_store(store: str) -> str:
    """A store URL without its password (user-info dropped, as the telemetry redacts URLs)."""
    return redact_url(store, frozenset({"password"})) if "://" in store else store


def _describe_match(match: Match) -> str:
    parts = []
    if match.hosts:
        parts.append("host " + " or ".join(match.hosts))
    if match.path:
        parts.append(f"path {match.path}*")
    if match.methods:
        parts.append("methods " + ",".join(sorted(match.methods)))
    return ", ".join(parts) or "every request"


def _describe(value: Any) -> str:
    if value is None:
        return "off"
    # the fields only (a class's RULES table is a ClassVar, no field)
    fields = [f.name for f in dataclasses.fields(value)] if dataclasses.is_dataclass(value) else []
    shown = []
    for name in fields:
        item = getattr(value, name)
        if name in ("key", "predicate") and item is None:
            continue
        if isinstance(item, frozenset):
            item = (
                _ranges(item)
                if all(isinstance(x, int) for x in item)
                else ",".join(sorted(str(x.value if hasattr(x, "value") else x) for x in item))
            )
        elif dataclasses.is_dataclass(item):
            item = "(" + _describe(item) + ")"
        shown.append(f"{name}={item}")
    return " ".join(shown)


def _ranges(numbers: frozenset[int]) -> str:
    """408,429,500-599 rather than a hundred numbers."""
    runs: list[list[int]] = []
    for number in sorted(numbers):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def router_from(config: Any = None) -> Router:
    """A Router from a path, a dict, a loaded Config or a Router; by default the file named by
    `SEAWALL_CONFIG`, or seawall's defaults when there is none."""
    if isinstance(config, Router):
        return config
    if isinstance(config, Config):
        return Router(config)
    if isinstance(config, Mapping):
        return Router(load(config, source="<dict>"))
    if config is not None and not isinstance(config, (str, os.PathLike)):
        raise TypeError(
            f"seawall.instrument: config must be a path, a dict, a seawall.config."
            f"Config or Router, or None, got {type(config).__name__} "
            f"{_validate.show(config)}"
        )
    path = config if config is not None else os.environ.get("SEAWALL_CONFIG")
    if path:
        return Router(load_file(path))
    return Router(load({}, source="<defaults>"))
