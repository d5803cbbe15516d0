"""The Gencove simulator over real HTTP: auth, kit ordering, sample endpoints and project-samples paging."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.accounts import (
    GENCOVE_API_KEY,
    GENCOVE_PROJECT_IDS,
    OTHER_GENCOVE_API_KEY,
    OTHER_GENCOVE_PROJECT_IDS,
)
from sandbox.gencove_listing import DEFAULT_LIMIT, MAX_LIMIT
from sandbox.model import GENCOVE_FINAL_STATUSES, GencoveSample, StatusChange, World, status_at
from sandbox.server import SandboxServer
from sandbox.world import generate_world

TIMEOUT = 10
PROJECT = GENCOVE_PROJECT_IDS[0]
MICRO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
ARCHIVE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")
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


@pytest.fixture
def generated() -> Iterator[SandboxServer]:
    with SandboxServer(generate_world(seed=11, kits=20, gencove_samples=450)) as running:
        yield running


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


# --- one sample -------------------------------------------------------------------------------------------


def _sample_where(world: World, predicate: Any) -> GencoveSample:
    now = world.clock.now()
    return next(
        s
        for s in world.samples.values()
        if s.account == GENCOVE_API_KEY and s.created <= now and predicate(status_at(s.timeline, now))
    )


def _final(change: StatusChange | None) -> bool:
    return change is not None and change.status in GENCOVE_FINAL_STATUSES


def test_sample_detail_of_a_succeeded_sample(
    server: SandboxServer, world: World, api_key: dict[str, str]
) -> None:
    sample = _sample_where(world, lambda c: c is not None and c.status == "succeeded")
    for path in (f"samples/{sample.sample_id}/", f"samples/{sample.sample_id}"):
        response = requests.get(url(server, path), headers=api_key, timeout=TIMEOUT)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {*LIST_ITEM_KEYS, "project", "files"}
        assert body["project"] == sample.project_id
        assert body["last_status"]["status"] == "succeeded"
        assert {f["id"] for f in body["files"]} == {f.file_id for f in sample.files}
        for file in body["files"]:
            assert set(file) == {
                "id",
                "s3_path",
                "size",
                "download_url",
                "file_type",
                "checksum_sha256",
                "shadow_mode",
            }
            assert file["download_url"].startswith(server.base_url)
            assert file["shadow_mode"] is None


def test_files_appear_only_when_final(server: SandboxServer, world: World, api_key: dict[str, str]) -> None:
    running = _sample_where(world, lambda c: not _final(c))
    body = requests.get(url(server, f"samples/{running.sample_id}"), headers=api_key, timeout=TIMEOUT).json()
    assert body["files"] == []
    assert body["failed_qc"] == []


def test_failed_qc_sample_lists_its_reasons(
    server: SandboxServer, world: World, api_key: dict[str, str]
) -> None:
    failed = _sample_where(world, lambda c: c is not None and c.status == "failed qc")
    body = requests.get(url(server, f"samples/{failed.sample_id}"), headers=api_key, timeout=TIMEOUT).json()
    assert body["failed_qc"] == failed.failed_qc
    assert body["last_status"]["status"] == "failed qc"


def test_timestamps_use_gencove_formats(server: SandboxServer, world: World, api_key: dict[str, str]) -> None:
    page = requests.get(url(server, f"project-samples/{PROJECT}"), headers=api_key, timeout=TIMEOUT).json()
    for item in page["results"]:
        assert set(item) == LIST_ITEM_KEYS
        assert MICRO_Z.match(item["created"])
        assert MICRO_Z.match(item["modified"])
        assert MICRO_Z.match(item["last_status"]["created"])
        assert ARCHIVE_TIME.match(item["archive_last_status"]["created"])
        assert item["archive_last_status"]["transition_cutoff"] is None
        assert isinstance(item["failed_qc"], list)


def test_foreign_unknown_and_future_samples_are_404(
    server: SandboxServer, world: World, api_key: dict[str, str]
) -> None:
    foreign = next(s for s in world.samples.values() if s.account == OTHER_GENCOVE_API_KEY)
    template = next(s for s in world.samples.values() if s.account == GENCOVE_API_KEY)
    future = GencoveSample(
        sample_id="99999999-0000-4000-8000-000000000000",
        project_id=PROJECT,
        account=GENCOVE_API_KEY,
        created=world.clock.now() + timedelta(days=1),
        client_id="future",
        customer=template.customer,
        metadata={},
        timeline=[StatusChange("kit_requested", world.clock.now() + timedelta(days=1))],
    )
    world.samples[future.sample_id] = future
    endpoints = (
        "samples",
        "sample-metadata",
        "sample-statuses",
        "sample-quality-controls",
        "sample-trait-scores",
    )
    for sample_id in (foreign.sample_id, "no-such-sample", future.sample_id):
        for endpoint in (*endpoints, "sample-ancestry"):
            response = requests.get(url(server, f"{endpoint}/{sample_id}"), headers=api_key, timeout=TIMEOUT)
            assert (response.status_code, response.json()) == (404, {"detail": "Not found."}), endpoint
    server.advance(timedelta(days=1))
    assert (
        requests.get(url(server, f"samples/{future.sample_id}"), headers=api_key, timeout=TIMEOUT).status_code
        == 200
    )


def test_status_history_is_newest_first(server: SandboxServer, world: World, api_key: dict[str, str]) -> None:
    sample = _sample_where(world, _final)
    now = world.clock.now()
    expected = [c for c in sample.timeline if c.at <= now][::-1]
    body = requests.get(
        url(server, f"sample-statuses/{sample.sample_id}/"), headers=api_key, timeout=TIMEOUT
    ).json()
    assert body["meta"]["count"] == len(expected)
    assert [item["status"] for item in body["results"]] == [c.status for c in expected]
    assert all(set(item) == {"id", "status", "note", "created"} for item in body["results"])
    detail = requests.get(url(server, f"samples/{sample.sample_id}"), headers=api_key, timeout=TIMEOUT).json()
    assert detail["last_status"]["id"] == body["results"][0]["id"]


def test_results_endpoints_before_and_after_success(
    server: SandboxServer, world: World, api_key: dict[str, str]
) -> None:
    pending = _sample_where(world, lambda c: not _final(c))
    qc = requests.get(
        url(server, f"sample-quality-controls/{pending.sample_id}"), headers=api_key, timeout=TIMEOUT
    )
    assert (qc.status_code, qc.json()) == (200, [])
    traits = requests.get(
        url(server, f"sample-trait-scores/{pending.sample_id}"), headers=api_key, timeout=TIMEOUT
    )
    assert traits.json() == {"meta": {"count": 0, "next": None, "previous": None}, "results": []}
    ancestry = requests.get(
        url(server, f"sample-ancestry/{pending.sample_id}"), headers=api_key, timeout=TIMEOUT
    )
    assert ancestry.status_code == 404

    done = _sample_where(world, lambda c: c is not None and c.status == "succeeded")
    qc = requests.get(
        url(server, f"sample-quality-controls/{done.sample_id}"), headers=api_key, timeout=TIMEOUT
    )
    assert qc.json() == done.quality_controls
    traits = requests.get(
        url(server, f"sample-trait-scores/{done.sample_id}"), headers=api_key, timeout=TIMEOUT
    )
    assert traits.json()["meta"]["count"] == len(done.trait_scores)
    assert traits.json()["results"] == done.trait_scores
    ancestry = requests.get(
        url(server, f"sample-ancestry/{done.sample_id}"), headers=api_key, timeout=TIMEOUT
    )
    assert ancestry.status_code == 200
    assert set(ancestry.json()) == {"ancestry", "metadata"}
    assert "value" in ancestry.json()["ancestry"]


def test_file_checksums(server: SandboxServer, world: World, api_key: dict[str, str]) -> None:
    sample = _sample_where(world, lambda c: c is not None and c.status == "succeeded")
    for deliverable in sample.files:
        response = requests.get(
            url(server, f"files/{deliverable.file_id}.sha256"), headers=api_key, timeout=TIMEOUT
        )
        assert response.status_code == 200
        name = deliverable.s3_path.rsplit("/", 1)[-1]
        assert response.text == f"{deliverable.checksum_sha256} *{name}\n"
    missing = requests.get(url(server, "files/nope.sha256"), headers=api_key, timeout=TIMEOUT)
    assert missing.status_code == 404


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
