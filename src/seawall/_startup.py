"""`seawall run COMMAND`: seawall applied at start-up with no OpenTelemetry set-up at all (no
distro, SDK or exporter needed), as `ddtrace-run` does for its users. The launcher puts
`_bootstrap/` first on PYTHONPATH, so every Python program the command starts imports its
`sitecustomize`, which calls `start()`."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

BOOTSTRAP = Path(__file__).parent / "_bootstrap"


def environment(environ: dict[str, str]) -> dict[str, str]:
    """`environ` with the bootstrap directory first on PYTHONPATH."""
    paths = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths = [str(BOOTSTRAP), *(p for p in paths if p != str(BOOTSTRAP))]
    return {**environ, "PYTHONPATH": os.pathsep.join(paths)}


def run(command: list[str]) -> int:
    """Replace this process with `command`, seawall applied to the Python programs it starts."""
    if not command:
        print(
            "seawall run: give the command to run, e.g. seawall run python app.py", file=sys.stderr
        )
        return 2
    try:
        os.execvpe(command[0], command, environment(dict(os.environ)))
    except OSError as error:
        print(f"seawall run: cannot run {command[0]!r}: {error.strerror or error}", file=sys.stderr)
        return 127


def start() -> None:
    """Apply seawall from $SEAWALL_CONFIG (a bad configuration ends the process, one message)."""
    from .instrumentation import SeawallInstrumentor

    SeawallInstrumentor().instrument(at_start_up=True)
    # Under `opentelemetry-instrument` too, OpenTelemetry need not apply it a second time.
    skipped = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    if "seawall" not in (name.strip() for name in skipped.split(",")):
        os.environ["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = ",".join(
            filter(None, (skipped, "seawall"))
        )


def chain_next_sitecustomize(ours: str) -> None:
    """Import the `sitecustomize` that ours shadows, if there is one."""
    here = str(Path(ours).resolve().parent)
    ours_module = sys.modules.pop("sitecustomize", None)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if p and str(Path(p).resolve()) != here]
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as error:
        if error.name != "sitecustomize":
            raise
        if ours_module is not None:
            sys.modules["sitecustomize"] = ours_module
    finally:
        sys.path[:] = saved
