"""Redaction, in one place: what may be recorded of a URL.

Never recorded anywhere (spans, events, metrics, logs, error messages): URL user-info, and the
values of sensitive query parameters. seawall records no request or response headers at all,
so `Authorization`, `Cookie` and the like never leave the client.

Query keys are compared case-insensitively and percent-decoded (`X%2DAmz%2DSignature` is
`X-Amz-Signature`), in `&`- and `;`-separated queries alike: a key that only differs in spelling
from a sensitive one reaches the same server code, so it is just as secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

#: The query keys whose values are never recorded, by default: OpenTelemetry's four
#: (`AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`), the signed-URL parameters of
#: AWS and Google Cloud, and the names services use for tokens, API keys and passwords.
#: `Telemetry(sensitive_query_keys=...)` replaces this list, `Telemetry(redact_query=...)` adds
#: to it.
SENSITIVE_QUERY_KEYS = frozenset(
    {
        # OpenTelemetry HTTP semantic conventions
        "AWSAccessKeyId",
        "Signature",
        "sig",
        "X-Goog-Signature",
        # signed URLs: AWS SigV4, Google Cloud Storage V4
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "X-Goog-Credential",
        # OAuth 2.0 (RFC 6749, 7523) and OpenID Connect
        "access_token",
        "refresh_token",
        "id_token",
        "code",
        "client_secret",
        "client_assertion",
        "assertion",
        # tokens, keys and passwords as services name them
        "token",
        "auth",
        "auth_token",
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "key",
        "subscription-key",
        "private_token",
        "password",
        "passwd",
        "pwd",
        "secret",
        "session",
        "sessionid",
        "jwt",
    }
)
REDACTED = "REDACTED"

_SEPARATORS = re.compile(r"([&;])")


def query_keys(names: Iterable[str]) -> frozenset[str]:
    """`names` in the form `redact` compares query keys in: percent-decoded, lower case."""
    return frozenset(unquote(name).lower() for name in names)


DEFAULT_KEYS = query_keys(SENSITIVE_QUERY_KEYS)


def redact(url: str, keys: frozenset[str] = DEFAULT_KEYS) -> str:
    """`url` with user-info replaced by REDACTED:REDACTED, the values of the query parameters
    named in `keys` (made by `query_keys`) replaced by REDACTED, and any fragment dropped."""
    if "?" not in url and "@" not in url and "#" not in url:
        return url  # nothing to take out (most URLs): no parsing
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED  # unparseable: record nothing of it
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}:{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pieces = _SEPARATORS.split(query)  # separators kept, at the odd indexes
        for index in range(0, len(pieces), 2):
            key, equals, _ = pieces[index].partition("=")
            if equals and unquote(key).lower() in keys:
                pieces[index] = f"{key}={REDACTED}"
        query = "".join(pieces)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_url(
    url: str, extra_keys: Iterable[str] = (), *, keys: Iterable[str] = SENSITIVE_QUERY_KEYS
) -> str:
    """`redact` with the default keys and `extra_keys` (or `keys` instead of the default)."""
    return redact(url, query_keys((*keys, *extra_keys)))
