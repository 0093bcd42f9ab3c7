"""Reading, substituting and validating a seawall configuration.

Every problem is reported at once, each naming the file, the key path, the bad value and what
was expected; nothing from YAML's internals reaches the user.

    defaults:
      retry: {max_attempts: 3, backoff: {kind: exponential, base: 0.2, cap: 10, jitter: full}}
      timeouts: {attempt: 10s, total: 30s}
      breaker: {failure_rate: 0.5, window: 30s, min_calls: 20, open_for: 5s}
      bulkhead: {max_concurrent: 100, max_queued: 0}
      pool: {max_connections: 100, max_keepalive: 20, keepalive_expiry: 5s}
    dependencies:
      payments:
        match: {host: "api.payments.example"}
        retry: {max_attempts: 2}
        timeouts: {total: 15s}
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fleet.store import Fleet
from ..policies import _validate
from ..policies.breaker import CircuitBreaker
from ..policies.bulkhead import Bulkhead
from ..policies.health import HealthCheck
from ..policies.pool import Pool
from ..policies.retry import Retry
from ..policies.timeouts import DEFAULTS as DEFAULT_TIMEOUTS
from ..policies.timeouts import Timeouts
from . import admin as admin_section
from . import reader
from .errors import ConfigError
from .errors import show as _show
from .schema import FLEET, POLICY, Arguments, Bad, Key, Section, parse_duration, unknown_key

__all__ = [
    "Config",
    "ConfigError",
    "Dependency",
    "PolicyParts",
    "load",
    "load_file",
    "parse_duration",
]


# -- the result ----------------------------------------------------------------------------
@dataclass
class PolicyParts:
    """The keyword arguments of a `seawall.Policy` (None: that part switched off)."""

    retry: Retry | None = None
    timeouts: Timeouts | None = None
    breaker: CircuitBreaker | None = None
    bulkhead: Bulkhead | None = None
    pool: Pool = field(default_factory=Pool)
    health: HealthCheck | None = None
    #: The `dead_letters:` section's checked arguments (the Router builds the DeadLetters).
    dead_letters: Arguments | None = None

    def kwargs(self) -> dict[str, Any]:
        """The Policy arguments (all but `dead_letters`, which the Router builds)."""
        return {
            "retry": self.retry,
            "timeouts": self.timeouts,
            "breaker": self.breaker,
            "bulkhead": self.bulkhead,
            "pool": self.pool,
            "health": self.health,
        }


@dataclass
class Dependency:
    name: str
    match: dict[str, Any]
    parts: PolicyParts


@dataclass
class Config:
    source: str
    defaults: PolicyParts
    dependencies: list[Dependency]
    max_dependencies: int = 100
    admin: admin_section.AdminSettings | None = None  # the `admin:` section (config/admin.py)
    #: The `fleet:` section: a `seawall.Fleet`, not started (the Router starts it), or None.
    fleet: Fleet | None = None


# -- loading -------------------------------------------------------------------------------
TOP_LEVEL = ("defaults", "dependencies", "max_dependencies", "admin", "fleet")
MATCH_KEYS = ("host", "path", "methods")

#: Environment overrides of the common knobs, applied to `defaults`: variable -> section, key.
ENVIRONMENT = {
    "SEAWALL_RETRY_MAX_ATTEMPTS": ("retry", "max_attempts"),
    "SEAWALL_TIMEOUT_ATTEMPT": ("timeouts", "attempt"),
    "SEAWALL_TIMEOUT_TOTAL": ("timeouts", "total"),
    "SEAWALL_BREAKER_FAILURE_RATE": ("breaker", "failure_rate"),
    "SEAWALL_BREAKER_OPEN_FOR": ("breaker", "open_for"),
    "SEAWALL_BULKHEAD_MAX_CONCURRENT": ("bulkhead", "max_concurrent"),
    "SEAWALL_BULKHEAD_MAX_QUEUED": ("bulkhead", "max_queued"),
    "SEAWALL_POOL_MAX_CONNECTIONS": ("pool", "max_connections"),
}
#: Environment overrides of the `fleet:` section (SEAWALL_FLEET_REDIS alone turns it on).
FLEET_ENVIRONMENT = {"SEAWALL_FLEET_REDIS": "redis", "SEAWALL_FLEET_NAMESPACE": "namespace"}
#: The other SEAWALL_* variables seawall reads (a misspelling of any of these is a problem).
VARIABLES = (
    "SEAWALL_CONFIG",
    "SEAWALL_DISABLED",
    "SEAWALL_ON_CONFIG_ERROR",
    *ENVIRONMENT,
    *FLEET_ENVIRONMENT,
)


class Problems:
    """Every problem found, each naming its key path and, when a variable set the value there,
    that variable (`origins`: key path -> `$VAR` or `${VAR}` names)."""

    def __init__(self, origins: Mapping[str, list[str]] | None = None) -> None:
        self.found: list[str] = []
        self.origins: dict[str, list[str]] = dict(origins or {})

    def add(self, where: str, problem: str) -> None:
        named = self.origins.get(where)
        if named:
            where = f"{where} (set by {', '.join(named)})"
        else:
            inside = [
                f"{path[len(where) + 1 :]} set by {', '.join(names)}"
                for path, names in self.origins.items()
                if path.startswith(where + ".")
            ]
            if inside:
                where = f"{where} ({'; '.join(inside)})"
        self.found.append(f"{where}: {problem}")

    def inherit(self, defaults: str, where: str, own: Mapping[str, Any]) -> None:
        """A dependency's values taken from the defaults keep their variables."""
        for path, names in list(self.origins.items()):
            if path.startswith(defaults + "."):
                rest = path[len(defaults) + 1 :]
                if not _set_in(own, rest.split(".")):
                    self.origins.setdefault(f"{where}.{rest}", names)


def _set_in(raw: Mapping[str, Any], keys: list[str]) -> bool:
    value: Any = raw
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return False
        value = value[key]
    return True


def load_file(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read a YAML configuration file (variables substituted, `SEAWALL_*` overrides applied)."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(source, [f"cannot read the file: {error.strerror or error}"]) from None
    environ = os.environ if environ is None else environ
    document = reader.parse(data, source, environ)
    variables = {
        path: [f"${{{name}}}" for name in names] for path, names in document.variables.items()
    }
    return load(
        document.data if document.data is not None else {},
        source=source,
        environ=environ,
        origins=variables,
    )


def load(
    data: Any,
    *,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    origins: Mapping[str, list[str]] | None = None,
) -> Config:
    """Validate a configuration given as a dict; raises ConfigError listing every problem.
    `origins` (key path -> variables) lets a problem name the variable that set its value."""
    problems = Problems(origins)
    if not isinstance(data, Mapping):
        raise ConfigError(source, [f"the top level must be a mapping, got {_show(data)}"])
    for key in data:
        if key not in TOP_LEVEL:
            problems.add(str(key), unknown_key(key, TOP_LEVEL))
    environ = os.environ if environ is None else environ
    raw_defaults = _mapping(data.get("defaults", {}), "defaults", problems)
    raw_defaults = _apply_environment(raw_defaults, environ, problems)
    before = len(problems.found)
    defaults = _parts(raw_defaults, "defaults", problems)
    # A dependency inherits the defaults' values: their problems are said once, at defaults.
    inherited = {_relative(problem, "defaults") for problem in problems.found[before:]}
    dependencies: list[Dependency] = []
    raw_dependencies = _mapping(data.get("dependencies", {}), "dependencies", problems)
    for name, raw in raw_dependencies.items():
        where = f"dependencies.{name}"
        raw = _mapping(raw, where, problems)
        for key in raw:
            if key not in ("match", "critical") and key not in POLICY:
                problems.add(f"{where}.{key}", unknown_key(key, ["match", "critical", *POLICY]))
        match = _match(raw.get("match"), f"{where}.match", problems)
        merged = {
            key: _merge(raw_defaults.get(key), raw.get(key))
            for key in POLICY
            if key in raw or key in raw_defaults
        }
        problems.inherit("defaults", where, {k: v for k, v in raw.items() if k != "match"})
        own = Problems(problems.origins)
        dependencies.append(Dependency(str(name), match, _parts(merged, where, own)))
        problems.found += [
            problem for problem in own.found if _relative(problem, where) not in inherited
        ]
    _check_stores(defaults, dependencies, problems)
    max_dependencies = data.get("max_dependencies", 100)
    if (
        isinstance(max_dependencies, bool)
        or not isinstance(max_dependencies, int)
        or max_dependencies < 1
    ):
        problems.add(
            "max_dependencies", f"must be a whole number >= 1, got {_show(max_dependencies)}"
        )
        max_dependencies = 100
    admin = admin_section.parse(
        data.get("admin"), problems.found, admin_section.critical(raw_dependencies, problems.found)
    )
    fleet = _fleet(data.get("fleet"), environ, problems)
    if problems.found:
        raise ConfigError(source, problems.found)
    return Config(source, defaults, dependencies, max_dependencies, admin, fleet)


def _fleet(raw: Any, environ: Mapping[str, str], problems: Problems) -> Fleet | None:
    """The `fleet:` section (`fleet: redis://...` for short), with its environment overrides:
    a `seawall.Fleet`, not started. `false` turns it off whatever the environment says."""
    if raw is False:
        return None
    if isinstance(raw, str):
        raw = {"redis": raw}  # never shown back: a URL may hold a password
    given = {
        key: environ[variable]
        for variable, key in FLEET_ENVIRONMENT.items()
        if environ.get(variable, "")
    }
    if raw is None and "redis" not in given:
        return None
    if raw is not None and not isinstance(raw, Mapping):
        problems.add("fleet", f"must be a Redis URL or a mapping of {', '.join(FLEET.known())}")
        return None
    values = dict(raw or {})
    for variable, key in FLEET_ENVIRONMENT.items():
        if key in given:
            values[key] = given[key]
            problems.origins[f"fleet.{key}"] = [f"${variable}"]
    if "redis" not in values:
        problems.add("fleet.redis", "missing; expected a Redis URL (or $SEAWALL_FLEET_REDIS)")
        return None
    built = _build(FLEET, values, "fleet", problems, start=False)
    return built if isinstance(built, Fleet) else None


def _check_stores(
    defaults: PolicyParts, dependencies: list[Dependency], problems: Problems
) -> None:
    """Dependencies that keep dead letters in one store share its one writer (one DeadLetters):
    their `dead_letters` settings must be the same."""
    first: dict[str, tuple[str, Arguments]] = {}
    for where, parts in [
        ("defaults", defaults),
        *((f"dependencies.{d.name}", d.parts) for d in dependencies),
    ]:
        wanted = parts.dead_letters
        if wanted is None:
            continue
        store = str(wanted.get("store"))
        if store not in first:
            first[store] = (where, wanted)
        elif first[store][1] != wanted:
            problems.add(
                f"{where}.dead_letters",
                f"the same store as {first[store][0]}.dead_letters with other settings; "
                f"dependencies that share a store share its one writer: give them the same "
                f"dead_letters settings, or this one a store of its own",
            )


def _relative(problem: str, where: str) -> str:
    """A problem without its section's prefix (and without the variables named)."""
    path, _, message = problem.partition(": ")
    return path.split(" (", 1)[0].removeprefix(where) + ": " + message


def _apply_environment(
    defaults: dict[str, Any], environ: Mapping[str, str], problems: Problems
) -> dict[str, Any]:
    result = {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in defaults.items()
    }
    for variable in environ:
        if variable.startswith("SEAWALL_") and variable not in VARIABLES:
            nearest = difflib.get_close_matches(variable, VARIABLES, n=1, cutoff=0.8)
            if nearest:  # other SEAWALL_* names may be another program's
                problems.found.append(
                    f"${variable}: unknown variable (did you mean "
                    f"${nearest[0]}?); expected one of "
                    f"{', '.join(VARIABLES)}"
                )
    for variable, (section, key) in ENVIRONMENT.items():
        text = environ.get(variable, "")
        if not text:
            continue  # unset, or set to nothing
        if result.get(section) is False:
            continue  # that part is switched off in the file
        section_values = result.setdefault(section, {})
        if isinstance(section_values, dict):
            section_values[key] = reader.scalar(text)
            problems.origins[f"defaults.{section}.{key}"] = [f"${variable}"]
    return result


def _parts(raw: Mapping[str, Any], where: str, problems: Problems) -> PolicyParts:
    parts = PolicyParts(
        retry=Retry(), timeouts=DEFAULT_TIMEOUTS, breaker=CircuitBreaker(), bulkhead=Bulkhead()
    )
    for key in raw:
        if key not in POLICY and where == "defaults":
            problems.add(f"{where}.{key}", unknown_key(key, POLICY))
    for key, section in POLICY.items():
        value = raw.get(key)
        if value is None:
            continue
        if value is False and section.can_be_off:
            setattr(parts, key, None)
            continue
        built = _build(section, value, f"{where}.{key}", problems)
        if built is not None:
            setattr(parts, key, built)
    _check_fit(parts, where, problems)
    return parts


def _build(section: Section, value: Any, where: str, problems: Problems, **extra: Any) -> Any:
    """The instance of `section.kind` that `value` (a mapping) describes, or None after adding
    its problems: each key checked by the class's own rule, then the class built (with
    `extra` arguments that are no keys)."""
    if not isinstance(value, Mapping):
        off = " or false" if section.can_be_off else ""
        problems.add(
            where, f"must be a mapping of {', '.join(section.known())}{off}, got {_show(value)}"
        )
        return None
    before = len(problems.found)
    args: dict[str, Any] = {}
    for name, given in value.items():
        key = section.key(name)
        if key is None:
            problems.add(f"{where}.{name}", unknown_key(name, section.known()))
        elif key.nested is not None:
            if given is False and key.nested.can_be_off:
                args[key.name] = None
            elif given is not None:
                args[key.name] = _build(key.nested, given, f"{where}.{name}", problems)
        else:
            try:
                args[key.name] = key.convert(given)
            except Bad as bad:
                problems.add(f"{where}.{name}", str(bad))
    if len(problems.found) > before:
        return None
    try:
        return section.build({**args, **extra})
    except (ValueError, TypeError, OverflowError) as error:  # a rule across keys
        problems.add(where, str(error).split(": ", 1)[-1])
        return None


def _check_fit(parts: PolicyParts, where: str, problems: Problems) -> None:
    """Retries whose first delay can never fit the total timeout, and a breaker window too
    short for the attempt timeout (as `Policy` checks it), are configuration errors."""
    retry, timeouts = parts.retry, parts.timeouts
    if parts.breaker is not None and timeouts is not None:
        problem = parts.breaker.window_problem(timeouts.attempt)
        if problem is not None:
            problems.add(f"{where}.breaker", problem)
    if retry is None or timeouts is None or timeouts.total is None or retry.max_attempts < 2:
        return
    backoff = retry.backoff
    smallest = {
        "none": backoff.base,
        "equal": backoff.base / 2,
        "full": 0.0,
        "decorrelated": backoff.base,
    }[backoff.jitter]
    if smallest >= timeouts.total:  # even after an instant failure, no retry could start
        problems.add(
            f"{where}.retry",
            f"a retry waits at least {smallest:g} s but the total timeout is "
            f"{timeouts.total:g} s: retry delays can never fit in it (lower backoff.base, raise "
            f"timeouts.total, or set retry.max_attempts: 1)",
        )


_METHODS = Key("methods", _validate.METHODS)


def _match(raw: Any, where: str, problems: Problems) -> dict[str, Any]:
    if raw is None:
        return {}  # no HTTP request matches it: a dependency of protected calls only
    raw = _mapping(raw, where, problems)
    match: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in MATCH_KEYS:
            problems.add(f"{where}.{key}", unknown_key(key, MATCH_KEYS))
        elif key == "host":
            hosts = [value] if isinstance(value, str) else value
            if (
                not isinstance(hosts, list)
                or not hosts
                or not all(isinstance(h, str) and h for h in hosts)
            ):
                problems.add(
                    f"{where}.host", f"must be a host glob or a list of them, got {_show(value)}"
                )
            else:
                match["host"] = [h.lower() for h in hosts]
        elif key == "path":
            if not isinstance(value, str) or not value.startswith("/"):
                problems.add(
                    f"{where}.path", f"must be a path prefix starting with /, got {_show(value)}"
                )
            else:
                match["path"] = value
        else:
            try:
                match["methods"] = _METHODS.convert(value)
            except Bad as bad:
                problems.add(f"{where}.methods", str(bad))
    if not raw:
        problems.add(where, "empty; expected host, path and/or methods")
    return match


def _mapping(value: Any, where: str, problems: Problems) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(where, f"must be a mapping, got {_show(value)}")
        return {}
    return dict(value)


def _merge(base: Any, override: Any) -> Any:
    """A dependency's section over the defaults', key by key (one level into backoff/budget)."""
    if override is None:
        return base
    if not isinstance(base, Mapping) or not isinstance(override, Mapping):
        return override
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base.get(key), value) if isinstance(value, Mapping) else value
    return merged
