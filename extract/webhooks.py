"""The partners' webhook receiver: an ASGI app that authenticates each push and lands its events before a 2xx.

Biomesight sends one status change per POST with `Authorization: Bearer <token we gave it>`; Gencove sends a
JSON array of events signed `Gencove-Signature: t=<unix>,v1=<hex HMAC-SHA512(secret, f"{t}.{raw body}")>`.
The app owns no storage: it calls the `land` callable it was given (blocking, durable when it returns) in a
worker thread, and answers 2xx only once every event of the request is landed, so a partner retries anything
that was not. Partners redeliver, so `land` deduplicates on event id and the answer counts duplicates.

Checks run cheapest and least revealing first: declared size (413), the header-only part of authentication
(401), the body read with a hard cap (413), the signature over the body (401), content type (415), JSON (400),
shape (422). An unauthenticated sender never learns anything about the body it sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from transform.biomesight import status_entity
from transform.events import SAFE_EVENT_ID
from transform.values import parse_timestamp

log = logging.getLogger(__name__)

EventKind = Literal["order_status", "kit_status", "gencove_event"]
BIOMESIGHT = "biomesight"
GENCOVE = "gencove"
SIGNATURE_HEADER = "Gencove-Signature"
DEFAULT_MAX_BODY_BYTES = 256 * 1024

_HEX = re.compile(r"^[0-9a-fA-F]+$")


@dataclass(frozen=True)
class LandedEvent:
    """One accepted partner event, as handed to `land`: `body` is that one event, exactly as sent."""

    provider: str
    event_id: str
    received_at: datetime
    body: dict[str, Any]
    kind: EventKind


Land = Callable[[LandedEvent], bool]


class RejectedError(Exception):
    """A request the receiver refuses; `status` and `message` become the JSON error answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- what an event is --------------------------------------------------------------------------------------


def biomesight_event_id(body: dict[str, Any]) -> str:
    """A stable id for a Biomesight push (it sends none): the same change redelivered gets the same id.

    Built from what identifies the change (entity, id, status, date as UTC), not the description, so a
    reworded description of the same change still deduplicates.
    """
    entity = status_entity(body)
    moment = _timestamp(body["date"])
    canonical = {
        "entity": entity,
        "id": body[f"{entity}_id"],
        "status": body["status"],
        "date": moment.isoformat() if moment is not None else body["date"],
    }
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"bs-{digest}"


def biomesight_events(payload: Any, received_at: datetime) -> list[LandedEvent]:
    """The one event of a Biomesight push, or RejectedError(422) naming what is wrong with its shape."""
    if not isinstance(payload, dict):
        raise RejectedError(422, "expected a JSON object")
    if "kit_id" not in payload and "order_id" not in payload:
        raise RejectedError(422, "order_id or kit_id is missing")
    key = f"{status_entity(payload)}_id"
    _require_text(payload, key, key)
    _require_text(payload, "status", "status")
    _require_text(payload, "date", "date")
    if _timestamp(payload["date"]) is None:
        raise RejectedError(422, "date is not an ISO 8601 timestamp")
    if payload.get("description") is not None and not isinstance(payload["description"], str):
        raise RejectedError(422, "description must be a string")
    kind: EventKind = "order_status" if key == "order_id" else "kit_status"
    return [LandedEvent(BIOMESIGHT, biomesight_event_id(payload), received_at, payload, kind)]


def gencove_events(payload: Any, received_at: datetime) -> list[LandedEvent]:
    """Every event of a Gencove push (validated all before any is landed), or RejectedError(422)."""
    if not isinstance(payload, list):
        raise RejectedError(422, "expected a JSON array of events")
    events = []
    for index, event in enumerate(payload):
        where = f"events[{index}]"
        if not isinstance(event, dict):
            raise RejectedError(422, f"{where} is not an object")
        _require_text(event, "event_id", f"{where}.event_id")
        if not SAFE_EVENT_ID.match(event["event_id"]):
            raise RejectedError(422, f"{where}.event_id is not a usable id")
        _require_text(event, "event_type", f"{where}.event_type")
        _require_text(event, "timestamp", f"{where}.timestamp")
        _check_gencove_payload(event, where)
        events.append(LandedEvent(GENCOVE, event["event_id"], received_at, event, "gencove_event"))
    return events


def _check_gencove_payload(event: dict[str, Any], where: str) -> None:
    payload = event.get("payload")
    if not isinstance(payload, dict):
        raise RejectedError(422, f"{where}.payload is missing or not an object")
    project = payload.get("project")
    if not isinstance(project, dict):
        raise RejectedError(422, f"{where}.payload.project is missing or not an object")
    _require_text(project, "id", f"{where}.payload.project.id")
    samples = payload.get("samples")
    if samples is None and event["event_type"] != "analysis_complete_v2":
        return  # other event types (batch reports, restores) may carry no samples
    if not isinstance(samples, list):
        raise RejectedError(422, f"{where}.payload.samples is missing or not an array")
    for number, sample in enumerate(samples):
        at = f"{where}.payload.samples[{number}]"
        if not isinstance(sample, dict):
            raise RejectedError(422, f"{at} is not an object")
        _require_text(sample, "id", f"{at}.id")
        last_status = sample.get("last_status")
        if not isinstance(last_status, dict):
            raise RejectedError(422, f"{at}.last_status is missing or not an object")
        _require_text(last_status, "status", f"{at}.last_status.status")


def _require_text(mapping: dict[str, Any], key: str, where: str) -> None:
    value = mapping.get(key)
    if value is None:
        raise RejectedError(422, f"{where} is missing")
    if not isinstance(value, str) or not value.strip():
        raise RejectedError(422, f"{where} must be a non-empty string")


def _timestamp(text: Any) -> datetime | None:
    """The UTC moment of an ISO 8601 text (`transform.values.parse_timestamp`), None for anything else."""
    try:
        return parse_timestamp(text) if isinstance(text, str) else None
    except ValueError:
        return None


# --- authentication ----------------------------------------------------------------------------------------


def check_bearer(header: str | None, token: str) -> None:
    """RejectedError(401) unless `header` is `Bearer <token>` (constant-time comparison)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise RejectedError(401, "missing bearer token")
    if not hmac.compare_digest(given.strip().encode("latin-1", "replace"), token.encode()):
        raise RejectedError(401, "invalid bearer token")


def parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    """(t, [v1 digests]) of a `Gencove-Signature` header; RejectedError(401) if missing or malformed."""
    if not header:
        raise RejectedError(401, f"missing {SIGNATURE_HEADER} header")
    stamp: int | None = None
    digests = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit():
            stamp = int(value)
        elif name == "v1" and _HEX.match(value):
            digests.append(value.lower())
    if stamp is None or not digests:
        raise RejectedError(401, f"malformed {SIGNATURE_HEADER} header")
    return stamp, digests


def gencove_signature(body: bytes, secret: str, stamp: int) -> str:
    """The hex v1 digest Gencove computes for `body` signed at unix time `stamp`."""
    return hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha512).hexdigest()


def check_signature_time(stamp: int, now: float, tolerance: float) -> None:
    """RejectedError(401) for a signature timestamp further than `tolerance` from now: replay protection."""
    if abs(now - stamp) > tolerance:
        raise RejectedError(401, f"{SIGNATURE_HEADER} timestamp is outside the accepted window")


def check_signature(body: bytes, secret: str, stamp: int, digests: list[str]) -> None:
    """RejectedError(401) unless one of `digests` is the body's signature at `stamp`."""
    expected = gencove_signature(body, secret, stamp)
    # Compare against every candidate (no early exit) so timing says nothing about which one matched.
    matched = [hmac.compare_digest(expected, digest) for digest in digests]
    if not any(matched):
        raise RejectedError(401, f"invalid {SIGNATURE_HEADER}")


# --- the app -----------------------------------------------------------------------------------------------


class _Receiver:
    """The request handling shared by both partners' routes."""

    def __init__(
        self,
        *,
        biomesight_token: str,
        gencove_secret: str,
        land: Land,
        max_body_bytes: int,
        gencove_tolerance_seconds: int,
        body_timeout_seconds: float,
        now: Callable[[], float],
    ) -> None:
        self.body_timeout = body_timeout_seconds
        self.biomesight_token = biomesight_token
        self.gencove_secret = gencove_secret
        self.land = land
        self.max_body_bytes = max_body_bytes
        self.tolerance = gencove_tolerance_seconds
        self.now = now

    async def biomesight(self, request: Request) -> Response:
        async def authenticate(body: bytes | None) -> None:
            if body is None:
                check_bearer(request.headers.get("authorization"), self.biomesight_token)

        return await self._receive(request, BIOMESIGHT, authenticate, biomesight_events)

    async def gencove(self, request: Request) -> Response:
        stamp_and_digests: list[tuple[int, list[str]]] = []

        async def authenticate(body: bytes | None) -> None:
            if body is None:
                stamp, digests = parse_signature_header(request.headers.get(SIGNATURE_HEADER))
                check_signature_time(stamp, self.now(), self.tolerance)
                stamp_and_digests.append((stamp, digests))
            else:
                stamp, digests = stamp_and_digests[0]
                check_signature(body, self.gencove_secret, stamp, digests)

        return await self._receive(request, GENCOVE, authenticate, gencove_events)

    async def _receive(
        self,
        request: Request,
        provider: str,
        authenticate: Callable[[bytes | None], Any],
        parse: Callable[[Any, datetime], list[LandedEvent]],
    ) -> Response:
        try:
            self._check_declared_size(request)
            await authenticate(None)
            body = await self._read_body(request)
            await authenticate(body)
            _check_content_type(request)
            payload = _parse_json(body)
            events = parse(payload, datetime.fromtimestamp(self.now(), UTC))
        except RejectedError as rejected:
            log.warning("rejected a %s webhook: %s %s", provider, rejected.status, rejected.message)
            return _error(rejected.status, rejected.message)
        try:
            landed = await anyio.to_thread.run_sync(self._land_all, events)
        except Exception:
            # Never a 2xx for an event that is not landed: the partner keeps it and retries.
            log.exception("could not land a %s webhook of %d event(s)", provider, len(events))
            return _error(503, "could not store the event; retry later", {"Retry-After": "30"})
        accepted = sum(landed)
        log.info(
            "%s webhook: %d event(s) accepted, %d duplicate(s)", provider, accepted, len(landed) - accepted
        )
        return JSONResponse({"accepted": accepted, "duplicates": len(landed) - accepted})

    def _land_all(self, events: list[LandedEvent]) -> list[bool]:
        return [self.land(event) for event in events]

    def _check_declared_size(self, request: Request) -> None:
        declared = request.headers.get("content-length")
        if declared is None:
            return
        if not declared.isascii() or not declared.isdigit():
            raise RejectedError(400, "invalid Content-Length")
        if int(declared) > self.max_body_bytes:
            raise RejectedError(413, f"body larger than {self.max_body_bytes} bytes")

    async def _read_body(self, request: Request) -> bytes:
        """The body, refusing (without reading on) once it passes the cap, whatever Content-Length said, or
        once it takes longer than the body timeout (a trickling client must not hold a worker forever)."""
        chunks = []
        size = 0
        try:
            with anyio.fail_after(self.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise RejectedError(413, f"body larger than {self.max_body_bytes} bytes")
                    chunks.append(chunk)
        except ClientDisconnect as exc:
            raise RejectedError(400, "the client disconnected before sending the whole body") from exc
        except TimeoutError as exc:
            raise RejectedError(408, f"the body took longer than {self.body_timeout:g} s to arrive") from exc
        return b"".join(chunks)


def _check_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise RejectedError(415, "expected Content-Type: application/json")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RejectedError(400, "body is not valid JSON") from exc


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """404/405 and friends in the same `{"error"}` shape as every other answer."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    headers = getattr(exc, "headers", None)
    return _error(status, str(detail), dict(headers) if headers else None)


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_webhook_app(
    *,
    biomesight_token: str,
    gencove_secret: str,
    land: Land,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    gencove_tolerance_seconds: int = 300,
    body_timeout_seconds: float = 30.0,
    now: Callable[[], float] = time.time,
) -> Starlette:
    """The receiver: `POST /webhooks/biomesight`, `POST /webhooks/gencove`, `GET /healthz`.

    `land` must be durable when it returns and return False for an event id it already has; it runs in a
    worker thread. `now` (unix seconds) stamps `received_at` and judges signature age; tests pin it.
    """
    if not biomesight_token or not gencove_secret:
        # An empty secret would make an empty bearer token or a signature anyone can compute acceptable.
        raise ValueError("the webhook receiver needs a Biomesight token and a Gencove signing secret")
    receiver = _Receiver(
        biomesight_token=biomesight_token,
        gencove_secret=gencove_secret,
        land=land,
        max_body_bytes=max_body_bytes,
        gencove_tolerance_seconds=gencove_tolerance_seconds,
        body_timeout_seconds=body_timeout_seconds,
        now=now,
    )
    routes = [
        Route("/webhooks/biomesight", receiver.biomesight, methods=["POST"]),
        Route("/webhooks/gencove", receiver.gencove, methods=["POST"]),
        Route("/healthz", _healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


# --- serving -----------------------------------------------------------------------------------------------


def serve_webhooks(host: str, port: int, app: Starlette) -> None:
    """Serve `app` in the foreground until interrupted (`kitsync webhooks serve`)."""
    uvicorn.Server(server_config(app, host, port, quiet=False)).run()


def server_config(app: Starlette, host: str, port: int, *, quiet: bool) -> uvicorn.Config:
    """How the receiver is served, in the foreground or (`flows.receiver`) from a thread."""
    # The access log records method, path and status only; headers (token, signature) never reach a log.
    # `quiet` leaves the process's logging configuration alone (a host such as a test run owns it).
    logging_options: dict[str, Any] = {"log_config": None, "access_log": False} if quiet else {}
    return uvicorn.Config(app, host=host, port=port, server_header=False, lifespan="off", **logging_options)
