"""Argument checks that name the argument, the value and what was expected."""

from __future__ import annotations

import math
from typing import Any


def seconds(owner: str, name: str, value: Any, *, allow_none: bool = False,
            allow_zero: bool = True) -> None:
    if value is None and allow_none:
        return
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and (value >= 0 if allow_zero else value > 0))
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        extra = " or None" if allow_none else ""
        raise ValueError(f"{owner}: {name} must be a number of seconds {bound}{extra}, got {value!r}")


def count(owner: str, name: str, value: Any, *, minimum: int = 1, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        extra = " or None" if allow_none else ""
        raise ValueError(f"{owner}: {name} must be a whole number >= {minimum}{extra}, got {value!r}")


def ratio(owner: str, name: str, value: Any, *, allow_zero: bool = False) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and low_ok
            and value <= 1):
        low = "0" if allow_zero else "above 0"
        raise ValueError(f"{owner}: {name} must be a ratio from {low} to 1, got {value!r}")


def choice(owner: str, name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(options)}, got {value!r}")
