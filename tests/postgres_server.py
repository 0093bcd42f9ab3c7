"""A real PostgreSQL server for the tests, from Debian's `postgresql` package: initdb into a
private directory, started on a free loopback port with its socket in that directory (as
`nobody`: initdb refuses root), stopped by its pid."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _bin(program: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"))
    return found[-1] if found else shutil.which(program)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def postgres() -> Iterator[str]:
    """The DSN of a fresh server, running until the block ends."""
    initdb, postgres_bin = _bin("initdb"), _bin("postgres")
    if initdb is None or postgres_bin is None:
        reason = "needs PostgreSQL from Debian's postgresql package (.ci/run installs it)"
        if os.environ.get("SEAWALL_REQUIRE_TOOLS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    home = tempfile.mkdtemp(prefix="seawall-pg-")
    data = os.path.join(home, "data")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        os.chown(home, 65534, 65534)  # nobody
        as_user = ["runuser", "-u", "nobody", "--"]
    port = _free_port()
    subprocess.run(
        [*as_user, initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = open(os.path.join(home, "log"), "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            *as_user,
            postgres_bin,
            "-D",
            data,
            "-p",
            str(port),
            "-k",
            home,
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        deadline = time.monotonic() + 60.0
        import psycopg

        while True:
            try:
                psycopg.connect(dsn, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    with open(os.path.join(home, "log"), encoding="utf-8", errors="replace") as f:
                        raise RuntimeError(
                            f"PostgreSQL did not start: {f.read()[-2000:]}"
                        ) from None
                time.sleep(0.1)
        yield dsn
    finally:
        pid = _postmaster_pid(data) or server.pid
        os.kill(pid, signal.SIGINT)  # fast shutdown
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _postmaster_pid(data: str) -> int | None:
    try:
        with open(os.path.join(data, "postmaster.pid"), encoding="ascii") as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None
