"""Sanitizers applied to URLs, headers and body excerpts before anything reaches a log line or an exception.

Presigned download URLs carry their credential in the query string (S3's X-Amz-Signature and friends), tokens
travel in headers, and error bodies sometimes echo both; each is scrubbed here, in one place, so that a new
log line cannot forget to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

REDACTED = "REDACTED"

# Query parameters whose values grant access. Matching is case-insensitive and also catches any `x-amz-*`,
# `x-goog-*` parameter, which is how S3 and GCS presign URLs.
SENSITIVE_QUERY_PARAMS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "auth",
        "client_secret",
        "code",
        "credential",
        "key",
        "password",
        "secret",
        "sig",
        "signature",
        "token",
        "expires",
        "policy",
        "key-pair-id",
    }
)
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "cookie",
        "set-cookie",
        "gencove-signature",
    }
)
_CLOUD_PARAM_PREFIXES = ("x-amz-", "x-goog-")
_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>\\]+")
# "access_token": "..." / access_token=... / Bearer ... / Api-Key ... inside free text such as an error body.
_SECRET_IN_TEXT = re.compile(
    r"(?i)(?P<key>\"?(?:access_token|refresh_token|client_secret|api_key|apikey|password|secret|token)\"?\s*[:=]\s*\"?)"
    r"(?P<value>[^\s\",&}]+)"
)
_SCHEME_IN_TEXT = re.compile(r"(?i)\b(?P<scheme>Bearer|Basic|Api-Key)\s+(?P<value>[A-Za-z0-9._~+/=-]+)")


def _is_sensitive_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in SENSITIVE_QUERY_PARAMS or lowered.startswith(_CLOUD_PARAM_PREFIXES)


def redact_url(url: str | httpx.URL) -> str:
    """The URL with credentials in userinfo and the values of sensitive query parameters replaced."""
    parts = urlsplit(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(name, REDACTED if _is_sensitive_param(name) else value) for name, value in pairs], safe="/:,"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | httpx.Headers) -> dict[str, str]:
    """The headers as a plain dict, with those that authenticate replaced."""
    items = headers.items() if isinstance(headers, Mapping | httpx.Headers) else headers
    return {name: REDACTED if name.lower() in SENSITIVE_HEADERS else value for name, value in items}


def redact_text(text: str) -> str:
    """Free text (an error body, an exception message) with URLs sanitized and token-like values removed."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
    text = _SECRET_IN_TEXT.sub(lambda match: f"{match.group('key')}{REDACTED}", text)
    return _SCHEME_IN_TEXT.sub(lambda match: f"{match.group('scheme')} {REDACTED}", text)


def excerpt(body: bytes | str, limit: int = 160) -> str:
    """A short, redacted, single-line start of a body: enough for a person to recognise what came back."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    # Cut generously before redacting so that a URL cut in half is still recognised as one, then cut again.
    text = redact_text(" ".join(text[: limit * 4].split()))
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def describe_request(request: httpx.Request) -> str:
    """'METHOD sanitized-url': how a request is named in logs and in `PartnerError.endpoint`."""
    return f"{request.method} {redact_url(request.url)}"
