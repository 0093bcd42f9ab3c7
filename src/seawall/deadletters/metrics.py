"""The dead letters' metrics, read when the OpenTelemetry SDK collects (nothing on the request
path): entries by dependency and state (a gauge), and the recorded / dropped / replayed counts by
dependency (each from 0 when the dependency is first seen)."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any


def instrument(letters: Any, meter_provider: Any = None) -> None:
    """Report `letters` on `meter_provider` (default: the global one)."""
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Observation

    from .. import __version__

    provider = meter_provider or metrics.get_meter_provider()
    meter = provider.get_meter("seawall.deadletters", __version__)
    ref = weakref.ref(letters)  # the instruments must not keep the letters alive

    def entries(_: CallbackOptions) -> Iterable[Observation]:
        found = ref()
        if found is None:
            return []
        return [
            Observation(n, {"seawall.dependency": dependency, "seawall.dead_letter.state": state})
            for (dependency, state), n in found.store.counts().items()
        ]

    def total(name: str) -> Any:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            found = ref()
            if found is None:
                return []
            counted = dict(found.counts[name])  # (a copy: the writer thread adds to it)
            return [Observation(n, {"seawall.dependency": dep}) for dep, n in counted.items()]

        return observe

    meter.create_observable_gauge(
        "seawall.dead_letters.entries",
        callbacks=[entries],
        unit="{entry}",
        description="Dead letters kept, by dependency and state (pending, replaying, resolved, "
        "failed).",
    )
    for name, description in (
        ("recorded", "Dead letters stored, by dependency."),
        ("dropped", "Dead letters lost: the writer's queue was full or the store refused them."),
        ("replayed", "Replays of dead letters sent."),
    ):
        meter.create_observable_counter(
            f"seawall.dead_letters.{name}",
            callbacks=[total(name)],
            unit="{entry}",
            description=description,
        )
