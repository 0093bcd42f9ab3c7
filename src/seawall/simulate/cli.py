"""`seawall simulate`: run a preset, print its table, optionally plot it."""

from __future__ import annotations

import sys
from pathlib import Path

from .presets import PRESETS
from .report import table
from .scenario import Variant, run_scenario


def config_variant(path: str, dependency: str | None) -> Variant:
    """The policy a YAML config gives `dependency` (its defaults when None), as a variant."""
    from ..config import load_file

    config = load_file(path)
    if dependency is None:
        parts = config.defaults
    else:
        found = next((d for d in config.dependencies if d.name == dependency), None)
        if found is None:
            names = ", ".join(d.name for d in config.dependencies) or "none"
            raise ValueError(f"{path}: no dependency named {dependency!r} (it has: {names})")
        parts = found.parts
    kwargs = parts.kwargs()
    kwargs.pop("pool", None)  # the simulated server has no connection pool
    return Variant(f"your config ({dependency or 'defaults'})", kwargs)


def run(
    preset: str,
    *,
    seed: int = 0,
    config: str | None = None,
    dependency: str | None = None,
    plot_dir: str | None = None,
    markdown: bool = False,
) -> int:
    from ..config import ConfigError

    scenario = PRESETS[preset]()
    variants = scenario.variants
    if config is not None:
        try:
            variants = (*variants, config_variant(config, dependency))
        except (ConfigError, ValueError) as error:
            print(error, file=sys.stderr)
            return 1
    runs = run_scenario(scenario, seed, variants)
    print(f"{scenario.name} (seed {seed}): {' '.join(scenario.summary.split())}\n")
    print(table([r.summary for r in runs], markdown=markdown))
    if plot_dir is not None:
        from .plot import plot

        try:
            written = plot(scenario, runs, Path(plot_dir) / f"{scenario.name}.png")
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 1
        print(f"\nplot: {written}")
    return 0
