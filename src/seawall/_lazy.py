"""Submodules loaded on first attribute access (PEP 562), so that a package stays light to
import and `package.sub.name` works without `import package.sub` first."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


def submodules(
    package: str, names: Iterable[str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package` (its globals: `namespace`)."""
    lazy = frozenset(names)

    def __getattr__(name: str) -> Any:  # noqa: N807 (PEP 562's names)
        if name in lazy:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*namespace, *lazy})

    return __getattr__, __dir__
