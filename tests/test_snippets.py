"""Every Python snippet of README.md and docs/*.md runs as pasted: a file's snippets in order,
in one fresh interpreter (later snippets may use what earlier ones defined), after nothing but
what they import themselves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Web frameworks some snippets mount seawall's admin surface in: not dependencies of seawall or
#: of its tests, so such a snippet is compiled, and run up to its import of one of them.
FRAMEWORKS = {"fastapi", "flask", "werkzeug", "starlette", "django"}
RUNNER = """
import sys, traceback
namespace = {"__name__": "__main__"}
for number, snippet in enumerate(SNIPPETS, 1):
    try:
        exec(compile(snippet, f"snippet {number}", "exec"), namespace)
    except ModuleNotFoundError as error:
        if error.name not in FRAMEWORKS:
            traceback.print_exc()
            sys.exit(1)
        print(f"snippet {number}: needs {error.name}")
    except BaseException:
        print(f"snippet {number} failed:\\n{snippet}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
"""


def snippets(document: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", document.read_text(), re.S | re.M)


def test_the_documents_have_snippets():
    assert len(snippets(ROOT / "README.md")) >= 3


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if snippets(d)], ids=lambda d: d.name)
def test_every_snippet_runs_as_pasted(document, tmp_path):
    program = tmp_path / "snippets.py"
    program.write_text(f"SNIPPETS = {snippets(document)!r}\nFRAMEWORKS = {FRAMEWORKS!r}\n{RUNNER}")
    # the tokens the snippets read from the environment, as the docs tell users to set them
    environment = {
        **os.environ,
        "SEAWALL_ADMIN_READ_TOKEN": "read-" + "x" * 20,
        "SEAWALL_ADMIN_CONTROL_TOKEN": "control-" + "x" * 20,
        # docs/testing.md imports the fake upstream of integrations/, as a checkout would
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, str(program)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert done.returncode == 0, done.stderr


def test_submodules_load_on_attribute_access_after_a_plain_import():
    code = (
        "import seawall\n"
        "seawall.httpx.AsyncResilientTransport, seawall.requests.ResilientAdapter\n"
        "seawall.aiohttp.middleware, seawall.telemetry.otel.Telemetry, seawall.config.load\n"
        "assert 'httpx' in dir(seawall)\n"
        "try:\n    seawall.nothing\nexcept AttributeError as error:\n"
        "    assert \"no attribute 'nothing'\" in str(error)\nelse:\n    raise SystemExit(1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
