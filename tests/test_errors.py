"""The client-flavoured rejections are declared classes: what a type checker sees is what
`except` catches at run time."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import httpx
import pytest
import requests
from mypy import api as mypy

import seawall
import seawall.aiohttp
import seawall.httpx
import seawall.requests
from seawall import errors

ROOT = Path(__file__).resolve().parent.parent

CALLER = """
import httpx
import seawall.aiohttp
import seawall.httpx
import seawall.requests


def status(client: httpx.Client) -> float:
    try:
        return client.get("http://127.0.0.1:9/").status_code
    except seawall.httpx.CircuitOpenError as error:
        return error.retry_in
    except (seawall.requests.BulkheadFullError, seawall.aiohttp.DeadlineExceeded):
        return 0.0
"""


def test_a_type_checker_accepts_except_clauses_naming_them(tmp_path):
    caller = tmp_path / "caller.py"
    caller.write_text(CALLER)
    out, err, code = mypy.run(["--strict", "--cache-dir", str(ROOT / ".mypy_cache"), str(caller)])
    assert code == 0, out + err


@pytest.mark.parametrize(
    "module, client_errors",
    [
        (
            seawall.httpx,
            (
                httpx.TransportError,
                httpx.TransportError,
                httpx.TransportError,
                httpx.TimeoutException,
            ),
        ),
        (
            seawall.requests,
            (
                requests.ConnectionError,
                requests.ConnectionError,
                requests.ConnectionError,
                requests.Timeout,
            ),
        ),
        (
            seawall.aiohttp,
            (
                aiohttp.ClientConnectionError,
                aiohttp.ClientConnectionError,
                aiohttp.ClientConnectionError,
                TimeoutError,
            ),
        ),
    ],
)
def test_each_is_the_seawall_rejection_and_the_clients_error(module, client_errors):
    for base, client_error in zip(errors.REJECTIONS, client_errors, strict=True):
        flavoured = module.ERRORS[base]
        assert flavoured is getattr(module, base.__name__)
        assert flavoured.__module__ == module.__name__
        error = flavoured("refused", dependency="d")
        assert isinstance(error, base) and isinstance(error, client_error)
        assert error.dependency == "d" and str(error) == "refused"


def test_a_table_must_name_one_subclass_of_each_rejection():
    with pytest.raises(TypeError, match="expected one subclass of each of CircuitOpenError"):
        errors.flavours(seawall.httpx.CircuitOpenError)
