"""The one error a configuration problem raises, and how a bad value is shown in it."""

from __future__ import annotations

import reprlib
from typing import Any


class ConfigError(ValueError):
    """A configuration that cannot be used; `problems` lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the seawall configuration:\n{lines}")


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 2, 4, 4, 4
_REPR.maxset = _REPR.maxfrozenset = 4
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = 50
_SHOWN = 60


def show(value: Any) -> str:
    """A bad value as a message shows it: at most 60 characters, built without walking all of a
    big or shared structure (an alias bomb's repr alone would take seconds)."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int over Python's 4300-digit str() limit
        text = f"<a number of {value.bit_length()} bits>" if isinstance(value, int) else "<?>"
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."
