"""Argument checks at construction time, one rule (and one wording) per kind of argument.

Every error names the class or function, the argument, what was expected and what was given:

    CircuitBreaker: failure_rate must be a ratio from above 0 to 1, got str '0.5'
    Bulkhead: max_concurrent must be a whole number >= 1, got 0

Types are checked first, for every argument: a value of the wrong type raises `TypeError` (its
type is shown before it); only then are the values checked, and one of the right type that is
out of range raises `ValueError`. The rules are declared per argument in a table (`Rules`), so
that whatever else needs them (the config loader, documentation) reads the same table.
Nothing here runs per request.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 2, 4, 4, 4
_REPR.maxset = _REPR.maxfrozenset = 4
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = 60


def show(value: Any) -> str:
    """The value as messages show it: its repr, cut to a readable length, built without walking
    all of a big or shared structure (a YAML alias bomb's full repr would take seconds)."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int over Python's 4300-digit str() limit
        text = f"<a number of {value.bit_length()} bits>" if isinstance(value, int) else "<?>"
    return text if len(text) <= 80 else text[:77] + "..."


def _typed(value: Any) -> str:
    return "None" if value is None else f"{type(value).__name__} {show(value)}"


def _finite(value: float) -> bool:
    """Finite as a float: an int too large for one (10**400) would overflow the arithmetic."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Rule:
    """What one argument must be. `type_problem` / `value_problem` return what to show after
    "got" when the value breaks the rule, or None; `convert` gives the value to keep."""

    expected = "a value"

    def __init__(self, *, optional: bool = False) -> None:
        self.optional = optional

    @property
    def description(self) -> str:
        """The expectation, as messages and documentation say it."""
        return f"{self.expected} or None" if self.optional else self.expected

    def type_problem(self, value: Any) -> str | None:
        return None

    def value_problem(self, value: Any) -> str | None:
        return None

    def convert(self, value: Any) -> Any:
        return value


class Number(Rule):
    """A finite int or float (not a bool) from `low` (excluded when `above`) up to `high`."""

    def __init__(
        self,
        low: float,
        *,
        above: bool = False,
        high: float | None = None,
        what: str = "a number",
        optional: bool = False,
    ) -> None:
        super().__init__(optional=optional)
        self.low, self.above, self.high = low, above, high
        if high is None:
            self.expected = f"{what} {'>' if above else '>='} {low:g}"
        else:
            self.expected = f"{what} from {'above ' if above else ''}{low:g} to {high:g}"

    def type_problem(self, value: Any) -> str | None:
        return None if _number(value) else _typed(value)

    def value_problem(self, value: Any) -> str | None:
        fits = (
            _finite(value)
            and (value > self.low if self.above else value >= self.low)
            and (self.high is None or value <= self.high)
        )
        return None if fits else show(value)


def seconds(*, above_zero: bool = False, optional: bool = False) -> Number:
    return Number(0, above=above_zero, what="a number of seconds", optional=optional)


def ratio(*, zero: bool = False) -> Number:
    return Number(0, above=not zero, high=1, what="a ratio")


class Count(Rule):
    """An int (not a bool) >= `minimum`."""

    def __init__(self, minimum: int = 1, *, optional: bool = False) -> None:
        super().__init__(optional=optional)
        self.minimum = minimum
        self.expected = f"a whole number >= {minimum}"

    def type_problem(self, value: Any) -> str | None:
        return None if isinstance(value, int) and not isinstance(value, bool) else _typed(value)

    def value_problem(self, value: Any) -> str | None:
        return None if value >= self.minimum else show(value)


class Choice(Rule):
    """One of a few strings."""

    def __init__(self, *options: str) -> None:
        super().__init__()
        self.options = options
        self.expected = f"one of {', '.join(options)}"

    def type_problem(self, value: Any) -> str | None:
        return None if isinstance(value, str) else _typed(value)

    def value_problem(self, value: Any) -> str | None:
        return None if value in self.options else show(value)


class Flag(Rule):
    expected = "True or False"

    def type_problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else _typed(value)


class Text(Rule):
    expected = "a non-empty str"

    def type_problem(self, value: Any) -> str | None:
        return None if isinstance(value, str) else _typed(value)

    def value_problem(self, value: Any) -> str | None:
        return None if value else show(value)


class Function(Rule):
    """A callable; `expected` says how it is called."""

    def __init__(self, expected: str, *, optional: bool = False) -> None:
        super().__init__(optional=optional)
        self.expected = expected

    def type_problem(self, value: Any) -> str | None:
        return None if callable(value) else _typed(value)


class Instance(Rule):
    """An instance of `kind` (named `expected` in messages)."""

    def __init__(
        self, kind: type | tuple[type, ...], expected: str, *, optional: bool = False
    ) -> None:
        super().__init__(optional=optional)
        self.kind = kind
        self.expected = expected

    def type_problem(self, value: Any) -> str | None:
        return None if isinstance(value, self.kind) else _typed(value)


class HasMembers(Rule):
    """Anything with the given attributes (a protocol, checked without importing its classes)."""

    def __init__(
        self,
        members: tuple[str, ...],
        expected: str,
        *,
        optional: bool = False,
        also: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(optional=optional)
        self.members = members
        self.expected = expected
        self.also = also  # plain values accepted as they are (True/False for telemetry)

    def type_problem(self, value: Any) -> str | None:
        if any(value is accepted for accepted in self.also):
            return None
        if all(hasattr(value, member) for member in self.members):
            return None
        return _typed(value)


class Errors(Rule):
    """Which errors: an exception class, a tuple of them, or a predicate `(error) -> bool`;
    kept as a tuple of classes or the predicate."""

    expected = "an exception class, a tuple of them, or a callable(error) -> bool"

    def type_problem(self, value: Any) -> str | None:
        if isinstance(value, type):
            return None if issubclass(value, BaseException) else _typed(value)
        if isinstance(value, tuple):
            for element in value:
                if not (isinstance(element, type) and issubclass(element, BaseException)):
                    return f"{_typed(element)} in {show(value)}"
            return None
        return None if callable(value) else _typed(value)

    def convert(self, value: Any) -> Any:
        return (value,) if isinstance(value, type) else value


class Each(Rule):
    """A collection (not a str, bytes or mapping) whose every element is a `kind` that
    `valid` accepts; kept as `into(converted elements)`."""

    def __init__(
        self,
        expected: str,
        kind: type,
        *,
        valid: Callable[[Any], bool] | None = None,
        each: Callable[[Any], Any] | None = None,
        into: Callable[[Iterable[Any]], Any] = frozenset,
        hint: Callable[[Any], str] | None = None,
    ) -> None:
        super().__init__()
        self.expected = expected
        self.kind, self.valid, self.each, self.into, self.hint = kind, valid, each, into, hint

    def _fits_kind(self, element: Any) -> bool:
        return isinstance(element, self.kind) and not (
            isinstance(element, bool) and self.kind is int
        )

    def type_problem(self, value: Any) -> str | None:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            return _typed(value)
        for element in value:
            if not self._fits_kind(element):
                hint = self.hint(element) if self.hint else ""
                return f"{_typed(element)} in {show(value)}{hint}"
        return None

    def value_problem(self, value: Any) -> str | None:
        if self.valid is None:
            return None
        bad = [element for element in value if not self.valid(element)]
        if not bad:
            return None
        try:
            bad.sort()
        except TypeError:
            pass
        return show(bad)

    def convert(self, value: Any) -> Any:
        return self.into(map(self.each, value) if self.each else value)


# -- the rules several classes share -------------------------------------------------------
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: what a method can be

STATUSES = Each(
    "a collection of HTTP status codes (int 100-599)",
    int,
    valid=lambda status: 100 <= status <= 599,
)
METHODS = Each(
    "a collection of HTTP method names (str)",
    str,
    valid=lambda method: _TOKEN.fullmatch(method) is not None,
    each=str.upper,
)
#: A seawall.Policy or a seawall.config.Router (what adapters take), known by what they use.
POLICY = HasMembers(
    ("run", "run_async", "pool", "telemetry", "track_pool"),
    "a seawall.Policy or seawall.config.Router",
    optional=True,
)
#: Policy/Router `telemetry=`: on (the global providers), off, or a Telemetry instance.
TELEMETRY = HasMembers(
    ("watch",), "True, False, None or a seawall.telemetry.otel.Telemetry", also=(True, False, None)
)
FLAG = Flag()


Rules = Mapping[str, Rule]


def arguments(owner: str, rules: Rules, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check each of `values` against its rule in `rules` (every type first, then every
    value); the values to keep (collections become frozensets, method names upper case...)."""
    given = [
        (name, value, rules[name])
        for name, value in values.items()
        if not (value is None and rules[name].optional)
    ]
    for check, error in (("type_problem", TypeError), ("value_problem", ValueError)):
        for name, value, rule in given:
            problem = getattr(rule, check)(value)
            if problem is not None:
                raise error(f"{owner}: {name} must be {rule.description}, got {problem}")
    kept = dict(values)
    for name, value, rule in given:
        kept[name] = rule.convert(value)
    return kept


def fields(instance: Any, rules: Rules, owner: str | None = None) -> None:
    """`arguments` for a frozen dataclass's fields, from its `__post_init__`: converted values
    are stored back."""
    values = {name: getattr(instance, name) for name in rules}
    kept = arguments(owner or type(instance).__name__, rules, values)
    for name, value in kept.items():
        if value is not values[name]:
            object.__setattr__(instance, name, value)
