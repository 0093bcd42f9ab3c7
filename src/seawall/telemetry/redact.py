"""Redaction, in one place: what may be recorded of a URL.

Never recorded anywhere (spans, events, metrics, logs): URL user-info, and the values of
sensitive query parameters (OpenTelemetry's list, case-sensitive as the semantic conventions
say, plus any names the user adds, compared case-insensitively). seawall records no request or
response headers at all, so `Authorization`, `Cookie` and the like never leave the client.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

#: The query keys whose values the HTTP semantic conventions require to be redacted.
SENSITIVE_QUERY_KEYS = frozenset({
    "AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature",
    "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token",
})
REDACTED = "REDACTED"


def redact_url(url: str, extra_keys: Iterable[str] = ()) -> str:
    """`url` with user-info replaced by REDACTED:REDACTED, the values of sensitive query
    parameters replaced by REDACTED, and any fragment dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED  # unparseable: record nothing of it
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}:{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        extra = {key.lower() for key in extra_keys}
        pieces = []
        for piece in query.split("&"):
            key, equals, _ = piece.partition("=")
            if equals and (key in SENSITIVE_QUERY_KEYS or key.lower() in extra):
                piece = f"{key}={REDACTED}"
            pieces.append(piece)
        query = "&".join(pieces)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
