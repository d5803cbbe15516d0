"""The Biomesight simulator over real HTTP: each endpoint and documented status, against the world's truth."""

from __future__ import annotations

import base64
import csv
import io
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests

from sandbox.accounts import (
    BIOMESIGHT_CLIENT_ID,
    BIOMESIGHT_CLIENT_SECRET,
    OTHER_BIOMESIGHT_CLIENT_ID,
    OTHER_BIOMESIGHT_CLIENT_SECRET,
)
from sandbox.model import BM_FREQUENCIES, World, status_at
from sandbox.server import SandboxServer
from sandbox.wire import biomesight_time

TIMEOUT = 10


def url(server: SandboxServer, path: str) -> str:
    return f"{server.base_url}/api/v1/{path}"


def order_payload(order_id: str, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "order_id": order_id,
        "purchase_date": "2025-05-30T10:30:00",
        "user": {
            "id": "CUST-1",
            "first_name": "Jane",
            "last_name": "Smith",
            "email": "jane.smith@example.com",
        },
        "destination_address": {
            "address_line1": "42 Wellness Avenue",
            "city": "London",
            "postcode_zip": "SW1A 1AA",
            "country_code": "GB",
        },
        "items": [{"product_sku": "YOUR_SKU", "quantity": 1}],
    }
    payload.update(overrides)
    return payload


# --- auth -------------------------------------------------------------------------------------------------


def test_token_has_the_documented_shape(server: SandboxServer) -> None:
    response = requests.post(
        url(server, "auth/token"),
        auth=(BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "scope", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read write"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) >= 32


@pytest.mark.parametrize(
    ("auth", "data", "status"),
    [
        ((BIOMESIGHT_CLIENT_ID, "wrong"), {"grant_type": "client_credentials"}, 401),
        (("nobody", BIOMESIGHT_CLIENT_SECRET), {"grant_type": "client_credentials"}, 401),
        (None, {"grant_type": "client_credentials"}, 401),
        ((BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET), {"grant_type": "password"}, 400),
        ((BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET), {}, 400),
    ],
)
def test_token_rejects_bad_credentials_and_grants(
    server: SandboxServer, auth: tuple[str, str] | None, data: dict[str, str], status: int
) -> None:
    response = requests.post(url(server, "auth/token"), auth=auth, data=data, timeout=TIMEOUT)
    assert response.status_code == status
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ],
)
def test_every_endpoint_needs_a_valid_bearer_token(server: SandboxServer, headers: dict[str, str]) -> None:
    calls = [
        ("GET", "status/kit/BS1-DONE1"),
        ("GET", "status/order/ORD-DONE"),
        ("GET", "results/BS1-DONE1"),
        ("POST", "order"),
        ("POST", "register_kit"),
    ]
    for method, path in calls:
        response = requests.request(method, url(server, path), headers=headers, json={}, timeout=TIMEOUT)
        assert response.status_code == 401, path
        assert "error" in response.json()


def test_tokens_expire_by_the_virtual_clock(server: SandboxServer, bearer: dict[str, str]) -> None:
    assert (
        requests.get(url(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=TIMEOUT).status_code == 200
    )
    server.advance(timedelta(seconds=3599))
    assert (
        requests.get(url(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=TIMEOUT).status_code == 200
    )
    server.advance(timedelta(seconds=1))
    expired = requests.get(url(server, "status/kit/BS1-DONE1"), headers=bearer, timeout=TIMEOUT)
    assert expired.status_code == 401
    assert expired.json() == {"error": "Token expired"}


def test_a_configured_short_lifetime_expires_tokens_in_real_time(world: World) -> None:
    with SandboxServer(world, token_ttl=1) as server:
        response = requests.post(
            url(server, "auth/token"),
            auth=(BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET),
            data={"grant_type": "client_credentials"},
            timeout=TIMEOUT,
        )
        assert response.json()["expires_in"] == 1
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        first = requests.get(url(server, "status/kit/BS1-DONE1"), headers=headers, timeout=TIMEOUT)
        assert first.status_code == 200
        time.sleep(1.05)  # wall time only: the virtual clock stands still
        expired = requests.get(url(server, "status/kit/BS1-DONE1"), headers=headers, timeout=TIMEOUT)
        assert (expired.status_code, expired.json()) == (401, {"error": "Token expired"})


# --- statuses ---------------------------------------------------------------------------------------------


def test_kit_status_is_the_latest_change_at_or_before_now(
    server: SandboxServer, world: World, bearer: dict[str, str]
) -> None:
    for kit_id in ("BS1-DONE1", "BS1-PDFLAG", "BS1-MOVING"):
        kit = world.kits[kit_id]
        change = status_at(kit.timeline, world.clock.now())
        assert change is not None
        response = requests.get(url(server, f"status/kit/{kit_id}"), headers=bearer, timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.json() == {
            "kit_id": kit_id,
            "status": change.status,
            "description": change.description,
            "date": biomesight_time(change.at),
        }
        assert response.json()["date"].endswith("Z")


def test_kit_status_errors(server: SandboxServer, bearer: dict[str, str]) -> None:
    cases = {"BS1-FRESH1": (404, "Kit not registered"), "BS1-FOREIGN": (403, None), "BS1-NOPE": (404, None)}
    for kit_id, (status, message) in cases.items():
        response = requests.get(url(server, f"status/kit/{kit_id}"), headers=bearer, timeout=TIMEOUT)
        assert response.status_code == status, kit_id
        assert set(response.json()) == {"error"}
        if message:
            assert response.json()["error"] == message


def test_a_foreign_account_sees_its_own_kit_and_not_ours(
    server: SandboxServer, token_for: Callable[[str, str], str]
) -> None:
    other = {
        "Authorization": f"Bearer {token_for(OTHER_BIOMESIGHT_CLIENT_ID, OTHER_BIOMESIGHT_CLIENT_SECRET)}"
    }
    assert (
        requests.get(url(server, "status/kit/BS1-FOREIGN"), headers=other, timeout=TIMEOUT).status_code == 200
    )
    assert (
        requests.get(url(server, "status/kit/BS1-DONE1"), headers=other, timeout=TIMEOUT).status_code == 403
    )
    assert (
        requests.get(url(server, "status/order/ORD-DONE"), headers=other, timeout=TIMEOUT).status_code == 403
    )
    assert requests.get(url(server, "results/BS1-DONE1"), headers=other, timeout=TIMEOUT).status_code == 403


def test_order_status_pending_until_the_first_change(
    server: SandboxServer, world: World, bearer: dict[str, str]
) -> None:
    pending = world.orders["ORD-PENDING"]
    response = requests.get(url(server, "status/order/ORD-PENDING"), headers=bearer, timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["order_id"] == "ORD-PENDING"
    assert body["status"] == "Pending"
    assert body["date"] == biomesight_time(pending.purchase_date)

    done = world.orders["ORD-DONE"]
    latest = status_at(done.timeline, world.clock.now())
    assert latest is not None
    body = requests.get(url(server, "status/order/ORD-DONE"), headers=bearer, timeout=TIMEOUT).json()
    assert (body["status"], body["date"]) == (latest.status, biomesight_time(latest.at))
    assert body["description"]


def test_order_status_errors(server: SandboxServer, bearer: dict[str, str]) -> None:
    assert requests.get(url(server, "status/order/NOPE"), headers=bearer, timeout=TIMEOUT).status_code == 404
    assert (
        requests.get(url(server, "status/order/ORD-FOREIGN"), headers=bearer, timeout=TIMEOUT).status_code
        == 403
    )
    # An order whose purchase lies ahead of the virtual clock does not exist yet; nor do its kits.
    assert (
        requests.get(url(server, "status/order/ORD-FUTURE"), headers=bearer, timeout=TIMEOUT).status_code
        == 404
    )
    assert requests.get(url(server, "results/BS1-FUTURE"), headers=bearer, timeout=TIMEOUT).status_code == 404


def test_advancing_the_clock_moves_statuses(
    server: SandboxServer, world: World, bearer: dict[str, str], token_for: Callable[[str, str], str]
) -> None:
    kit = world.kits["BS1-MOVING"]
    before = requests.get(url(server, "status/kit/BS1-MOVING"), headers=bearer, timeout=TIMEOUT).json()
    later_change = next(change for change in kit.timeline if change.at > world.clock.now())
    server.set_time(later_change.at)  # days later: the old token has expired too
    fresh = {"Authorization": f"Bearer {token_for(BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET)}"}
    after = requests.get(url(server, "status/kit/BS1-MOVING"), headers=fresh, timeout=TIMEOUT).json()
    assert before["status"] != after["status"]
    assert after["status"] == later_change.status


# --- results ----------------------------------------------------------------------------------------------


def test_json_results_carry_scores_recommendations_and_general(
    server: SandboxServer, world: World, bearer: dict[str, str]
) -> None:
    kit = world.kits["BS1-DONE1"]
    assert kit.result is not None
    response = requests.get(
        url(server, "results/BS1-DONE1"), headers=bearer, params={"format": "json"}, timeout=TIMEOUT
    )
    assert response.status_code == 200
    body = response.json()
    assert body["scores"] == kit.result.scores
    assert body["general"]["kit_id"] == "BS1-DONE1"
    assert body["general"]["sample_id"] == kit.result.sample_id
    # json is the default format
    default = requests.get(url(server, "results/BS1-DONE1"), headers=bearer, timeout=TIMEOUT)
    assert default.json() == body


def test_csv_results_are_base64_of_the_taxonomy(
    server: SandboxServer, world: World, bearer: dict[str, str]
) -> None:
    kit = world.kits["BS1-DONE1"]
    assert kit.result is not None
    response = requests.get(
        url(server, "results/BS1-DONE1"), headers=bearer, params={"format": "csv"}, timeout=TIMEOUT
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"kit_id", "csv"}
    rows = list(csv.reader(io.StringIO(base64.b64decode(body["csv"], validate=True).decode())))
    assert len(rows) == len(kit.result.taxonomy) + 1


def test_results_not_ready_is_202_and_pdf_lag_is_203(
    server: SandboxServer, world: World, bearer: dict[str, str]
) -> None:
    moving = requests.get(url(server, "results/BS1-MOVING"), headers=bearer, timeout=TIMEOUT)
    assert (moving.status_code, moving.json()) == (202, {"error": "Results are not ready yet"})
    unregistered = requests.get(url(server, "results/BS1-FRESH1"), headers=bearer, timeout=TIMEOUT)
    assert unregistered.status_code == 202

    lagging = world.kits["BS1-PDFLAG"]
    assert lagging.pdf_ready_at is not None
    assert requests.get(url(server, "results/BS1-PDFLAG"), headers=bearer, timeout=TIMEOUT).status_code == 200
    pdf = requests.get(
        url(server, "results/BS1-PDFLAG"), headers=bearer, params={"format": "pdf"}, timeout=TIMEOUT
    )
    assert (pdf.status_code, pdf.json()) == (203, {"error": "PDF report not ready"})


def test_pdf_results_once_ready(
    server: SandboxServer, world: World, token_for: Callable[[str, str], str]
) -> None:
    lagging = world.kits["BS1-PDFLAG"]
    assert lagging.pdf_ready_at is not None
    server.set_time(lagging.pdf_ready_at)
    bearer = {"Authorization": f"Bearer {token_for(BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET)}"}
    pdf = requests.get(
        url(server, "results/BS1-PDFLAG"), headers=bearer, params={"format": "pdf"}, timeout=TIMEOUT
    )
    assert pdf.status_code == 200
    assert set(pdf.json()) == {"kit_id", "pdf"}
    assert base64.b64decode(pdf.json()["pdf"], validate=True).startswith(b"%PDF")


def test_results_errors(server: SandboxServer, bearer: dict[str, str]) -> None:
    assert requests.get(url(server, "results/BS1-NOPE"), headers=bearer, timeout=TIMEOUT).status_code == 404
    assert (
        requests.get(url(server, "results/BS1-FOREIGN"), headers=bearer, timeout=TIMEOUT).status_code == 403
    )
    bad = requests.get(
        url(server, "results/BS1-DONE1"), headers=bearer, params={"format": "xml"}, timeout=TIMEOUT
    )
    assert bad.status_code == 400
    assert set(bad.json()) == {"error"}


# --- ordering and registration ----------------------------------------------------------------------------


def test_create_order_then_duplicate_is_409(
    server: SandboxServer, world: World, bearer: dict[str, str]
) -> None:
    pytest.importorskip("sandbox.world")
    response = requests.post(
        url(server, "order"), headers=bearer, json=order_payload("ORD-NEW-1"), timeout=TIMEOUT
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "created"
    assert body["external_order_id"] == "ORD-NEW-1"
    assert isinstance(body["sale_id"], int)
    assert world.orders["ORD-NEW-1"].account == BIOMESIGHT_CLIENT_ID
    status = requests.get(url(server, "status/order/ORD-NEW-1"), headers=bearer, timeout=TIMEOUT)
    assert status.status_code == 200
    again = requests.post(
        url(server, "order"), headers=bearer, json=order_payload("ORD-NEW-1"), timeout=TIMEOUT
    )
    assert again.status_code == 409
    # order ids are unique across accounts too
    taken = requests.post(
        url(server, "order"), headers=bearer, json=order_payload("ORD-FOREIGN"), timeout=TIMEOUT
    )
    assert taken.status_code == 409


def _without(payload: dict[str, Any], dotted: str) -> dict[str, Any]:
    head, _, tail = dotted.partition(".")
    if tail:
        return {**payload, head: _without(payload[head], tail)}
    return {key: value for key, value in payload.items() if key != head}


@pytest.mark.parametrize(
    "missing",
    [
        "order_id",
        "purchase_date",
        "user",
        "user.id",
        "user.first_name",
        "user.last_name",
        "user.email",
        "destination_address",
        "destination_address.address_line1",
        "destination_address.city",
        "destination_address.postcode_zip",
        "destination_address.country_code",
        "items",
    ],
)
def test_order_missing_required_field_is_400(
    server: SandboxServer, bearer: dict[str, str], missing: str
) -> None:
    payload = _without(order_payload("ORD-MISSING"), missing)
    response = requests.post(url(server, "order"), headers=bearer, json=payload, timeout=TIMEOUT)
    assert response.status_code == 400
    assert missing.rsplit(".", maxsplit=1)[-1] in response.json()["error"]


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"user": {"id": "C", "first_name": "J", "last_name": "S", "email": "not-an-email"}}, 400),
        ({"items": []}, 400),
        ({"items": [{"quantity": 1}]}, 400),
        ({"items": [{"product_sku": "SKU", "quantity": 0}]}, 400),
        ({"purchase_date": "15/06/2025"}, 422),
        ({"purchase_date": "2025-13-45T10:00:00"}, 422),
        (
            {
                "destination_address": {
                    "address_line1": "1 Road",
                    "city": "London",
                    "postcode_zip": "N1",
                    "country_code": "UK",
                }
            },
            422,
        ),
    ],
)
def test_order_invalid_fields(
    server: SandboxServer, bearer: dict[str, str], overrides: dict[str, Any], status: int
) -> None:
    response = requests.post(
        url(server, "order"), headers=bearer, json=order_payload("ORD-BAD", **overrides), timeout=TIMEOUT
    )
    assert response.status_code == status
    assert set(response.json()) == {"error"}


def test_order_accepts_z_and_offset_purchase_dates(server: SandboxServer, bearer: dict[str, str]) -> None:
    pytest.importorskip("sandbox.world")
    for index, when in enumerate(("2025-05-30T10:30:00Z", "2025-05-30T10:30:00+02:00")):
        payload = order_payload(f"ORD-TZ-{index}", purchase_date=when)
        assert (
            requests.post(url(server, "order"), headers=bearer, json=payload, timeout=TIMEOUT).status_code
            == 201
        )


def test_register_kit_then_again_is_400(server: SandboxServer, world: World, bearer: dict[str, str]) -> None:
    pytest.importorskip("sandbox.world")
    payload = {
        "order_id": "ORD-PENDING",
        "kit_id": "BS1-FRESH1",
        "sample_date": world.clock.now().date().isoformat(),
        "bristol_scale": 4,
        "bm_frequency": BM_FREQUENCIES[0],
    }
    response = requests.post(url(server, "register_kit"), headers=bearer, json=payload, timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (200, {"status": "Success"})
    kit = world.kits["BS1-FRESH1"]
    assert kit.registered_at is not None
    assert kit.bristol_scale == 4
    again = requests.post(url(server, "register_kit"), headers=bearer, json=payload, timeout=TIMEOUT)
    assert again.status_code == 400
    assert "already registered" in again.json()["error"]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"order_id": None}, "order_id"),
        ({"kit_id": None}, "kit_id"),
        ({"sample_date": None}, "sample_date"),
        ({"sample_date": "01/07/2025"}, "sample_date"),
        ({"bristol_scale": 8}, "bristol_scale"),
        ({"bristol_scale": 0}, "bristol_scale"),
        ({"bristol_scale": "4"}, "bristol_scale"),
        ({"bm_frequency": "hourly"}, "bm_frequency"),
        ({"order_id": "ORD-NOPE"}, "not found"),
        ({"order_id": "ORD-FOREIGN", "kit_id": "BS1-FOREIGN"}, "not found"),
        ({"kit_id": "BS1-NOPE"}, "not found"),
        ({"kit_id": "BS1-DONE1"}, "not found"),  # a kit of another order
    ],
)
def test_register_kit_errors_are_400(
    server: SandboxServer, bearer: dict[str, str], changes: dict[str, Any], fragment: str
) -> None:
    payload: dict[str, Any] = {"order_id": "ORD-PENDING", "kit_id": "BS1-FRESH2", "sample_date": "2025-05-31"}
    for key, value in changes.items():
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    response = requests.post(url(server, "register_kit"), headers=bearer, json=payload, timeout=TIMEOUT)
    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_bad_json_and_unknown_paths_answer_json(server: SandboxServer, bearer: dict[str, str]) -> None:
    bad = requests.post(
        url(server, "order"),
        headers={**bearer, "Content-Type": "application/json"},
        data="{",
        timeout=TIMEOUT,
    )
    assert bad.status_code == 400
    assert set(bad.json()) == {"error"}
    unknown = requests.get(url(server, "no/such/thing"), headers=bearer, timeout=TIMEOUT)
    assert (unknown.status_code, set(unknown.json())) == (404, {"error"})
    wrong_method = requests.delete(url(server, "order"), headers=bearer, timeout=TIMEOUT)
    assert (wrong_method.status_code, set(wrong_method.json())) == (405, {"error"})
