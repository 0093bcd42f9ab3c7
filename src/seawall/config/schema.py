"""The configuration's keys, derived from the policy classes: every field a class checks with a
rule (its `RULES`) is a key under its own name, and its problems are worded by that rule, so the
YAML and the Python API cannot drift apart. Only callables (`Retry.predicate`,
`CircuitBreaker.key`) are left to code.

What YAML adds on top: durations may be strings with a unit (`250ms`, `2s`), error kinds are
their names (`connect`), `null` is None, and a nested class (`retry.backoff`,
`retry.budget`) is a mapping of its own keys (or `false` when it can be None).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..policies import _validate
from ..policies.retry import Backoff
from .errors import show

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DURATION_HELP = "a duration: seconds as a number, or a string like 250ms, 2s, 1.5m, 1h"


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


class Bad(ValueError):
    """A value a key cannot take; the message says what was expected and what was given."""


@dataclass(frozen=True)
class Key:
    """One key of a section: the class field it sets and the rule that checks it."""

    name: str
    rule: _validate.Rule
    nested: Section | None = None  # a class of its own (retry.backoff)

    @property
    def seconds(self) -> bool:
        return isinstance(self.rule, _validate.Number) and "seconds" in self.rule.expected

    @property
    def enum(self) -> type[enum.Enum] | None:
        kind = getattr(self.rule, "kind", None)
        if (
            isinstance(self.rule, _validate.Each)
            and isinstance(kind, type)
            and issubclass(kind, enum.Enum)
        ):
            return kind
        return None

    @property
    def expected(self) -> str:
        if self.enum is not None:
            return f"a list of {', '.join(member.value for member in self.enum)}"
        text = self.rule.description.replace(" or None", " or null")
        return text.replace("True or False", "true or false")

    def convert(self, value: Any) -> Any:
        """The YAML value as the class takes it, checked by the class's own rule; Bad if not."""
        if value is None and self.rule.optional:
            return None
        if self.seconds and isinstance(value, str):
            try:
                value = parse_duration(value)
            except ValueError:
                raise Bad(f"must be {DURATION_HELP}, got {show(value)}") from None
        kinds = self.enum
        if kinds is not None and isinstance(value, list):
            names = {member.value: member for member in kinds}
            unknown = [v for v in value if not isinstance(v, str) or v not in names]
            if unknown:
                raise Bad(
                    f"must be {self.expected}, got {show(unknown[0])}{suggest(unknown[0], names)}"
                )
            value = [names[v] for v in value]
        for check in (self.rule.type_problem, self.rule.value_problem):
            try:
                problem = check(value)
            except OverflowError:  # an int too large for a float
                problem = show(value)
            if problem is not None:
                raise Bad(f"must be {self.expected}, got {problem}")
        return self.rule.convert(value)


@dataclass(frozen=True)
class Section:
    """The keys of one class (`kind`); `can_be_off`: `false` makes it None."""

    name: str
    kind: type
    keys: dict[str, Key]
    can_be_off: bool
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: What the checked keys become: an instance of `kind` (a policy class), or, for a class
    #: whose instances hold running parts (`DeadLetters`: a store, a writer thread), its
    #: keyword arguments (`Arguments`), built when the policies are.
    make: Callable[..., Any] | None = None

    def build(self, args: dict[str, Any]) -> Any:
        return (self.make or self.kind)(**args)

    def key(self, name: str) -> Key | None:
        return self.keys.get(self.aliases.get(name, name))

    def known(self) -> list[str]:
        return list(self.keys)


def section(
    name: str,
    kind: type,
    *,
    can_be_off: bool = True,
    aliases: Mapping[str, str] | None = None,
    code_only: frozenset[str] = frozenset(),
) -> Section:
    """The section of a class from its `RULES`, in the order of its dataclass fields (of the
    table itself for a class that is not a dataclass, as `seawall.Fleet`); `code_only`: more
    arguments that are no key."""
    rules: Mapping[str, _validate.Rule] | None = getattr(kind, "RULES", None)
    if rules is None:
        raise TypeError(f"{kind.__name__} has no RULES table to derive its section from")
    names = (
        [found.name for found in dataclasses.fields(kind)]
        if dataclasses.is_dataclass(kind)
        else list(rules)
    )
    keys: dict[str, Key] = {}
    for field_name in names:
        rule = rules.get(field_name)
        if rule is None or isinstance(rule, _validate.Function) or field_name in code_only:
            continue  # code only: YAML cannot hold a callable
        nested = None
        inner = getattr(rule, "kind", None)
        if (
            isinstance(rule, _validate.Instance)
            and isinstance(inner, type)
            and dataclasses.is_dataclass(inner)
        ):
            nested = section(
                field_name, inner, can_be_off=rule.optional, aliases=_ALIASES.get(inner)
            )
        keys[field_name] = Key(field_name, rule, nested)
    return Section(name, kind, keys, can_be_off, aliases or {}, _MAKE.get(kind))


# YAML names kept for a field whose Python name reads oddly in a file (`type: exponential`).
_ALIASES: dict[type, dict[str, str]] = {Backoff: {"type": "kind"}}


@dataclass(frozen=True)
class Arguments:
    """A class's checked keyword arguments from the configuration, to build it later
    (`build()`); equal arguments compare (and hash) equal."""

    kind: type
    items: frozenset[tuple[str, Any]]

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.items).get(name, default)

    def build(self, **extra: Any) -> Any:
        """The instance, with `extra` arguments the configuration cannot hold (code only)."""
        return self.kind(**dict(self.items), **extra)


def _dead_letter_arguments(**args: Any) -> Arguments:
    from ..deadletters import DeadLetters

    if "store" not in args:
        raise ValueError(
            "DeadLetters: store is missing; expected a path to an SQLite file or a "
            "postgresql:// URL (use ${VAR} for one holding a password)"
        )
    return Arguments(DeadLetters, frozenset(args.items()))


def _make() -> dict[type, Callable[..., Any]]:
    from ..deadletters import DeadLetters

    return {DeadLetters: _dead_letter_arguments}


_MAKE = _make()
#: Arguments of a policy section that are no key (a live object: `DeadLetters(telemetry=)`).
_CODE_ONLY: dict[type, frozenset[str]] = {kind: frozenset({"telemetry"}) for kind in _MAKE}


def _policy_sections() -> dict[str, Section]:
    """`Policy`'s arguments that are policy classes: `false` switches off those it lets be None
    (all but `pool`: every client has a pool, seawall only sets its limits)."""
    from ..pipeline import Policy

    sections: dict[str, Section] = {}
    for name, rule in Policy.RULES.items():
        kind = getattr(rule, "kind", None)
        if (
            isinstance(rule, _validate.Instance)
            and isinstance(kind, type)
            and (dataclasses.is_dataclass(kind) or kind in _MAKE)
        ):
            sections[name] = section(
                name, kind, can_be_off=rule.optional, code_only=_CODE_ONLY.get(kind, frozenset())
            )
    return sections


#: The sections of a policy, as `defaults` and each dependency have them.
POLICY: dict[str, Section] = _policy_sections()


def _fleet_section() -> Section:
    from ..fleet.store import Fleet

    return section("fleet", Fleet, code_only=frozenset({"start"}))


#: The top-level `fleet:` section: `seawall.Fleet`'s arguments (docs/fleet.md).
FLEET: Section = _fleet_section()


def suggest(given: Any, known: Iterable[str]) -> str:
    """`; did you mean X?` for the nearest of `known`, or nothing."""
    if not isinstance(given, str):
        return ""
    found = difflib.get_close_matches(given, list(known), n=1, cutoff=0.6)
    return f" (did you mean {found[0]}?)" if found else ""


def unknown_key(key: Any, known: Iterable[str]) -> str:
    """The problem of a key that is not one of `known`, suggesting the nearest."""
    known = list(known)
    return f"unknown key{suggest(key, known)}; expected one of {', '.join(known)}"
