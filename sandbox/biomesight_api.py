"""The Biomesight Partner API (`/api/v1`), as biomesight-partner-api.txt documents it.

Choices the doc leaves open, made here and relied on by tests:
- 202 body `{"error": "Results are not ready yet"}`; 203 body `{"error": "PDF report not ready"}`.
- A kit with no status yet (not registered) answers `status/kit` with 404 `{"error": "Kit not registered"}`.
- An order whose purchase_date is ahead of the virtual clock does not exist yet (404), unless it was placed
  through this API; its kits likewise.
- The token endpoint's `error` strings are OAuth2's codes (`invalid_client`, `unsupported_grant_type`).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from sandbox.accounts import BIOMESIGHT_ACCOUNTS
from sandbox.countries import is_country_code
from sandbox.faults import FaultRule, unknown_status_for
from sandbox.model import BM_FREQUENCIES, Kit, Order, status_at
from sandbox.state import SandboxState, state_of
from sandbox.wire import biomesight_time, json_response, parse_iso_date, parse_iso_datetime

PREFIX = "/api/v1"
RESULT_FORMATS = ("json", "csv", "pdf")

KIT_STATUS_DESCRIPTIONS = {
    "Shipping to Lab": "Kit dispatched to the laboratory",
    "Sample Delivered": "Sample delivered to lab but not yet acknowledged",
    "Sample Received": "Lab has received and logged the sample",
    "Lab Processing": "Sequencing and analysis has started",
    "Lab Processing Repeating": "Sample is being processed a second time",
    "Results Processed": "Analysis complete — results are available via the API",
    "Replacement Kit": "A replacement kit has been issued",
    "Sample Not Viable": "Sample could not be processed; a replacement may be needed",
    "Enquiry Initiated": "A manual enquiry has been opened for this sample",
    "Dried Out": "Sample dried out in transit; a new sample is needed",
    "Sample Cancelled": "Sample processing was cancelled",
    "QA Failed": "Lab processing completed but did not pass quality criteria",
}
ORDER_STATUS_DESCRIPTIONS = {
    "Pending": "Order has been created",
    "Booked with Amazon": "Order submitted to Amazon FBA for fulfilment",
    "Dispatched": "Kit has been dispatched from the warehouse",
    "Shipped": "Kit is in transit to the customer",
    "Delivered": "Kit has been delivered",
    "Cancelled": "Order has been cancelled",
    "Error": "An error occurred during fulfilment",
    "Lost": "Kit was lost in transit",
    "Enquiry in Progress": "A fulfilment enquiry is in progress",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SECRETS = {account.client_id: account.client_secret for account in BIOMESIGHT_ACCOUNTS}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Biomesight's one error shape: `{"error": "..."}`."""
    return json_response({"error": message}, status=status, headers=headers)


# --- auth -------------------------------------------------------------------------------------------------


async def token(request: web.Request) -> web.Response:
    """`POST auth/token`: OAuth2 client credentials with HTTP Basic auth."""
    state = state_of(request)
    client_id = _basic_client(request.headers.get("Authorization", ""))
    if client_id is None:
        return error(401, "invalid_client", {"WWW-Authenticate": 'Basic realm="biomesight"'})
    form = await request.post()
    grant_type = form.get("grant_type")
    if grant_type is None:
        return error(400, "invalid_request")
    if grant_type != "client_credentials":
        return error(400, "unsupported_grant_type")
    access_token = state.tokens.issue(client_id, state.now())
    return json_response(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "scope": "read write",
            "expires_in": max(1, round(state.tokens.lifetime_seconds)),
        }
    )


def _basic_client(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep or _SECRETS.get(client_id) != secret:
        return None
    return client_id


def _bearer_account(request: web.Request, state: SandboxState, endpoint: str) -> str | web.Response:
    """The client id behind the request's bearer token, or the 401 to answer with."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="biomesight"'}
    if scheme.lower() != "bearer" or not presented.strip():
        return error(401, "Missing bearer token", challenge)
    presented = presented.strip()
    issued = state.tokens.lookup(presented)
    if issued is None:
        return error(401, "Invalid token", challenge)
    if not issued.expired(state.now()) and state.faults.take(endpoint, "expire_token") is not None:
        state.tokens.expire(presented)
        issued = state.tokens.lookup(presented)
    if issued is None or issued.expired(state.now()):
        return error(401, "Token expired", challenge)
    return issued.account


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


# --- visibility -------------------------------------------------------------------------------------------


def _order_visible(state: SandboxState, order: Order, now: datetime) -> bool:
    return order.purchase_date <= now or order.order_id in state.api_orders


def _visible_kit(state: SandboxState, kit_id: str, now: datetime) -> Kit | None:
    kit = state.world.kits.get(kit_id)
    if kit is None:
        return None
    order = state.world.orders.get(kit.order_id)
    if order is not None and not _order_visible(state, order, now):
        return None
    return kit


# --- orders and kits --------------------------------------------------------------------------------------


def _blank(value: object) -> bool:
    return not isinstance(value, str) or not value.strip()


def validate_order(payload: dict[str, Any]) -> tuple[int, str] | None:  # noqa: PLR0911 - one return per rule
    """The (status, message) an invalid order gets: 400 for missing/invalid fields, 422 for format errors."""
    if _blank(payload.get("order_id")):
        return 400, "order_id is required"
    if _blank(payload.get("purchase_date")):
        return 400, "purchase_date is required"
    user = payload.get("user")
    if not isinstance(user, dict):
        return 400, "user is required"
    for name in ("id", "first_name", "last_name", "email"):
        if _blank(user.get(name)):
            return 400, f"user.{name} is required"
    if not _EMAIL.match(user["email"].strip()):
        return 400, "user.email is not a valid email address"
    address = payload.get("destination_address")
    if not isinstance(address, dict):
        return 400, "destination_address is required"
    for name in ("address_line1", "city", "postcode_zip", "country_code"):
        if _blank(address.get(name)):
            return 400, f"destination_address.{name} is required"
    problem = _validate_items(payload.get("items"))
    if problem is not None:
        return 400, problem
    if parse_iso_datetime(payload["purchase_date"]) is None:
        return 422, "purchase_date is not an ISO 8601 timestamp"
    if not is_country_code(address["country_code"]):
        return 422, f"destination_address.country_code {address['country_code']!r} is not recognised"
    return None


def _validate_items(items: object) -> str | None:
    if not isinstance(items, list) or not items:
        return "items must be a non-empty list"
    for index, item in enumerate(items):
        if not isinstance(item, dict) or _blank(item.get("product_sku")):
            return f"items[{index}].product_sku is required"
        quantity = item.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            return f"items[{index}].quantity must be a positive integer"
    return None


async def create_order(request: web.Request) -> web.Response:
    """`POST order`: 201 with the sale id; 400/409/422 as documented."""
    state = state_of(request)
    account = _bearer_account(request, state, "biomesight.order")
    if isinstance(account, web.Response):
        return account
    payload = await _json_body(request)
    if payload is None:
        return error(400, "Request body must be a JSON object")
    problem = validate_order(payload)
    if problem is not None:
        return error(*problem)
    from sandbox.changes import place_order

    with state.world.lock:
        if payload["order_id"] in state.world.orders:
            return error(409, f"Order {payload['order_id']} already exists")
        order = place_order(state.world, account, payload, state.now())
        state.api_orders.add(order.order_id)
    state.world_changed()
    if state.webhooks is not None:
        state.webhooks.push_entity(order, state.now())
    return json_response(
        {"status": "created", "sale_id": order.sale_id, "external_order_id": order.order_id}, status=201
    )


def validate_registration(payload: dict[str, Any]) -> str | None:
    """Why a register_kit body is invalid (all such cases are 400), or None."""
    for name in ("order_id", "kit_id", "sample_date"):
        if _blank(payload.get(name)):
            return f"{name} is required"
    if parse_iso_date(payload["sample_date"]) is None:
        return "sample_date must be a date in YYYY-MM-DD format"
    sample_type = payload.get("sample_type")
    if sample_type is not None and _blank(sample_type):
        return "sample_type must be a non-empty string"
    bristol = payload.get("bristol_scale")
    if bristol is not None and (
        isinstance(bristol, bool) or not isinstance(bristol, int) or not 1 <= bristol <= 7
    ):
        return "bristol_scale must be an integer from 1 to 7"
    frequency = payload.get("bm_frequency")
    if frequency is not None and frequency not in BM_FREQUENCIES:
        return f"bm_frequency must be one of: {', '.join(BM_FREQUENCIES)}"
    return None


async def register_kit(request: web.Request) -> web.Response:  # noqa: PLR0911 - one return per documented 400
    """`POST register_kit`: 200 {"status": "Success"}; every failure is a 400, as documented."""
    state = state_of(request)
    account = _bearer_account(request, state, "biomesight.register_kit")
    if isinstance(account, web.Response):
        return account
    payload = await _json_body(request)
    if payload is None:
        return error(400, "Request body must be a JSON object")
    problem = validate_registration(payload)
    if problem is not None:
        return error(400, problem)
    from sandbox.changes import register_kit as world_register_kit

    now = state.now()
    with state.world.lock:
        order = state.world.orders.get(payload["order_id"])
        if order is None or order.account != account or not _order_visible(state, order, now):
            return error(400, f"Order {payload['order_id']} not found")
        kit = _visible_kit(state, payload["kit_id"], now)
        if kit is None or kit.order_id != order.order_id:
            return error(400, f"Kit {payload['kit_id']} not found on order {order.order_id}")
        if kit.registered_at is not None:
            return error(400, f"Kit {kit.kit_id} is already registered")
        world_register_kit(state.world, kit, payload, now)
    state.world_changed()
    if state.webhooks is not None:
        state.webhooks.push_entity(kit, now)
    return json_response({"status": "Success"})


# --- results ----------------------------------------------------------------------------------------------


async def results(request: web.Request) -> web.Response:  # noqa: PLR0911 - one return per documented status
    """`GET results/{kit_id}?format=json|csv|pdf`: 200, or 202/203 while not ready, 403/404 as documented."""
    state = state_of(request)
    account = _bearer_account(request, state, "biomesight.results")
    if isinstance(account, web.Response):
        return account
    fmt = request.query.get("format", "json")
    if fmt not in RESULT_FORMATS:
        return error(400, f"format must be one of: {', '.join(RESULT_FORMATS)}")
    now = state.now()
    kit = _visible_kit(state, request.match_info["kit_id"], now)
    if kit is None:
        return error(404, "Kit not found")
    if kit.account != account:
        return error(403, "Kit does not belong to your account")
    # Readiness first: reading `result` may build it (generated worlds derive results on access).
    if kit.results_ready_at is None or now < kit.results_ready_at or kit.result is None:
        return error(202, "Results are not ready yet")
    if fmt == "json":
        from sandbox.results import render_results_json

        body = render_results_json(kit)
        if state.variance is not None:
            scores = body["scores"]
            body["scores"] = {state.variance.score_name(kit.kit_id, k): v for k, v in scores.items()}
        return json_response(body)
    if fmt == "pdf":
        if kit.pdf_ready_at is None or now < kit.pdf_ready_at:
            return error(203, "PDF report not ready")
        from sandbox.pdf import render_pdf

        encoded = base64.b64encode(render_pdf(kit)).decode("ascii")
        return json_response({"kit_id": kit.kit_id, "pdf": _maybe_corrupt(state, encoded)})
    from sandbox.results import render_taxonomy_csv

    text = render_taxonomy_csv(kit.result)
    broken = state.faults.take("biomesight.results", "broken_csv")
    if broken is not None:
        text = break_csv(text, broken)
    raw = text.encode() if state.variance is None else state.variance.render_taxonomy_csv(kit.kit_id, text)
    encoded = base64.b64encode(raw).decode("ascii")
    return json_response({"kit_id": kit.kit_id, "csv": _maybe_corrupt(state, encoded)})


def _maybe_corrupt(state: SandboxState, encoded: str) -> str:
    if state.faults.take("biomesight.results", "bad_base64") is None:
        return encoded
    return corrupt_base64(encoded)


def corrupt_base64(encoded: str) -> str:
    """Base64 that no decoder accepts: a stray character mid-way and the last character gone (bad padding)."""
    middle = len(encoded) // 2
    return encoded[:middle] + "#%" + encoded[middle:-1]


def break_csv(text: str, rule: FaultRule) -> str:
    """A malformed taxonomy CSV: an unknown header, or non-numeric abundances (alternating by default)."""
    variant = rule.params.get("variant") or ("header" if rule.injected % 2 == 1 else "abundance")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return "unexpected_column\n"
    if variant == "header":
        rows[0] = [f"column_{index}" for index in range(1, len(rows[0]) + 1)]
    else:
        for row in rows[1:4]:
            for index, cell in enumerate(row):
                if _is_number(cell):
                    row[index] = "n/a"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# --- statuses ---------------------------------------------------------------------------------------------


async def kit_status(request: web.Request) -> web.Response:
    """`GET status/kit/{kit_id}`: the latest kit status at or before now."""
    state = state_of(request)
    account = _bearer_account(request, state, "biomesight.kit_status")
    if isinstance(account, web.Response):
        return account
    now = state.now()
    kit = _visible_kit(state, request.match_info["kit_id"], now)
    if kit is None:
        return error(404, "Kit not found")
    if kit.account != account:
        return error(403, "Kit does not belong to your account")
    change = status_at(kit.timeline, now)
    if change is None:
        return error(404, "Kit not registered")
    status, description = _maybe_unknown(
        state, "biomesight.kit_status", change.status, change.description, KIT_STATUS_DESCRIPTIONS
    )
    return json_response(
        {
            "kit_id": kit.kit_id,
            "status": status,
            "description": description,
            "date": biomesight_time(change.at),
        }
    )


async def order_status(request: web.Request) -> web.Response:
    """`GET status/order/{order_id}`: the latest order status, "Pending" until the first change."""
    state = state_of(request)
    account = _bearer_account(request, state, "biomesight.order_status")
    if isinstance(account, web.Response):
        return account
    now = state.now()
    order = state.world.orders.get(request.match_info["order_id"])
    if order is None or not _order_visible(state, order, now):
        return error(404, "Order not found")
    if order.account != account:
        return error(403, "Order does not belong to your account")
    change = status_at(order.timeline, now)
    if change is None:
        status, description, date = "Pending", "", order.purchase_date
    else:
        status, description, date = change.status, change.description, change.at
    status, description = _maybe_unknown(
        state, "biomesight.order_status", status, description, ORDER_STATUS_DESCRIPTIONS
    )
    return json_response(
        {
            "order_id": order.order_id,
            "status": status,
            "description": description,
            "date": biomesight_time(date),
        }
    )


def _maybe_unknown(
    state: SandboxState, endpoint: str, status: str, description: str, descriptions: dict[str, str]
) -> tuple[str, str]:
    rule = state.faults.take(endpoint, "unknown_status")
    if rule is not None:
        return unknown_status_for(rule, "biomesight"), "Status not in the published vocabulary"
    return status, description or descriptions.get(status, "")


def add_routes(app: web.Application) -> None:
    """Mount the Biomesight endpoints; route names are the endpoint names faults and traffic use."""
    app.router.add_post(f"{PREFIX}/auth/token", token, name="biomesight.token")
    app.router.add_post(f"{PREFIX}/order", create_order, name="biomesight.order")
    app.router.add_post(f"{PREFIX}/register_kit", register_kit, name="biomesight.register_kit")
    app.router.add_get(f"{PREFIX}/results/{{kit_id}}", results, name="biomesight.results")
    app.router.add_get(f"{PREFIX}/status/kit/{{kit_id}}", kit_status, name="biomesight.kit_status")
    app.router.add_get(f"{PREFIX}/status/order/{{order_id}}", order_status, name="biomesight.order_status")
