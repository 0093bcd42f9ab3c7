"""The admin surface with no code: the config's `admin:` section under
`opentelemetry-instrument`, and `seawall status` printing a running process's snapshot."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import seawall
from integrations.upstream import respond
from seawall.cli import main
from seawall.config import ConfigError, load
from seawall.httpx import ResilientTransport
from tests.admin_fronts import CONTROL, READ

BIN = Path(sys.executable).parent

# An unmodified program: it opens the breaker of `flaky`, then asks its own admin server (the
# one the config started) what it sees, as any operator would.
PROGRAM = """
import json, os, sys, urllib.request, httpx
with httpx.Client() as client:
    for _ in range(3):
        try:
            client.get(sys.argv[1])
        except httpx.HTTPError as error:
            print(type(error).__name__)
ask = urllib.request.Request(sys.argv[2] + "/breakers/flaky",
                             headers={"Authorization": "Bearer " + os.environ["ADMIN_READ"]})
print(json.dumps(json.load(urllib.request.urlopen(ask, timeout=5))))
import time
letters = urllib.request.Request(sys.argv[2] + "/dead-letters", headers=ask.headers)
for _ in range(50):  # the writer thread stores them a moment later
    kept = json.load(urllib.request.urlopen(letters, timeout=5))["dead_letters"]
    if len(kept) == 3:
        break
    time.sleep(0.1)
print(json.dumps(sorted(x["reason"] for x in kept)))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unmodified_program_gets_the_admin_api_from_its_config(tmp_path, upstream):
    upstream.default = respond(503)
    port = free_port()
    config = tmp_path / "seawall.yaml"
    config.write_text(f"""
defaults: {{retry: {{max_attempts: 1}}}}
dependencies:
  flaky:
    match: {{path: /flaky}}
    breaker: {{consecutive_failures: 2, open_for: 30s}}
    dead_letters: {{store: "{tmp_path / "letters.db"}"}}
admin:
  listen: 127.0.0.1:{port}
  read_token_env: ADMIN_READ
  control_token_env: ADMIN_CONTROL
""")
    program = tmp_path / "app.py"
    program.write_text(PROGRAM)
    env = {
        **os.environ,
        "SEAWALL_CONFIG": str(config),
        "ADMIN_READ": READ,
        "ADMIN_CONTROL": CONTROL,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    done = subprocess.run(
        [
            str(BIN / "opentelemetry-instrument"),
            sys.executable,
            str(program),
            upstream.url + "/flaky",
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    *errors, answer, letters = done.stdout.strip().splitlines()
    assert json.loads(letters) == ["breaker", "failure", "failure"]  # kept, and served
    assert errors == ["CircuitOpenError"]  # 503, 503, then the open breaker
    [breaker] = json.loads(answer)["breakers"]
    assert (breaker["state"], breaker["window"]["calls"], breaker["window"]["rejected"]) == (
        "open",
        2,
        1,
    )
    assert upstream.hits("/flaky") == 2


def test_the_admin_section_is_validated_with_the_rest_of_the_file():
    config = load(
        {
            "admin": {
                "listen": "[::1]:0",
                "routes": ["health", "status"],
                "health": {"critical": ["payments"], "rejecting_within": "30s"},
            }
        }
    )
    assert config.admin is not None
    assert (config.admin.host, config.admin.port, config.admin.routes) == (
        "::1",
        0,
        frozenset({"health", "status"}),
    )
    assert config.admin.read_token_env == "SEAWALL_ADMIN_READ_TOKEN"
    assert config.admin.health.critical == {"payments"}
    assert config.admin.health.rejecting_within == 30
    assert load({}).admin is None and load({"admin": True}).admin is not None
    with pytest.raises(ConfigError) as caught:
        load(
            {
                "admin": {
                    "listen": "9901",
                    "read_token_env": "my secret token",
                    "routes": ["health", "everything"],
                    "max_event_clients": -1,
                    "health": {"critical_share": 2, "colour": "red"},
                    "port": 1,
                }
            }
        )
    assert caught.value.problems == [
        "admin.port: unknown key; expected listen, read_token_env, control_token_env, routes, "
        "max_event_clients, service, health",
        "admin.listen: '9901'; expected host:port, e.g. 127.0.0.1:9901 or [::1]:9901 "
        "(port 0: any free one)",
        "admin.read_token_env: 'my secret token'; expected the name of an environment variable "
        "(the token itself never goes in the file)",
        "admin.routes: ['health', 'everything']; expected a list of some of breakers, "
        "bulkheads, controls, dead-letters, events, health, page, status",
        "admin.max_event_clients: -1; expected a whole number >= 0",
        "admin.health.critical_share: 2; expected a number from 0 to below 1",
        "admin.health.colour: unknown key; expected critical, critical_share, rejecting_within",
    ]


def test_seawall_status_prints_a_running_process_snapshot_as_a_table(upstream, monkeypatch, capsys):
    upstream.default = respond(503)
    policy = seawall.Policy(
        "cli-pay", retry=None, breaker=seawall.CircuitBreaker(consecutive_failures=2, open_for=30)
    )
    with httpx.Client(transport=ResilientTransport(policy)) as client:
        for _ in range(2):
            client.get(upstream.url + "/x")
    seawall.admin.isolate("cli-pay", policies=[policy], reason="drill", by="alice")
    with seawall.admin.serve(port=0, read_token=READ, policies=[policy], service="shop") as server:
        monkeypatch.setenv("MY_TOKEN", READ)
        assert main(["status", "--url", server.url, "--token-env", "MY_TOKEN"]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].startswith(f"shop  pid {os.getpid()} on ")
        assert table[2].split() == [
            "DEPENDENCY",
            "BREAKER",
            "STATE",
            "CALLS",
            "FAIL%",
            "SLOW%",
            "REJECTED",
            "PROBE",
            "IN",
            "BULKHEAD",
            "BUDGET",
            "FLEET",
            "MANUAL",
        ]
        assert table[3].split()[:8] == [
            "cli-pay",
            "cli-pay",
            "isolated",
            "2",
            "100.0",
            "0.0",
            "0",
            "never",
        ]  # isolating keeps the window
        assert table[3].endswith("isolate by alice: drill")
        assert main(["status", "--url", server.url, "--token-env", "MY_TOKEN", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["dependencies"][0]["name"] == "cli-pay"
        monkeypatch.setenv("MY_TOKEN", "not-the-token-at-all")
        assert main(["status", "--url", server.url, "--token-env", "MY_TOKEN"]) == 1
        assert "answered 401 the bearer token is not one" in capsys.readouterr().err
        port = server.port
    assert main(["status", "--url", f"http://127.0.0.1:{port}", "--token-env", "MY_TOKEN"]) == 1
    assert "cannot read" in capsys.readouterr().err
    monkeypatch.delenv("MY_TOKEN")
    assert main(["status", "--token-env", "MY_TOKEN"]) == 2
    assert "$MY_TOKEN holds no token" in capsys.readouterr().err


def test_a_dependency_marked_critical_joins_the_health_rules():
    config = load(
        {
            "dependencies": {
                "payments": {"critical": True, "match": {"path": "/pay"}},
                "search": {"critical": False, "match": {"path": "/s"}},
            },
            "admin": {"health": {"critical": ["ledger"]}},
        }
    )
    assert config.admin is not None
    assert config.admin.health.critical == {"payments", "ledger"}
    assert load(
        {"dependencies": {"payments": {"critical": True, "match": {"path": "/p"}}}, "admin": True}
    ).admin.health.critical == {"payments"}  # type: ignore[union-attr]
    with pytest.raises(ConfigError) as caught:
        load(
            {
                "dependencies": {"payments": {"critical": "yes", "match": {"path": "/p"}}},
                "admin": True,
            }
        )
    assert caught.value.problems == [
        "dependencies.payments.critical: 'yes'; expected true or false"
    ]
