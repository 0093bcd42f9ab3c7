"""External programs some tests need (Debian's prometheus, docker-compose).

Locally a missing program skips the test with the reason; under `.ci/run` (which installs them and
sets SEAWALL_REQUIRE_TOOLS=1) a missing program fails it, so a broken install cannot pass quietly.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require(program: str, package: str) -> None:
    """Skip (or, under CI, fail) the calling test when `program` is not on PATH."""
    if shutil.which(program) is not None:
        return
    reason = f"needs `{program}` from Debian's {package} (.ci/run installs it)"
    if os.environ.get("SEAWALL_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)
