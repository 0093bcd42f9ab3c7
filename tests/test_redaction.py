"""Nothing secret in seawall's own output: redaction of URLs (unit tests), and seawall's error
messages, spans and logs over real sockets for every client flavour."""

from __future__ import annotations

import logging
import socket

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import seawall
from integrations.upstream import respond
from seawall.telemetry.otel import Telemetry
from seawall.telemetry.redact import REDACTED, SENSITIVE_QUERY_KEYS, query_keys, redact, redact_url

SECRET = "s3cr3t"


@pytest.mark.parametrize(
    "url, expected",
    [
        (
            "https://u:p@h:8443/a?sig=1&X-Amz-Signature=2&ok=3#frag",
            "https://REDACTED:REDACTED@h:8443/a?sig=REDACTED&X-Amz-Signature=REDACTED&ok=3",
        ),
        # any case
        (
            "http://h/a?SIG=1&x-amz-signature=2&Token=3",
            "http://h/a?SIG=REDACTED&x-amz-signature=REDACTED&Token=REDACTED",
        ),
        # `;`-separated, or both separators in one query
        ("http://h/a?sig=1;ok=2;api_key=3", "http://h/a?sig=REDACTED;ok=2;api_key=REDACTED"),
        (
            "http://h/a?ok=1;password=2&secret=3",
            "http://h/a?ok=1;password=REDACTED&secret=REDACTED",
        ),
        # percent-encoded keys (upper and lower case hex), kept as they were sent
        (
            "http://h/a?X%2DAmz%2DSignature=1&x%2damz%2dcredential=2&%73ig=3",
            "http://h/a?X%2DAmz%2DSignature=REDACTED&x%2damz%2dcredential=REDACTED&%73ig=REDACTED",
        ),
        # an empty value is still replaced; a key with no `=` has no value to hide
        ("http://h/a?token=&sig", "http://h/a?token=REDACTED&sig"),
        # the value's own encoding does not matter, and nothing else is touched
        ("http://h/a?access_token=a%26b&q=token", "http://h/a?access_token=REDACTED&q=token"),
        ("http://h/p", "http://h/p"),
        ("http://h/p#frag", "http://h/p"),
        ("http://[::1/p?sig=1", REDACTED),  # unparseable: nothing of it
    ],
)
def test_redaction(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize("key", sorted(SENSITIVE_QUERY_KEYS))
def test_every_default_key_is_redacted_in_any_case(key):
    for spelling in (key, key.lower(), key.upper()):
        assert (
            redact_url(f"http://h/?{spelling}={SECRET}&ok=1")
            == f"http://h/?{spelling}=REDACTED&ok=1"
        )


def test_the_default_list_goes_beyond_opentelemetrys_with_names_services_use():
    assert {"AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"} < SENSITIVE_QUERY_KEYS
    assert {
        "token",
        "access_token",
        "api_key",
        "apikey",
        "password",
        "secret",
        "client_secret",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
    } < SENSITIVE_QUERY_KEYS


def test_the_list_can_be_extended_or_replaced():
    url = "http://h/?sig=1&Tenant-Key=2&q=3"
    assert redact_url(url, ["tenant-key"]) == "http://h/?sig=REDACTED&Tenant-Key=REDACTED&q=3"
    assert redact_url(url, keys=["TENANT%2DKEY"]) == "http://h/?sig=1&Tenant-Key=REDACTED&q=3"
    assert redact(url, query_keys([])) == url


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: connecting is refused


SECRET_QUERY = (
    f"?sig={SECRET}1&X-Amz-Signature={SECRET}2&X%2DAmz%2DCredential={SECRET}3"
    f";access_token={SECRET}4"
)


def test_retry_budget_exhausted_names_the_error_not_its_url(flavour, caplog):
    """The client's error can carry the whole URL (requests: "Max retries exceeded with url:
    /x?sig=..."): seawall's message names its type, and the error stays the __cause__."""
    policy = seawall.Policy(
        "stingy",
        breaker=None,
        telemetry=False,
        retry=seawall.Retry(
            backoff=seawall.Backoff.constant(0.001),
            budget=seawall.RetryBudget(ratio=0, min_per_second=0),
        ),
    )
    url = f"http://user:{SECRET}0@127.0.0.1:{closed_port()}/x{SECRET_QUERY}"
    caplog.set_level(logging.DEBUG, logger="seawall")
    with flavour.client(policy) as client, pytest.raises(seawall.RetryBudgetExhausted) as raised:
        client.request("GET", url)
    error = raised.value
    assert isinstance(error, client.transport_error)
    assert str(error).startswith("retry budget of 'stingy' is spent; not retrying after: ")
    cause = error.__cause__
    assert cause is not None
    assert str(error).endswith(f"{type(cause).__module__}.{type(cause).__qualname__}")
    logged = " ".join(
        r.getMessage() + str(r.__dict__) for r in caplog.records if r.name == "seawall"
    )
    for text in (str(error), repr(error), str(error.args), logged):
        assert SECRET not in text, text


def test_spans_redact_the_default_keys_in_every_spelling(flavour, upstream):
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    upstream.default = respond(200)
    policy = seawall.Policy("upstream", telemetry=Telemetry(tracer_provider=provider))
    with flavour.client(policy) as client:
        assert client.request("GET", upstream.url + "/s" + SECRET_QUERY + "&q=1").status == 200
    provider.shutdown()
    (attempt,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    (logical,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.INTERNAL]
    for span in (attempt, logical):
        full = span.attributes["url.full"]
        assert SECRET not in full and full.endswith("q=1"), full
        assert full.count(REDACTED) == 4, full
    assert SECRET in upstream.requests[0].query  # the upstream got the real values


def test_the_docs_list_every_default_key():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "telemetry.md").read_text()
    assert [key for key in sorted(SENSITIVE_QUERY_KEYS) if f"`{key}`" not in doc] == []
