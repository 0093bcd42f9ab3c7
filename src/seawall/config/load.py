"""Reading, substituting and validating a seawall configuration.

Every problem is reported at once, each naming the file, the key path, the bad value and what
was expected; nothing from YAML's internals reaches the user.

    defaults:
      retry: {max_attempts: 3, backoff: {type: exponential, base: 0.2, cap: 10, jitter: full}}
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

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..policies.breaker import CircuitBreaker
from ..policies.bulkhead import Bulkhead
from ..policies.pool import Pool
from ..policies.retry import Backoff, Retry, RetryBudget
from ..policies.timeouts import Timeouts
from . import admin as admin_section
from . import reader
from .errors import ConfigError
from .errors import show as _show

__all__ = [
    "Config",
    "ConfigError",
    "Dependency",
    "PolicyParts",
    "load",
    "load_file",
    "parse_duration",
    "substitute",
]


# -- values --------------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DURATION_HELP = "a duration >= 0: seconds as a number, or a string like 250ms, 2s, 1m"


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string with a unit (`250ms`, `2s`, `1.5m`, `1h`)."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        seconds = float(value)  # OverflowError (a ValueError's kin) for an int past float's range
    elif isinstance(value, str) and (found := _DURATION.match(value)):
        seconds = float(found.group(1)) * _UNITS[found.group(2)]
    else:
        raise ValueError(value)
    if not math.isfinite(seconds) or seconds < 0:  # "1" * 400 + "s" reads as inf
        raise ValueError(value)
    return seconds


@dataclass(frozen=True)
class _Field:
    expected: str
    convert: Callable[[Any], Any]
    target: str = ""  # the constructor argument (default: the key)


def _duration(value: Any) -> float:
    return parse_duration(value)


def _optional_duration(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(value)
    return value


def _ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(value)
    return float(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(value)
    return value


def _choice(*options: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in options:
            raise ValueError(value)
        return str(value)
    return convert


def _statuses(value: Any) -> frozenset[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and 100 <= v <= 599 for v in value):
        raise ValueError(value)
    return frozenset(value)


def _methods(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(value)
    return frozenset(v.upper() for v in value)


DURATION = _Field(DURATION_HELP, _duration)
OPTIONAL_DURATION = _Field(DURATION_HELP + ", or null", _optional_duration)
COUNT = _Field("a whole number >= 0", _count)
RATIO = _Field("a number from 0 to 1", _ratio)
BOOLEAN = _Field("true or false", _boolean)

SECTIONS: dict[str, dict[str, _Field]] = {
    "retry": {
        "max_attempts": COUNT, "statuses": _Field("a list of HTTP status codes", _statuses),
        "methods": _Field("a list of HTTP methods", _methods),
        "unsafe_methods": BOOLEAN, "respect_retry_after": BOOLEAN,
        "max_retry_after": DURATION,
    },
    "backoff": {
        "type": _Field("one of exponential, linear, constant",
                       _choice("exponential", "linear", "constant"), "kind"),
        "base": DURATION, "cap": DURATION,
        "multiplier": _Field("a number >= 1", lambda v: float(v) if isinstance(v, (int, float))
                             and not isinstance(v, bool) and v >= 1 else _fail(v)),
        "jitter": _Field("one of none, full, equal, decorrelated",
                         _choice("none", "full", "equal", "decorrelated")),
    },
    "budget": {"ratio": RATIO, "min_per_second": _Field("a number >= 0", lambda v: float(_count(v))
                                                        if isinstance(v, int) else _nonneg(v)),
               "ttl": DURATION},
    "timeouts": {"attempt": OPTIONAL_DURATION, "total": OPTIONAL_DURATION},
    "breaker": {
        "failure_rate": RATIO, "window": DURATION,
        "window_type": _Field("one of time, count", _choice("time", "count")),
        "min_calls": COUNT, "consecutive_failures": _Field("a whole number >= 1, or null",
                                                           lambda v: None if v is None else _count(v)),
        "slow_call_duration": OPTIONAL_DURATION, "slow_call_rate": RATIO, "open_for": DURATION,
        "half_open_calls": COUNT, "success_threshold": COUNT,
    },
    "bulkhead": {"max_concurrent": COUNT, "max_queued": COUNT, "queue_timeout": OPTIONAL_DURATION},
    "pool": {"max_connections": COUNT, "max_keepalive": COUNT, "keepalive_expiry": DURATION},
}
POLICY_KEYS = ("retry", "timeouts", "breaker", "bulkhead", "pool")
MATCH_KEYS = ("host", "path", "methods")


def _fail(value: Any) -> Any:
    raise ValueError(value)


def _nonneg(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(value)
    return float(value)


# -- the result ----------------------------------------------------------------------------
@dataclass
class PolicyParts:
    """The keyword arguments of a `seawall.Policy` (None: that part switched off)."""

    retry: Retry | None = None
    timeouts: Timeouts | None = None
    breaker: CircuitBreaker | None = None
    bulkhead: Bulkhead | None = None
    pool: Pool = field(default_factory=Pool)

    def kwargs(self) -> dict[str, Any]:
        return {"retry": self.retry, "timeouts": self.timeouts, "breaker": self.breaker,
                "bulkhead": self.bulkhead, "pool": self.pool}


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


# -- loading -------------------------------------------------------------------------------
_VARIABLE = re.compile(r"\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(text: str, environ: Mapping[str, str]) -> str:
    """`${VAR}`, `${env:VAR}` and `${VAR:-default}` as in OpenTelemetry's declarative config;
    an unset variable with no default becomes empty; `$$` is a literal `$`."""
    def replace(found: re.Match[str]) -> str:
        if found.group(0) == "$$":
            return "$"
        value = environ.get(found.group(1))
        if value is None or (value == "" and found.group(2) is not None):
            return found.group(2) or ""
        return value
    return _VARIABLE.sub(replace, text)


def load_file(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read a YAML configuration file (variables substituted, `SEAWALL_*` overrides applied)."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(source, [f"cannot read the file: {error.strerror or error}"]) from None
    environ = os.environ if environ is None else environ
    document = reader.parse(data, source, lambda text: substitute(text, environ))
    return load(document if document is not None else {}, source=source, environ=environ)


def load(data: Any, *, source: str = "<config>", environ: Mapping[str, str] | None = None) -> Config:
    """Validate a configuration given as a dict; raises ConfigError listing every problem."""
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise ConfigError(source, [f"the top level must be a mapping, got {_show(data)}"])
    for key in data:
        if key not in ("defaults", "dependencies", "max_dependencies", "admin"):
            problems.append(f"{key}: unknown key; expected defaults, dependencies, "
                            "max_dependencies or admin")
    environ = os.environ if environ is None else environ
    raw_defaults = _mapping(data.get("defaults", {}), "defaults", problems)
    raw_defaults = _apply_environment(raw_defaults, environ, problems)
    before = len(problems)
    defaults = _parts(raw_defaults, "defaults", None, problems)
    # A dependency inherits the defaults' values: their problems are said once, at defaults.
    inherited = {problem.split(":", 1)[0].removeprefix("defaults") + ":" +
                 problem.split(":", 1)[1] for problem in problems[before:]}
    dependencies: list[Dependency] = []
    raw_dependencies = _mapping(data.get("dependencies", {}), "dependencies", problems)
    for name, raw in raw_dependencies.items():
        where = f"dependencies.{name}"
        raw = _mapping(raw, where, problems)
        for key in raw:
            if key not in ("match", "critical") and key not in POLICY_KEYS:
                problems.append(f"{where}.{key}: unknown key; expected match, critical, "
                                f"{', '.join(POLICY_KEYS)}")
        match = _match(raw.get("match"), f"{where}.match", problems)
        merged = {key: _merge(raw_defaults.get(key), raw.get(key)) for key in POLICY_KEYS
                  if key in raw or key in raw_defaults}
        own: list[str] = []
        dependencies.append(Dependency(str(name), match, _parts(merged, where, raw, own)))
        problems += [problem for problem in own
                     if problem.removeprefix(where).split(":", 1)[0] + ":" +
                     problem.split(":", 1)[1] not in inherited]
    max_dependencies = data.get("max_dependencies", 100)
    if isinstance(max_dependencies, bool) or not isinstance(max_dependencies, int) or max_dependencies < 1:
        problems.append(f"max_dependencies: {_show(max_dependencies)}; expected a whole number >= 1")
        max_dependencies = 100
    admin = admin_section.parse(data.get("admin"), problems,
                                admin_section.critical(raw_dependencies, problems))
    if problems:
        raise ConfigError(source, problems)
    return Config(source, defaults, dependencies, max_dependencies, admin)


#: Environment overrides of the common knobs, applied to `defaults`.
ENVIRONMENT = {
    "SEAWALL_RETRY_MAX_ATTEMPTS": ("retry", "max_attempts", int),
    "SEAWALL_TIMEOUT_ATTEMPT": ("timeouts", "attempt", str),
    "SEAWALL_TIMEOUT_TOTAL": ("timeouts", "total", str),
    "SEAWALL_BREAKER_FAILURE_RATE": ("breaker", "failure_rate", float),
    "SEAWALL_BREAKER_OPEN_FOR": ("breaker", "open_for", str),
    "SEAWALL_BULKHEAD_MAX_CONCURRENT": ("bulkhead", "max_concurrent", int),
    "SEAWALL_BULKHEAD_MAX_QUEUED": ("bulkhead", "max_queued", int),
    "SEAWALL_POOL_MAX_CONNECTIONS": ("pool", "max_connections", int),
}


def _apply_environment(defaults: dict[str, Any], environ: Mapping[str, str],
                       problems: list[str]) -> dict[str, Any]:
    result = {key: dict(value) if isinstance(value, Mapping) else value
              for key, value in defaults.items()}
    for variable, (section, key, kind) in ENVIRONMENT.items():
        value = environ.get(variable)
        if value is None:
            continue
        try:
            converted: Any = kind(value)
        except ValueError:
            problems.append(f"${variable}: {value!r}; expected {kind.__name__}")
            continue
        if result.get(section) is False:
            continue  # that part is switched off in the file
        section_values = result.setdefault(section, {})
        if isinstance(section_values, dict):
            section_values[key] = converted
    return result


def _parts(raw: Mapping[str, Any], where: str, own: Mapping[str, Any] | None,
           problems: list[str]) -> PolicyParts:
    parts = PolicyParts(retry=Retry(), timeouts=Timeouts(), breaker=CircuitBreaker(),
                        bulkhead=Bulkhead())
    for key in raw:
        if key not in POLICY_KEYS and own is None:
            problems.append(f"{where}.{key}: unknown key; expected one of {', '.join(POLICY_KEYS)}")
    for key in POLICY_KEYS:
        value = raw.get(key)
        if value is None:
            continue
        if value is False and key != "pool":
            setattr(parts, key, None)
            continue
        section = _mapping(value, f"{where}.{key}", problems)
        built = _build(key, section, f"{where}.{key}", problems)
        if built is not None:
            setattr(parts, key, built)
    _check_fit(parts, where, problems)
    return parts


def _build(key: str, section: Mapping[str, Any], where: str, problems: list[str]) -> Any:
    before = len(problems)
    args = _fields(SECTIONS[key], section, where, problems,
                   nested=("backoff", "budget") if key == "retry" else ())
    if key == "retry":
        backoff = section.get("backoff")
        if isinstance(backoff, Mapping):
            args["backoff"] = _construct(Backoff, _fields(SECTIONS["backoff"], backoff,
                                                          f"{where}.backoff", problems),
                                         f"{where}.backoff", problems)
        elif backoff is not None:
            problems.append(f"{where}.backoff: {_show(backoff)}; expected a mapping")
        budget = section.get("budget")
        if budget is False:
            args["budget"] = None
        elif isinstance(budget, Mapping):
            args["budget"] = _construct(RetryBudget, _fields(SECTIONS["budget"], budget,
                                                             f"{where}.budget", problems),
                                        f"{where}.budget", problems)
        elif budget is not None:
            problems.append(f"{where}.budget: {_show(budget)}; expected a mapping or false")
    if len(problems) > before:
        return None
    kinds = {"retry": Retry, "timeouts": Timeouts, "breaker": CircuitBreaker,
             "bulkhead": Bulkhead, "pool": Pool}
    return _construct(kinds[key], args, where, problems)


def _fields(spec: Mapping[str, _Field], section: Mapping[str, Any], where: str,
            problems: list[str], nested: tuple[str, ...] = ()) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for key, value in section.items():
        if key in nested:
            continue
        found = spec.get(key)
        if found is None:
            known = ", ".join([*spec, *nested])
            problems.append(f"{where}.{key}: unknown key; expected one of {known}")
            continue
        try:
            args[found.target or key] = found.convert(value)
        except (ValueError, TypeError, OverflowError):
            problems.append(f"{where}.{key}: {_show(value)}; expected {found.expected}")
    return args


def _construct(kind: type, args: dict[str, Any], where: str, problems: list[str]) -> Any:
    try:
        return kind(**args)
    except (ValueError, TypeError, OverflowError) as error:
        problems.append(f"{where}: {str(error).split(': ', 1)[-1]}")
        return None


def _check_fit(parts: PolicyParts, where: str, problems: list[str]) -> None:
    """Retries whose first delay can never fit the total timeout, and a breaker window too
    short for the attempt timeout (as `Policy` checks it), are configuration errors."""
    retry, timeouts = parts.retry, parts.timeouts
    if parts.breaker is not None and timeouts is not None:
        problem = parts.breaker.window_problem(timeouts.attempt)
        if problem is not None:
            problems.append(f"{where}.breaker: {problem}")
    if retry is None or timeouts is None or timeouts.total is None or retry.max_attempts < 2:
        return
    backoff = retry.backoff
    smallest = {"none": backoff.base, "equal": backoff.base / 2, "full": 0.0,
                "decorrelated": backoff.base}[backoff.jitter]
    if smallest >= timeouts.total:  # even after an instant failure, no retry could start
        problems.append(
            f"{where}.retry: a retry waits at least {smallest:g} s but the total timeout is "
            f"{timeouts.total:g} s: retry delays can never fit in it (lower backoff.base, raise "
            f"timeouts.total, or set retry.max_attempts: 1)")


def _match(raw: Any, where: str, problems: list[str]) -> dict[str, Any]:
    if raw is None:
        problems.append(f"{where}: missing; expected a mapping with host, path and/or methods")
        return {}
    raw = _mapping(raw, where, problems)
    match: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in MATCH_KEYS:
            problems.append(f"{where}.{key}: unknown key; expected one of {', '.join(MATCH_KEYS)}")
        elif key == "host":
            hosts = [value] if isinstance(value, str) else value
            if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts):
                problems.append(f"{where}.host: {_show(value)}; expected a host glob or a list of them")
            else:
                match["host"] = [h.lower() for h in hosts]
        elif key == "path":
            if not isinstance(value, str) or not value.startswith("/"):
                problems.append(f"{where}.path: {_show(value)}; expected a path prefix starting with /")
            else:
                match["path"] = value
        else:
            try:
                match["methods"] = _methods(value)
            except ValueError:
                problems.append(f"{where}.methods: {_show(value)}; expected a list of HTTP methods")
    if not match and raw:
        return match
    if not raw:
        problems.append(f"{where}: empty; expected host, path and/or methods")
    return match


def _mapping(value: Any, where: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{where}: {_show(value)}; expected a mapping")
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


