"""Plots of simulated runs (matplotlib: `pip install 'seawall[simulate]'`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .scenario import Run, Scenario


def plot(scenario: Scenario, runs: Sequence[Run], path: str | Path) -> Path:
    """Attempts and successes per second of each variant (and the scenario's samples), the
    trigger shaded; written as a PNG to `path`."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'seawall[simulate]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 + len(scenario.samples)
    figure, axes = plt.subplots(panels, 1, figsize=(9, 2.6 * panels), sharex=True)
    titles = ["attempts sent per second", "successful requests per second", *scenario.samples]
    for run in runs:
        label = run.summary.label
        axes[0].plot(run.attempts, label=label, linewidth=1)
        axes[1].plot(run.successes, label=label, linewidth=1)
        for axis, values in zip(axes[2:], run.samples.values()):
            axis.plot(values, label=label, linewidth=1)
    for axis, title in zip(axes, titles):
        axis.set_title(title, fontsize=10)
        if scenario.trigger is not None:
            axis.axvspan(*scenario.trigger, color="0.9", zorder=0)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("seconds (virtual time); shaded: the trigger")
    figure.suptitle(f"seawall simulate --preset {scenario.name}", fontsize=11)
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target, dpi=80)
    plt.close(figure)
    return target
