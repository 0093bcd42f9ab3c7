"""Listeners that make seawall's events visible: OpenTelemetry spans and metrics (`otel`,
needs `opentelemetry-api`), the `seawall` logger (`logs`), and the one place where URLs are
redacted (`redact`). Nothing here is imported by the policies."""

from .redact import SENSITIVE_QUERY_KEYS, redact, redact_url

__all__ = ["SENSITIVE_QUERY_KEYS", "redact", "redact_url"]
