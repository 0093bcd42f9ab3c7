"""The README's zero-code lines, run as written in a fresh virtual environment: `python -m
venv`, then its `pip install` line with this checkout in place of the package name, then each
start-up line, against a program whose first request gets a 503.

This test installs packages (from pip's cache when warm): about 30 s on a warm cache, a few
minutes on a cold one. It is marked `fresh_install`; `make test` runs it
(`pytest -m "not fresh_install"` skips it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.upstream import respond

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

APP = """
import os, httpx
with httpx.Client() as client:
    response = client.get(os.environ["APP_URL"])
    print("status", response.status_code)
"""


def zero_code_lines() -> list[str]:
    section = README.split("## Zero code", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def seawall_yaml() -> str:
    block = README.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block.startswith("# seawall.yaml"), block
    return block


@pytest.mark.fresh_install
@pytest.mark.timeout(900)
def test_the_readme_zero_code_lines_work_in_a_fresh_venv(tmp_path, upstream):
    lines = zero_code_lines()
    install, starts = lines[0], lines[1:]
    assert install == "pip install 'seawall[all]' opentelemetry-distro"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    (tmp_path / "seawall.yaml").write_text(seawall_yaml())
    (tmp_path / "app.py").write_text(APP)
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "SEAWALL_", "VIRTUAL_ENV", "PYTHON"))
    }
    environment.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        APP_URL=upstream.url + "/zero",
    )
    # The README's line, with this checkout in place of the released package.
    local = install.replace("'seawall[all]'", f"'{ROOT}[all]'")
    done = subprocess.run(
        ["bash", "-c", local + " --quiet"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    starting = [line for line in starts if not line.startswith("export ")]
    exports = [line for line in starts if line.startswith("export ")]
    assert len(starting) == 2, starts
    for line in starting:
        upstream.script("/zero", respond(503), respond(200))
        before = upstream.hits("/zero")
        script = "\n".join([*(exports if "opentelemetry-instrument" in line else []), line])
        done = subprocess.run(
            ["bash", "-c", "set -e\n" + script],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (line, done.stderr[-3000:])
        assert re.search(r"^status 200$", done.stdout, re.M), (line, done.stdout[-2000:])
        assert upstream.hits("/zero") - before == 2, line  # the 503 was retried
        assert "Traceback" not in done.stderr, (line, done.stderr[-3000:])
