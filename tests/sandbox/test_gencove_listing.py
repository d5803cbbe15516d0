"""The Gencove simulator over real HTTP: project-samples paging, sorting and filters against ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.accounts import GENCOVE_API_KEY, OTHER_GENCOVE_PROJECT_IDS
from sandbox.gencove_listing import DEFAULT_LIMIT, MAX_LIMIT
from sandbox.model import GENCOVE_FINAL_STATUSES, GencoveSample, StatusChange, World, status_at
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from tests.sandbox.gencove_http import PROJECT, TIMEOUT, url, visible, walk


@pytest.fixture
def generated() -> Iterator[SandboxServer]:
    with SandboxServer(generate_world(seed=11, kits=20, gencove_samples=450)) as running:
        yield running


# --- project-samples --------------------------------------------------------------------------------------


def test_paging_to_the_end_returns_every_visible_sample_once(
    generated: SandboxServer, api_key: dict[str, str]
) -> None:
    truth = {s.sample_id for s in visible(generated.world, PROJECT)}
    pages = list(walk(generated, api_key, {"limit": 50}))
    ids = [item["id"] for page in pages for item in page["results"]]
    assert len(ids) == len(set(ids)) == len(truth)
    assert set(ids) == truth
    assert all(page["meta"]["count"] == len(truth) for page in pages)
    assert len(pages) == -(-len(truth) // 50)
    assert pages[0]["meta"]["previous"] is None
    assert pages[-1]["meta"]["next"] is None


def test_links_are_absolute_and_keep_other_parameters(
    generated: SandboxServer, api_key: dict[str, str]
) -> None:
    params = {"limit": 20, "offset": 40, "sort_by": "client_id", "sort_order": "asc"}
    page = requests.get(
        url(generated, f"project-samples/{PROJECT}"), headers=api_key, params=params, timeout=TIMEOUT
    ).json()
    for link, offset in ((page["meta"]["next"], 60), (page["meta"]["previous"], 20)):
        parts = urlsplit(link)
        assert f"{parts.scheme}://{parts.netloc}" == generated.base_url
        assert parts.path == f"/api/v2/project-samples/{PROJECT}"
        query = parse_qs(parts.query)
        assert query["limit"] == ["20"]
        assert query["offset"] == [str(offset)]
        assert query["sort_by"] == ["client_id"]
        assert query["sort_order"] == ["asc"]
    # Going back to the first page drops the offset, as DRF does.
    second = requests.get(
        url(generated, f"project-samples/{PROJECT}"),
        headers=api_key,
        params={"limit": 20, "offset": 20},
        timeout=TIMEOUT,
    ).json()
    assert "offset" not in parse_qs(urlsplit(second["meta"]["previous"]).query)


def test_limit_default_and_cap(generated: SandboxServer, api_key: dict[str, str]) -> None:
    count = len(visible(generated.world, PROJECT))
    assert count > MAX_LIMIT
    default = requests.get(
        url(generated, f"project-samples/{PROJECT}"), headers=api_key, timeout=TIMEOUT
    ).json()
    assert len(default["results"]) == DEFAULT_LIMIT
    capped = requests.get(
        url(generated, f"project-samples/{PROJECT}"),
        headers=api_key,
        params={"limit": 10_000},
        timeout=TIMEOUT,
    ).json()
    assert len(capped["results"]) == MAX_LIMIT
    assert parse_qs(urlsplit(capped["meta"]["next"]).query)["limit"] == [str(MAX_LIMIT)]


@pytest.mark.parametrize("sort_by", ["client_id", "created", "id", "modified", "status"])
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_sorting(generated: SandboxServer, api_key: dict[str, str], sort_by: str, sort_order: str) -> None:
    params = {"sort_by": sort_by, "sort_order": sort_order, "limit": 200}
    items = [item for page in walk(generated, api_key, params) for item in page["results"]]
    keys = [item["last_status"]["status"] if sort_by == "status" else item[sort_by] for item in items]
    assert keys == sorted(keys, reverse=sort_order == "desc")


def test_modified_after_matches_ground_truth(generated: SandboxServer, api_key: dict[str, str]) -> None:
    world = generated.world
    now = world.clock.now()
    samples = visible(world, PROJECT)
    cutoff = sorted(s.modified_at(now) for s in samples)[len(samples) // 2]
    for spelled in (cutoff.isoformat(), cutoff.isoformat().replace("+00:00", "Z")):
        items = [i for page in walk(generated, api_key, {"modified_after": spelled}) for i in page["results"]]
        expected = {s.sample_id for s in samples if s.modified_at(now) >= cutoff}
        assert {item["id"] for item in items} == expected
    # An offset spelling of the same instant selects the same samples.
    shifted = (cutoff + timedelta(hours=2)).isoformat().replace("+00:00", "+02:00")
    items = [i for page in walk(generated, api_key, {"modified_after": shifted}) for i in page["results"]]
    assert len(items) == len(expected)


def test_modified_after_sees_changes_after_a_clock_advance(
    generated: SandboxServer, api_key: dict[str, str]
) -> None:
    world = generated.world
    before = world.clock.now()
    generated.advance(timedelta(days=3))
    now = world.clock.now()
    items = [
        item
        for page in walk(generated, api_key, {"modified_after": before.isoformat()})
        for item in page["results"]
    ]
    expected = {s.sample_id for s in visible(world, PROJECT) if s.modified_at(now) >= before}
    assert {item["id"] for item in items} == expected
    assert expected, "a three-day window should move some samples"


def test_created_window_filters(generated: SandboxServer, api_key: dict[str, str]) -> None:
    samples = visible(generated.world, PROJECT)
    created = sorted(s.created for s in samples)
    low, high = created[len(created) // 4], created[3 * len(created) // 4]
    params = {"created_after": low.isoformat(), "created_before": high.isoformat()}
    items = [i for page in walk(generated, api_key, params) for i in page["results"]]
    assert {i["id"] for i in items} == {s.sample_id for s in samples if low <= s.created <= high}


@pytest.mark.parametrize("status", ["all", "completed", "failed", "running", "succeeded"])
def test_status_filter(generated: SandboxServer, api_key: dict[str, str], status: str) -> None:
    now = generated.world.clock.now()
    failed = {"failed", "failed qc", "failed_qc"}

    def wanted(sample: GencoveSample) -> bool:
        change = status_at(sample.timeline, now)
        current = change.status if change else "kit_requested"
        return {
            "all": True,
            "completed": current in GENCOVE_FINAL_STATUSES,
            "failed": current in failed,
            "running": current not in GENCOVE_FINAL_STATUSES,
            "succeeded": current == "succeeded",
        }[status]

    items = [
        i for page in walk(generated, api_key, {"status": status, "limit": 200}) for i in page["results"]
    ]
    assert {i["id"] for i in items} == {s.sample_id for s in visible(generated.world, PROJECT) if wanted(s)}


def test_archive_and_hidden_filters(server: SandboxServer, world: World, api_key: dict[str, str]) -> None:
    now = world.clock.now()
    samples = visible(world, PROJECT)
    archived = {
        s.sample_id for s in samples if (c := status_at(s.archive_timeline, now)) and c.status == "archived"
    }
    hidden = {s.sample_id for s in samples if s.hidden}
    assert archived
    assert hidden
    cases = {
        ("archive_status", "archived"): archived,
        ("archive_status", "available"): {s.sample_id for s in samples} - archived,
        ("hidden_status", "hidden"): hidden,
        ("hidden_status", "visible"): {s.sample_id for s in samples} - hidden,
    }
    for (name, value), expected in cases.items():
        items = [i for page in walk(server, api_key, {name: value, "limit": 200}) for i in page["results"]]
        assert {i["id"] for i in items} == expected, (name, value)


def test_search_matches_id_client_id_and_metadata(
    server: SandboxServer, world: World, api_key: dict[str, str]
) -> None:
    sample = visible(world, PROJECT)[17]
    for needle in (sample.sample_id, sample.client_id, sample.metadata["order_number"]):
        items = [i for page in walk(server, api_key, {"search": needle}) for i in page["results"]]
        expected = {
            s.sample_id
            for s in visible(world, PROJECT)
            if needle.lower() in f"{s.sample_id} {s.client_id} {s.metadata}".lower()
        }
        assert sample.sample_id in {i["id"] for i in items}
        assert {i["id"] for i in items} == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"modified_after": "yesterday"}, "modified_after"),
        ({"created_before": "2025-13-01T00:00:00Z"}, "created_before"),
        ({"status": "done"}, "status"),
        ({"sort_by": "name"}, "sort_by"),
        ({"sort_order": "up"}, "sort_order"),
        ({"archive_status": "gone"}, "archive_status"),
        ({"hidden_status": "maybe"}, "hidden_status"),
    ],
)
def test_bad_parameters_are_400(
    server: SandboxServer, api_key: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = requests.get(
        url(server, f"project-samples/{PROJECT}"), headers=api_key, params=params, timeout=TIMEOUT
    )
    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize(
    "project_id", [OTHER_GENCOVE_PROJECT_IDS[0], "00000000-0000-4000-8000-00000000dead", "junk"]
)
def test_foreign_or_unknown_project_is_a_bare_list_400(
    server: SandboxServer, api_key: dict[str, str], project_id: str
) -> None:
    response = requests.get(url(server, f"project-samples/{project_id}/"), headers=api_key, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json() == ["Project does not exist or you do not have privileges to access it."]


def test_only_samples_created_by_now_are_listed(
    server: SandboxServer, world: World, api_key: dict[str, str]
) -> None:
    template = visible(world, PROJECT)[0]
    later = world.clock.now() + timedelta(hours=5)
    world.samples["77777777-0000-4000-8000-000000000000"] = GencoveSample(
        sample_id="77777777-0000-4000-8000-000000000000",
        project_id=PROJECT,
        account=GENCOVE_API_KEY,
        created=later,
        client_id="later",
        customer=template.customer,
        metadata={},
        timeline=[StatusChange("kit_requested", later)],
    )

    def listed() -> int:
        page = requests.get(
            url(server, f"project-samples/{PROJECT}"), headers=api_key, timeout=TIMEOUT
        ).json()
        return int(page["meta"]["count"])

    before = listed()
    assert before == len(visible(world, PROJECT))
    server.set_time(later)
    assert listed() == before + 1


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_modified_reflects_the_latest_visible_change(
    server: SandboxServer, world: World, api_key: dict[str, str]
) -> None:
    now = world.clock.now()
    page = requests.get(url(server, f"project-samples/{PROJECT}"), headers=api_key, timeout=TIMEOUT).json()
    for item in page["results"]:
        assert _moment(item["modified"]) == world.samples[item["id"]].modified_at(now)
