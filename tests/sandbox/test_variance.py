"""The sandbox's variance profile: deterministic from its seed, and really varying what it claims to vary."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.accounts import GENCOVE_API_KEY, GENCOVE_PROJECT_IDS
from sandbox.model import World, status_at
from sandbox.server import SandboxServer
from sandbox.variance import BULK_ORDER_SIZE, SCORE_SPELLINGS, Variance, vary_world
from sandbox.world import generate_world

SEED = 23
PROJECT = GENCOVE_PROJECT_IDS[0]
GENCOVE = {"Authorization": f"Api-Key {GENCOVE_API_KEY}"}
LIST_ITEM_KEYS = {
    "id",
    "run",
    "created",
    "modified",
    "hidden",
    "client_id",
    "physical_id",
    "legacy_id",
    "last_status",
    "archive_last_status",
    "failed_qc",
}


def varied_world(seed: int = SEED) -> World:
    return vary_world(generate_world(seed=seed, kits=60, gencove_samples=160))


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(varied_world(), variance=Variance.from_seed(SEED)) as running:
        yield running


def get(server: SandboxServer, path: str, **params: Any) -> Any:
    response = httpx.get(f"{server.base_url}/api/v2/{path}", headers=GENCOVE, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def every_item(server: SandboxServer) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = get(server, f"project-samples/{PROJECT}", limit=200, sort_by="modified", sort_order="asc")
    while True:
        items.extend(page["results"])
        if page["meta"]["next"] is None:
            return items
        response = httpx.get(page["meta"]["next"], headers=GENCOVE, timeout=10)
        page = response.json()


def test_the_profile_and_the_world_follow_the_seed() -> None:
    assert Variance.from_seed(SEED) == Variance.from_seed(SEED)
    one, two = varied_world(), varied_world()
    assert one.samples.keys() == two.samples.keys()
    for sample_id, sample in one.samples.items():
        other = two.samples[sample_id]
        assert (sample.created, sample.timeline, sample.client_id, sample.metadata) == (
            other.created,
            other.timeline,
            other.client_id,
            other.metadata,
        )
    assert {s.created.microsecond for s in one.samples.values()} >= {0}
    plain = generate_world(seed=SEED, kits=60, gencove_samples=160)
    assert len(one.samples) == len(plain.samples) + BULK_ORDER_SIZE


def test_pages_are_capped_and_links_reordered(server: SandboxServer) -> None:
    cap = Variance.from_seed(SEED).caps["gencove.project_samples"]
    page = get(server, f"project-samples/{PROJECT}", limit=200, sort_by="modified", sort_order="asc")
    assert len(page["results"]) == cap < page["meta"]["count"]
    following = httpx.URL(page["meta"]["next"])
    assert following.is_absolute_url
    assert following.params["limit"] == str(cap)
    assert following.params["offset"] == str(cap)
    # the same parameters as the request, in another order than DRF's (request order, then limit/offset)
    assert list(following.params.keys()) != ["limit", "sort_by", "sort_order", "offset"]
    assert set(following.params.keys()) == {"limit", "sort_by", "sort_order", "offset"}
    items = every_item(server)
    assert len(items) == page["meta"]["count"]
    assert len({item["id"] for item in items}) == len(items)


def test_every_object_carries_an_unknown_field_and_timestamps_vary(server: SandboxServer) -> None:
    items = every_item(server)
    assert all(set(item) - LIST_ITEM_KEYS for item in items)
    assert all(len(item["last_status"]) > 4 for item in items)
    stamps = [item["modified"] for item in items] + [item["last_status"]["created"] for item in items]
    assert any(s.endswith("Z") for s in stamps)
    assert any(s.endswith("+00:00") for s in stamps)
    assert any(re.search(r":\d\d(Z|\+00:00)$", s) for s in stamps)  # no fractional seconds
    assert any(re.search(r"\.\d{6}(Z|\+00:00)$", s) for s in stamps)
    archive = [item["archive_last_status"]["created"] for item in items]
    assert all(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00:00$", s) for s in archive)
    assert any(item["client_id"] == "" for item in items)
    failed = [item["failed_qc"] for item in items if item["failed_qc"]]
    assert all(isinstance(reasons, list | str) for reasons in failed)


def test_both_documented_shapes_and_metadata_in_detail(server: SandboxServer) -> None:
    world = server.world
    now = world.clock.now()
    succeeded = [
        s
        for s in world.samples.values()
        if s.account == GENCOVE_API_KEY and (c := status_at(s.timeline, now)) and c.status == "succeeded"
    ]
    assert succeeded
    variance = Variance.from_seed(SEED)
    sample = succeeded[0]
    traits = get(server, f"sample-trait-scores/{sample.sample_id}")
    assert isinstance(traits, list)
    assert len(traits) == len(sample.trait_scores)
    qc = get(server, f"sample-quality-controls/{sample.sample_id}")
    assert isinstance(qc, dict)
    assert qc["meta"]["count"] == len(sample.quality_controls)
    assert len(qc["results"]) == min(variance.caps["gencove.quality_controls"], len(sample.quality_controls))
    with_metadata = [s for s in succeeded if variance.metadata_in_detail(s.sample_id)]
    without = [s for s in succeeded if not variance.metadata_in_detail(s.sample_id)]
    assert with_metadata
    assert without
    assert get(server, f"samples/{with_metadata[0].sample_id}")["metadata"] == with_metadata[0].metadata
    assert "metadata" not in get(server, f"samples/{without[0].sample_id}")


def test_biomesight_score_keys_and_csv_dialects_vary(server: SandboxServer) -> None:
    from sandbox.accounts import BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET

    world = server.world
    now = world.clock.now()
    ready = [
        k
        for k in world.kits.values()
        if k.account == BIOMESIGHT_CLIENT_ID and k.results_ready_at is not None and k.results_ready_at <= now
    ]
    assert len(ready) >= 4
    base = f"{server.base_url}/api/v1"
    token = httpx.post(
        f"{base}/auth/token",
        auth=(BIOMESIGHT_CLIENT_ID, BIOMESIGHT_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=10,
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    names: set[str] = set()
    starts: set[bytes] = set()
    endings: set[bool] = set()
    for kit in ready:
        body = httpx.get(f"{base}/results/{kit.kit_id}", headers=bearer, timeout=10).json()
        names |= set(body["scores"])
        csv = base64.b64decode(
            httpx.get(
                f"{base}/results/{kit.kit_id}", params={"format": "csv"}, headers=bearer, timeout=10
            ).json()["csv"]
        )
        starts.add(csv[:3])
        endings.add(b"\r\n" in csv)
    assert names - set(SCORE_SPELLINGS)  # spellings beyond the doc's own
    assert b"\xef\xbb\xbf" in starts
    assert len(starts) > 1
    assert endings == {True, False}


def test_listing_defaults_are_narrower_unless_asked(server: SandboxServer) -> None:
    """Under the variance, `project-samples` shows only visible, available samples unless the filters say
    `all`: the documented filters' defaults are unpublished."""
    now = server.clock.now()
    ours = [
        s for s in server.world.samples.values() if s.account == GENCOVE_API_KEY and s.project_id == PROJECT
    ]
    ours = [s for s in ours if s.created <= now]
    narrow = get(server, f"project-samples/{PROJECT}", limit=1)["meta"]["count"]
    wide = get(server, f"project-samples/{PROJECT}", limit=1, hidden_status="all", archive_status="all")
    assert wide["meta"]["count"] == len(ours)
    assert narrow < len(ours)


def test_serve_takes_variance() -> None:
    import argparse

    from sandbox.server import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--variance"]).variance is True
    assert parser.parse_args([]).variance is False
