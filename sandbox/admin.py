"""The sandbox's own control endpoints under `/_sandbox/`: clock, faults, request counts, webhooks, export.

None of this exists at the real partners; tests and the demo use it to move time and provoke failures.
- `GET /_sandbox/clock` -> {"now"}; `POST` {"advance_hours": h} | {"advance_days": d} | {"set": iso}
  -> {"now", "previous", "webhooks_queued"} (the clock never moves back; the window's pushes are queued).
- `GET|POST|DELETE /_sandbox/faults`: list rules; add one ({"spec": "..."} or {"endpoint", "kind", "rate",
  "count", "params"}); remove all.
- `GET|DELETE /_sandbox/requests` (POST also resets): request counts `{endpoint: {status: n}}`.
- `GET|POST /_sandbox/webhooks`: targets and delivery counters; POST {"biomesight_url", "gencove_url"}.
- `GET /_sandbox/export.csv?account=`: the platform's order/kit export at now, as CSV.
- `GET /_sandbox/accounts`: the documented credentials and project ids.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from sandbox import accounts
from sandbox.export import export_csv as render_csv
from sandbox.export import platform_export
from sandbox.faults import FaultRule
from sandbox.state import SandboxState, state_of
from sandbox.wire import json_response, parse_iso_datetime

PREFIX = "/_sandbox"


def move_clock(
    state: SandboxState, *, delta: timedelta | None = None, to: datetime | None = None
) -> dict[str, Any]:
    """Advance the clock (by `delta` or to `to`) and queue the window's webhook pushes; loop thread only."""
    clock = state.world.clock
    with state.world.lock:
        previous = clock.now()
        now = clock.advance(delta) if delta is not None else clock.set(to or previous)
    queued = 0
    if state.webhooks is not None:
        queued = state.webhooks.push_window(state.world, previous, now, state.generation)
    return {"now": now.isoformat(), "previous": previous.isoformat(), "webhooks_queued": queued}


def accounts_summary() -> dict[str, Any]:
    """The sandbox's documented credentials: what `serve` prints and `/_sandbox/accounts` returns."""
    return {
        "biomesight": [
            {"client_id": account.client_id, "client_secret": account.client_secret, "name": account.name}
            for account in accounts.BIOMESIGHT_ACCOUNTS
        ],
        "biomesight_webhook_token": accounts.BIOMESIGHT_WEBHOOK_TOKEN,
        "gencove": [
            {"api_key": account.api_key, "name": account.name, "project_ids": list(account.project_ids)}
            for account in accounts.GENCOVE_ACCOUNTS
        ],
        "gencove_webhook_secret": accounts.GENCOVE_WEBHOOK_SECRET,
    }


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"invalid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def _bad(message: str) -> web.Response:
    return json_response({"error": message}, status=400)


async def get_clock(request: web.Request) -> web.Response:
    """The virtual now."""
    return json_response({"now": state_of(request).now().isoformat()})


async def post_clock(request: web.Request) -> web.Response:
    """Move the virtual clock forward."""
    state = state_of(request)
    body = await _body(request)
    try:
        if "advance_hours" in body:
            moved = move_clock(state, delta=timedelta(hours=float(body["advance_hours"])))
        elif "advance_days" in body:
            moved = move_clock(state, delta=timedelta(days=float(body["advance_days"])))
        elif "set" in body:
            moment = parse_iso_datetime(body["set"])
            if moment is None:
                return _bad("set must be an ISO 8601 timestamp")
            moved = move_clock(state, to=moment)
        else:
            return _bad("give advance_hours, advance_days or set")
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    return json_response(moved)


async def get_faults(request: web.Request) -> web.Response:
    """The active fault rules with how often each fired."""
    return json_response([rule.as_json() for rule in state_of(request).faults.rules()])


async def post_faults(request: web.Request) -> web.Response:
    """Add a fault rule."""
    state = state_of(request)
    body = await _body(request)
    try:
        rule = (
            state.faults.add_spec(body["spec"])
            if "spec" in body
            else state.faults.add(FaultRule.from_json(body))
        )
    except (KeyError, TypeError, ValueError) as exc:
        return _bad(f"invalid fault rule: {exc}")
    return json_response(rule.as_json(), status=201)


async def delete_faults(request: web.Request) -> web.Response:
    """Remove every fault rule."""
    state_of(request).faults.clear()
    return json_response([])


async def get_requests(request: web.Request) -> web.Response:
    """Request counts per endpoint and status."""
    return json_response(state_of(request).traffic.counts())


async def reset_requests(request: web.Request) -> web.Response:
    """Start counting from zero."""
    state_of(request).traffic.reset()
    return json_response({})


async def get_webhooks(request: web.Request) -> web.Response:
    """Webhook targets and delivery counters."""
    dispatcher = state_of(request).webhooks
    return json_response(dispatcher.config() if dispatcher is not None else {})


async def post_webhooks(request: web.Request) -> web.Response:
    """Set (or, with null, unset) the webhook targets."""
    dispatcher = state_of(request).webhooks
    if dispatcher is None:
        return json_response({"error": "webhooks are not enabled"}, status=409)
    body = await _body(request)
    if "biomesight_url" in body:
        dispatcher.biomesight_url = body["biomesight_url"] or None
    if "gencove_url" in body:
        dispatcher.gencove_url = body["gencove_url"] or None
    return json_response(dispatcher.config())


async def export_csv(request: web.Request) -> web.Response:
    """The platform's order/kit export at now (what kitsync imports to learn which Biomesight kits exist)."""
    state = state_of(request)
    account = request.query.get("account", accounts.BIOMESIGHT_CLIENT_ID)
    with state.world.lock:
        rows = platform_export(state.world, state.now(), account=account)
    return web.Response(text=render_csv(rows), content_type="text/csv")


async def get_accounts(request: web.Request) -> web.Response:
    """The documented credentials and project ids."""
    return json_response(accounts_summary())


def add_routes(app: web.Application) -> None:
    """Mount the admin endpoints."""
    router = app.router
    router.add_get(f"{PREFIX}/clock", get_clock)
    router.add_post(f"{PREFIX}/clock", post_clock)
    router.add_get(f"{PREFIX}/faults", get_faults)
    router.add_post(f"{PREFIX}/faults", post_faults)
    router.add_delete(f"{PREFIX}/faults", delete_faults)
    router.add_get(f"{PREFIX}/requests", get_requests)
    router.add_post(f"{PREFIX}/requests", reset_requests)
    router.add_delete(f"{PREFIX}/requests", reset_requests)
    router.add_get(f"{PREFIX}/webhooks", get_webhooks)
    router.add_post(f"{PREFIX}/webhooks", post_webhooks)
    router.add_get(f"{PREFIX}/export.csv", export_csv)
    router.add_get(f"{PREFIX}/accounts", get_accounts)
