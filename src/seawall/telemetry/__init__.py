"""Listeners that make seawall's events visible: OpenTelemetry spans and metrics (`otel`,
needs `opentelemetry-api`), the `seawall` logger (`logs`), and the one place where URLs are
redacted (`redact`). Nothing here is imported by the policies."""

from .. import _lazy
from .redact import SENSITIVE_QUERY_KEYS, redact, redact_url

# `seawall.telemetry.otel.Telemetry` works without importing `seawall.telemetry.otel` first.
__getattr__, __dir__ = _lazy.submodules(__name__, ("logs", "official", "otel"), globals())

__all__ = ["SENSITIVE_QUERY_KEYS", "redact", "redact_url"]
