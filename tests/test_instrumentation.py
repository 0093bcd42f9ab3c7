"""Auto-instrumentation: unmodified httpx, requests and aiohttp programs become resilient under
`opentelemetry-instrument`, and `seawall.instrument()` patches only what it should."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import httpx
import pytest
import requests

import seawall
from integrations.upstream import respond
from seawall.httpx import ResilientTransport
from seawall.instrumentation import SeawallInstrumentor
from seawall.requests import ResilientAdapter

BIN = Path(sys.executable).parent

# Unmodified programs: no seawall import, just the client. Each GETs the paths it is given and
# prints one line per request: the status, or the exception's class name.
PROGRAMS = {
    "httpx": """
import sys, httpx
with httpx.Client() as client:
    for url in sys.argv[1:]:
        try:
            print(client.get(url).status_code)
        except httpx.HTTPError as error:
            print(type(error).__name__)
""",
    "requests": """
import sys, requests
session = requests.Session()
for url in sys.argv[1:]:
    try:
        print(session.get(url, timeout=5).status_code)
    except requests.RequestException as error:
        print(type(error).__name__)
""",
    "aiohttp": """
import asyncio, sys, aiohttp
async def main():
    async with aiohttp.ClientSession() as session:
        for url in sys.argv[1:]:
            try:
                async with session.get(url) as response:
                    print(response.status)
            except aiohttp.ClientError as error:
                print(type(error).__name__)
asyncio.run(main())
""",
}

CONFIG = """
defaults:
  retry: {max_attempts: 4, backoff: {type: constant, base: 1ms, cap: 1ms, jitter: none}}
  breaker: false
dependencies:
  payments:
    match: {path: /pay}
    retry: {max_attempts: 2}
  flaky:
    match: {path: /flaky}
    retry: {max_attempts: 1}
    breaker: {consecutive_failures: 2, open_for: 30s}
"""


def run_program(tmp_path: Path, client: str, urls: list[str], **env: str) -> list[str]:
    program = tmp_path / f"{client}_app.py"
    program.write_text(PROGRAMS[client])
    config = tmp_path / "seawall.yaml"
    config.write_text(CONFIG)
    environment = {
        **os.environ,
        "SEAWALL_CONFIG": str(config),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        **env,
    }
    done = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(program), *urls],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("client", sorted(PROGRAMS))
def test_unmodified_program_gets_retries_breaker_and_config_matching(tmp_path, upstream, client):
    upstream.script("/retry", respond(503), respond(503), respond(200))
    upstream.default = respond(503)
    urls = [
        upstream.url + "/retry",
        upstream.url + "/pay",
        upstream.url + "/other",
        *[upstream.url + "/flaky"] * 4,
    ]
    assert run_program(tmp_path, client, urls) == [
        "200",
        "503",
        "503",
        "503",
        "503",
        "CircuitOpenError",
        "CircuitOpenError",
    ]
    assert upstream.hits("/retry") == 3  # retried until it worked
    assert upstream.hits("/pay") == 2  # the payments dependency: 2 attempts
    assert upstream.hits("/other") == 4  # the defaults: 4 attempts
    assert upstream.hits("/flaky") == 2  # the breaker opened after 2 failures


@pytest.mark.parametrize(
    "switch", [{"SEAWALL_DISABLED": "true"}, {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "seawall"}]
)
def test_it_can_be_switched_off(tmp_path, upstream, switch):
    upstream.default = respond(503)
    assert run_program(tmp_path, "httpx", [upstream.url + "/off"], **switch) == ["503"]
    assert upstream.hits("/off") == 1


@pytest.fixture
def instrumented():
    instrumentor = seawall.instrument(config={"defaults": {"retry": {"max_attempts": 2}}})
    yield instrumentor
    instrumentor.uninstrument()


def test_httpx_transports_are_wrapped_not_replaced(instrumented):
    mine = httpx.HTTPTransport(retries=1)
    explicit = ResilientTransport(seawall.Policy("explicit", telemetry=False))
    with (
        httpx.Client() as default,
        httpx.Client(transport=mine) as passed,
        httpx.Client(transport=explicit) as left_alone,
        httpx.Client(mounts={"http://x": httpx.HTTPTransport()}) as mounted,
    ):
        assert isinstance(default._transport, ResilientTransport)
        assert passed._transport.transport is mine
        assert left_alone._transport is explicit
        assert all(isinstance(t, ResilientTransport) for t in mounted._mounts.values())


def test_requests_adapters_are_resilient_and_mounted_ones_wrapped(instrumented):
    session = requests.Session()
    assert all(isinstance(a, ResilientAdapter) for a in session.adapters.values())
    custom = requests.adapters.HTTPAdapter(pool_maxsize=3)
    session.mount("http://custom/", custom)
    assert session.adapters["http://custom/"].inner is custom


def test_aiohttp_sessions_get_the_middleware_first(instrumented):
    async def user_middleware(request, handler):
        return await handler(request)

    async def main():
        async with aiohttp.ClientSession(middlewares=[user_middleware]) as session:
            return [m.__name__ for m in session._middlewares]

    assert asyncio.run(main()) == ["seawall_middleware", "user_middleware"]


def test_uninstrument_restores_plain_clients():
    instrumentor = seawall.instrument(config={})
    instrumentor.uninstrument()
    with httpx.Client() as client:
        assert not isinstance(client._transport, ResilientTransport)
    assert not any(isinstance(a, ResilientAdapter) for a in requests.Session().adapters.values())
    assert SeawallInstrumentor()._patches == []


def test_the_entry_point_is_registered():
    from importlib.metadata import entry_points

    (found,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "seawall"]
    assert found.load() is SeawallInstrumentor


def test_the_instrumentor_is_reachable_where_the_docs_name_it():
    from seawall.instrumentation import SeawallInstrumentor

    assert seawall.instrument.SeawallInstrumentor is SeawallInstrumentor
    entry_points = importlib.metadata.entry_points(group="opentelemetry_instrumentor")
    (ours,) = [ep for ep in entry_points if ep.name == "seawall"]
    assert ours.load() is SeawallInstrumentor


# A bad configuration stops the program at start-up, with one message and a non-zero status.
BAD_CONFIGS = {
    "typo in a key": (
        "defaults:\n  retry: {max_attempt: 2}\n",
        {},
        "defaults.retry.max_attempt: unknown key (did you mean max_attempts?)",
    ),
    "bad duration": (
        "defaults:\n  timeouts: {total: 10 sec}\n",
        {},
        "defaults.timeouts.total: must be a duration",
    ),
    "bad YAML": ("defaults: {retry: [\n", {}, "not valid YAML"),
    "missing file": (None, {}, "cannot read the file: No such file or directory"),
    "bad override": (
        "defaults: {}\n",
        {"SEAWALL_TIMEOUT_TOTAL": "5s"},
        "defaults.timeouts (total set by $SEAWALL_TIMEOUT_TOTAL): attempt (10.0 s) "
        "must not exceed total (5.0 s)",
    ),
}
STARTS = """
import sys
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
print("app ran; httpx instrumented:", HTTPXClientInstrumentor().is_instrumented_by_opentelemetry)
"""


def _start(tmp_path: Path, case: str, command: list[str], **env: str):
    text, extra, _ = BAD_CONFIGS[case]
    config = tmp_path / "seawall.yaml"
    if text is not None:
        config.write_text(text)
    program = tmp_path / "app.py"
    program.write_text(STARTS)
    environment = {
        **os.environ,
        "SEAWALL_CONFIG": str(config),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        **extra,
        **env,
    }
    return subprocess.run(
        [*command, str(program)], capture_output=True, text=True, env=environment, timeout=60
    )


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_bad_configuration_stops_opentelemetry_instrument_with_one_message(tmp_path, case):
    done = _start(tmp_path, case, [str(BIN / "opentelemetry-instrument"), sys.executable])
    expected = BAD_CONFIGS[case][2]
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "app ran" not in done.stdout
    assert done.stderr.count(expected) == 1, done.stderr
    assert done.stderr.startswith("seawall: not started, the program is stopped: ")
    assert "Traceback" not in done.stderr and "SEAWALL_DISABLED=true" in done.stderr


@pytest.mark.parametrize("case", ["typo in a key", "missing file"])
def test_a_bad_configuration_stops_seawall_instrument_with_one_message(tmp_path, case):
    program = tmp_path / "calls_instrument.py"
    program.write_text("import seawall\nseawall.instrument()\nprint('app ran')\n")
    done = _start(tmp_path, case, [sys.executable, str(program)])
    assert done.returncode == 1 and "app ran" not in done.stdout
    assert done.stderr.count(BAD_CONFIGS[case][2]) == 1 and "Traceback" not in done.stderr


def test_continuing_without_seawall_is_opt_in_and_keeps_other_instrumentations(tmp_path):
    done = _start(
        tmp_path,
        "typo in a key",
        [str(BIN / "opentelemetry-instrument"), sys.executable],
        SEAWALL_ON_CONFIG_ERROR="continue",
    )
    assert done.returncode == 0, done.stderr
    assert "app ran; httpx instrumented: True" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "seawall" in line]
    assert len(warnings) == 1 and "seawall is NOT applied" in warnings[0], done.stderr
    assert "Traceback" not in done.stderr


def _run_launched(tmp_path, upstream, launcher, **env):
    upstream.script("/launch", respond(503), respond(200))
    program = tmp_path / "httpx_app.py"
    program.write_text(PROGRAMS["httpx"])
    config = tmp_path / "seawall.yaml"
    config.write_text(CONFIG)
    # No OTEL_*_EXPORTER: OpenTelemetry's start-up wants an OTLP gRPC exporter that is not
    # installed, as on a machine that followed only `pip install seawall[all]`.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment.update(SEAWALL_CONFIG=str(config), **env)
    return subprocess.run(
        [*launcher, sys.executable, str(program), upstream.url + "/launch"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )


@pytest.mark.parametrize(
    "launcher", [["seawall", "run"], ["opentelemetry-instrument", "seawall", "run"]]
)
def test_seawall_run_applies_it_with_no_opentelemetry_set_up(tmp_path, upstream, launcher):
    done = _run_launched(
        tmp_path, upstream, [str(BIN / name) if name != "run" else name for name in launcher]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200"] and upstream.hits("/launch") == 2  # retried


def test_seawall_run_stops_on_a_bad_configuration(tmp_path, upstream):
    done = _start(tmp_path, "typo in a key", [str(BIN / "seawall"), "run", sys.executable])
    assert done.returncode == 1 and "app ran" not in done.stdout
    assert done.stderr.count("did you mean max_attempts?") == 1 and "Traceback" not in done.stderr
