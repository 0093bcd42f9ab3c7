"""The one error a configuration problem raises (bad values are shown by `show`, the policy
classes' own)."""

from __future__ import annotations

from ..policies._validate import show

__all__ = ["ConfigError", "show"]


class ConfigError(ValueError):
    """A configuration that cannot be used; `problems` lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"{source}: {len(problems)} problem(s) in the seawall configuration:\n{lines}"
        )
