"""What the Gencove simulator's HTTP tests share: the API's URLs, a valid kit order, the visible samples of a
project and a walk over every page of its listing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from sandbox.accounts import GENCOVE_PROJECT_IDS
from sandbox.model import GencoveSample, World
from sandbox.server import SandboxServer

TIMEOUT = 10
PROJECT = GENCOVE_PROJECT_IDS[0]


def url(server: SandboxServer, path: str) -> str:
    return f"{server.base_url}/api/v2/{path}"


def kit_order(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "project_id": PROJECT,
        "recipient_address_name": "Jane Doe",
        "recipient_address_line1": "123 Main Street",
        "recipient_address_city": "San Francisco",
        "recipient_address_state_region": "CA",
        "recipient_address_postal_code": "94102",
        "recipient_address_country_code": "US",
        "recipient_email": "jane.doe@example.com",
        "recipient_phone": "+14155551234",
        "metadata": {"customer_id": "cust_new_1"},
    }
    payload.update(overrides)
    return payload


def visible(world: World, project_id: str) -> list[GencoveSample]:
    now = world.clock.now()
    return [s for s in world.samples.values() if s.project_id == project_id and s.created <= now]


def walk(server: SandboxServer, headers: dict[str, str], params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page of project-samples, following `next` to the end."""
    next_url: str | None = url(server, f"project-samples/{PROJECT}")
    first = True
    seen: set[str] = set()
    while next_url:
        assert next_url not in seen, "a repeated next link would loop forever"
        seen.add(next_url)
        response = requests.get(next_url, headers=headers, params=params if first else None, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        first = False
        page = response.json()
        yield page
        next_url = page["meta"]["next"]
