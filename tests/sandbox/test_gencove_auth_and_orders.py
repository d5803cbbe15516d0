"""The Gencove simulator over real HTTP: API-key auth (DRF 401s) and kit ordering (`POST sample-kit/`)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.accounts import GENCOVE_API_KEY, OTHER_GENCOVE_PROJECT_IDS
from sandbox.model import World
from sandbox.server import SandboxServer
from tests.sandbox.gencove_http import PROJECT, TIMEOUT, kit_order, url

# --- auth -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Authentication credentials were not provided."),
        ({"Authorization": f"Bearer {GENCOVE_API_KEY}"}, "Authentication credentials were not provided."),
        ({"Authorization": "Api-Key wrong-key"}, "Invalid API key."),
    ],
)
def test_auth_failures_are_drf_401s(server: SandboxServer, headers: dict[str, str], detail: str) -> None:
    for path in (f"project-samples/{PROJECT}", "samples/x/", "sample-metadata/x", "sample-statuses/x"):
        response = requests.get(url(server, path), headers=headers, timeout=TIMEOUT)
        assert (response.status_code, response.json()) == (401, {"detail": detail}), path
    posted = requests.post(url(server, "sample-kit/"), headers=headers, json=kit_order(), timeout=TIMEOUT)
    assert (posted.status_code, posted.json()) == (401, {"detail": detail})


# --- kit ordering -----------------------------------------------------------------------------------------


def test_order_a_kit_creates_a_visible_sample(
    server: SandboxServer, world: World, api_key: dict[str, str]
) -> None:
    response = requests.post(url(server, "sample-kit/"), headers=api_key, json=kit_order(), timeout=TIMEOUT)
    assert response.status_code == 201
    sample_id = response.json()["sample_id"]
    assert set(response.json()) == {"sample_id"}
    assert world.samples[sample_id].project_id == PROJECT
    detail = requests.get(url(server, f"samples/{sample_id}/"), headers=api_key, timeout=TIMEOUT)
    assert detail.status_code == 200
    assert detail.json()["project"] == PROJECT
    metadata = requests.get(url(server, f"sample-metadata/{sample_id}"), headers=api_key, timeout=TIMEOUT)
    assert metadata.json() == {"metadata": {"customer_id": "cust_new_1"}}
    listed = requests.get(
        url(server, f"project-samples/{PROJECT}"),
        headers=api_key,
        params={"search": sample_id},
        timeout=TIMEOUT,
    ).json()
    assert [item["id"] for item in listed["results"]] == [sample_id]


def test_sample_kit_without_trailing_slash(server: SandboxServer, api_key: dict[str, str]) -> None:
    response = requests.post(url(server, "sample-kit"), headers=api_key, json=kit_order(), timeout=TIMEOUT)
    assert response.status_code == 201


REQUIRED = (
    "project_id",
    "recipient_address_name",
    "recipient_address_line1",
    "recipient_address_city",
    "recipient_address_state_region",
    "recipient_address_postal_code",
    "recipient_address_country_code",
    "recipient_email",
    "recipient_phone",
)


@pytest.mark.parametrize("field", REQUIRED)
def test_sample_kit_required_fields(server: SandboxServer, api_key: dict[str, str], field: str) -> None:
    payload = kit_order()
    payload.pop(field)
    response = requests.post(url(server, "sample-kit/"), headers=api_key, json=payload, timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (400, {field: ["This field is required."]})


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("recipient_address_name", 255),
        ("recipient_address_line1", 50),
        ("recipient_address_city", 50),
        ("recipient_address_state_region", 50),
        ("recipient_address_postal_code", 20),
        ("recipient_phone", 128),
        ("recipient_instructions", 255),
    ],
)
def test_sample_kit_length_limits(
    server: SandboxServer, api_key: dict[str, str], field: str, limit: int
) -> None:
    at_limit = requests.post(
        url(server, "sample-kit/"), headers=api_key, json=kit_order(**{field: "x" * limit}), timeout=TIMEOUT
    )
    assert at_limit.status_code == 201
    over = requests.post(
        url(server, "sample-kit/"),
        headers=api_key,
        json=kit_order(**{field: "x" * (limit + 1)}),
        timeout=TIMEOUT,
    )
    assert over.status_code == 400
    assert over.json() == {field: [f"Ensure this field has no more than {limit} characters."]}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"recipient_address_country_code": "UK"}, "recipient_address_country_code"),
        ({"recipient_address_country_code": "usa"}, "recipient_address_country_code"),
        ({"recipient_email": "jane.doe"}, "recipient_email"),
        ({"recipient_address_city": ""}, "recipient_address_city"),
        ({"recipient_phone": 14155551234}, "recipient_phone"),
        ({"project_id": "not-a-uuid"}, "project_id"),
        ({"project_id": OTHER_GENCOVE_PROJECT_IDS[0]}, "project_id"),
        ({"test_mode": "yes"}, "test_mode"),
    ],
)
def test_sample_kit_invalid_fields(
    server: SandboxServer, api_key: dict[str, str], overrides: dict[str, Any], field: str
) -> None:
    response = requests.post(
        url(server, "sample-kit/"), headers=api_key, json=kit_order(**overrides), timeout=TIMEOUT
    )
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    assert isinstance(body[field], list)
    assert isinstance(body[field][0], str)


def test_sample_kit_rejects_a_non_json_body(server: SandboxServer, api_key: dict[str, str]) -> None:
    headers = {**api_key, "Content-Type": "application/json"}
    response = requests.post(url(server, "sample-kit/"), headers=headers, data="{nope", timeout=TIMEOUT)
    assert response.status_code == 400
    assert "detail" in response.json()
