"""The Gencove simulator over real HTTP: one sample's detail, statuses, metadata, files and results."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import requests

from sandbox.accounts import GENCOVE_API_KEY, OTHER_GENCOVE_API_KEY
from sandbox.model import GENCOVE_FINAL_STATUSES, GencoveSample, StatusChange, World, status_at
from sandbox.server import SandboxServer
from tests.sandbox.gencove_http import PROJECT, TIMEOUT, url

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
