"""`seawall simulate`: the real sans-I/O policies on a virtual clock against a simulated
server, to see what a configuration does in a retry storm, an outage or a slow error ramp
before production does. No sleeping, no sockets; a fixed seed gives the same figures."""

from __future__ import annotations

from .presets import PRESETS
from .report import Summary, table
from .scenario import Run, Scenario, Variant, run_scenario, run_variant
from .server import ServerModel

__all__ = [
    "PRESETS",
    "Run",
    "Scenario",
    "ServerModel",
    "Summary",
    "Variant",
    "run_scenario",
    "run_variant",
    "table",
]
