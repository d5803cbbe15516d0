"""Turning a partner's HTTP response into a payload or a typed error: shared by every client, sync and async.

Both partners speak JSON with their own error bodies (Biomesight `{"error": ...}`, Gencove's Django REST
Framework `{"detail": ...}`, per-field dicts or bare lists, and a maintenance page on 503); this module knows
all of them, so the clients only say which keys a payload must have.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from extract.errors import (
    Conflict,
    FatalError,
    Forbidden,
    Invalid,
    MalformedResponse,
    NotFound,
    NotReady,
    PartnerError,
    RateLimited,
    ServerError,
    Unauthorized,
)
from extract.redaction import describe_request, excerpt, redact_text
from extract.retry import ATTEMPTS_EXTENSION, parse_retry_after

_MESSAGE_LIMIT = 300
_NOT_READY_REASONS = {202: "not ready yet (202: still processing)", 203: "report not ready yet (203)"}


def _attempts(response: httpx.Response) -> int:
    return int(response.extensions.get(ATTEMPTS_EXTENSION, 1))


def _hint(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _flatten_messages(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [message for item in value for message in _flatten_messages(item)]
    if isinstance(value, dict):
        return [f"{key}: {message}" for key, item in value.items() for message in _flatten_messages(item)]
    return [str(value)]


def partner_message(response: httpx.Response) -> str:
    """The partner's own words about what went wrong, redacted and short, whatever error dialect it used."""
    body = _json_or_none(response)
    if isinstance(body, dict):
        for key in ("error", "detail", "maintenance_message", "message", "error_description"):
            if isinstance(body.get(key), str) and body[key]:
                text = body[key]
                break
        else:
            text = "; ".join(_flatten_messages(body))
    elif isinstance(body, list):
        text = "; ".join(_flatten_messages(body))
    else:
        text = response.text
    text = redact_text(" ".join(text.split()))
    return text if len(text) <= _MESSAGE_LIMIT else f"{text[: _MESSAGE_LIMIT - 1]}…"


def field_errors(response: httpx.Response) -> dict[str, list[str]]:
    """DRF per-field validation messages (`{"field": ["message"]}`); empty for other error shapes."""
    body = _json_or_none(response)
    if not isinstance(body, dict) or "error" in body or "detail" in body:
        return {}
    return {
        str(key): [redact_text(message) for message in _flatten_messages(value)]
        for key, value in body.items()
    }


def raise_for_status(response: httpx.Response) -> None:
    """Raise the typed error for anything but a plain success; return for 200, 201 and other 2xx."""
    status = response.status_code
    if status in (200, 201) or (200 <= status < 300 and status not in _NOT_READY_REASONS):
        return
    endpoint = describe_request(response.request)
    message = f"{status} {response.reason_phrase}: {partner_message(response)}".rstrip(": ")
    error: PartnerError
    if status in _NOT_READY_REASONS:
        error = NotReady(
            f"{_NOT_READY_REASONS[status]}: {partner_message(response)}".rstrip(": "), status=status
        )
    elif status in (400, 422):
        error = Invalid(message, status=status, field_errors=field_errors(response))
    elif status == 401:
        error = Unauthorized(message, status=status)
    elif status == 403:
        error = Forbidden(message, status=status)
    elif status == 404:
        error = NotFound(message, status=status)
    elif status == 409:
        error = Conflict(message, status=status)
    elif status == 429:
        error = RateLimited(message, status=status, attempts=_attempts(response), retry_after=_hint(response))
    elif status >= 500:
        error = ServerError(message, status=status, attempts=_attempts(response), retry_after=_hint(response))
    else:
        error = FatalError(f"unexpected {message}", status=status)
    error.endpoint = endpoint
    raise error


def json_payload(response: httpx.Response) -> Any:
    """The body of a successful response as JSON, or `MalformedResponse` naming the endpoint."""
    raise_for_status(response)
    try:
        return json.loads(response.content)
    except ValueError:
        raise MalformedResponse(
            "success status but the body is not valid JSON",
            endpoint=describe_request(response.request),
            status=response.status_code,
            excerpt=excerpt(response.content),
        ) from None


def malformed(response: httpx.Response, problem: str) -> MalformedResponse:
    """A `MalformedResponse` for a body that parsed but does not have the promised shape."""
    return MalformedResponse(
        problem,
        endpoint=describe_request(response.request),
        status=response.status_code,
        excerpt=excerpt(response.content),
    )


def json_object(response: httpx.Response, required: Iterable[str] = ()) -> dict[str, Any]:
    """A JSON object payload that has every `required` key."""
    payload = json_payload(response)
    if not isinstance(payload, dict):
        raise malformed(response, f"expected a JSON object, got {type(payload).__name__}")
    missing = [key for key in required if key not in payload]
    if missing:
        raise malformed(response, f"JSON object lacks required key(s) {', '.join(missing)}")
    return payload


def base64_field(response: httpx.Response, key: str) -> bytes:
    """The decoded bytes of a base64 string under `key` (Biomesight's CSV and PDF results)."""
    payload = json_object(response, required=(key,))
    value = payload[key]
    if not isinstance(value, str):
        raise malformed(response, f"{key!r} should be a base64 string, got {type(value).__name__}")
    try:
        # MIME-style line breaks are harmless; anything else outside the alphabet means a corrupt payload.
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise malformed(response, f"{key!r} is not valid base64 ({exc})") from None
