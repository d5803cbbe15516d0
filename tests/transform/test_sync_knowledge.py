"""What a sync decides from payloads, pure, in transform/: changes, readiness, bundles, pushes."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from transform.biomesight import (
    status_entity,
    taxonomy_raw_body,
    transform_biomesight_report_pdfs,
    transform_biomesight_taxonomy_answers,
    triage_biomesight_statuses,
)
from transform.changes import is_change
from transform.gencove import (
    final_status,
    has_results,
    pushed_samples,
    sample_bundle,
    triage_gencove_listing,
)
from transform.schemas import TABLES

OBSERVED = datetime(2025, 7, 11, 9, 0, tzinfo=UTC)
JULY_10 = datetime(2025, 7, 10, 14, 22, tzinfo=UTC)
CSV = b"taxonomy,abundance\nk__Bacteria; p__Firmicutes; g__Faecalibacterium,0.5\n"


@dataclass(frozen=True)
class Held:
    partner_status: str
    partner_date: datetime


def _kit(status: str, date: object = "2025-07-10T14:22:00Z", kit_id: str = "BS1-A") -> dict[str, Any]:
    return {"kit_id": kit_id, "status": status, "description": "", "date": date}


@pytest.mark.parametrize(
    ("previous", "status", "date", "changed"),
    [
        (None, "Sample Received", "2025-07-10T14:22:00Z", True),
        (Held("Sample Received", JULY_10), "Sample Received", "2025-07-10T14:22:00Z", False),
        (
            Held("Sample Received", JULY_10),
            "Sample Received",
            "2025-07-10T16:22:00+02:00",
            False,
        ),  # same moment
        (Held("Sample Received", JULY_10), "Sample Received", "2025-07-10T14:22:00", False),  # no zone: UTC
        (Held("Sample Received", JULY_10), "Sample Received", "2025-07-11T08:00:00Z", True),
        (Held("Sample Received", JULY_10), "Lab Processing", "2025-07-10T14:22:00Z", True),
        (Held("Sample Received", JULY_10), "Sample Received", "not a date", True),  # the transform says why
        (Held("Sample Received", JULY_10), "Sample Received", None, False),
    ],
)
def test_is_change(previous: Held | None, status: str, date: object, changed: bool) -> None:
    assert is_change(previous, status, date) is changed


def test_triage_lands_changes_and_undated_and_finds_ready_kits() -> None:
    known = {("kit", "BS1-SAME"): Held("Results Processed", JULY_10)}
    kits = {
        "BS1-SAME": _kit("Results Processed", kit_id="BS1-SAME"),  # unchanged, but ready: results wanted
        "BS1-NEW": _kit("Sample Received", kit_id="BS1-NEW"),
        "BS1-UNDATED": _kit("Sample Received", date=None, kit_id="BS1-UNDATED"),
    }
    orders = {"ORD-1": {"order_id": "ORD-1", "status": "Dispatched", "date": "2025-07-09T08:00:00Z"}}
    triage = triage_biomesight_statuses({"order": orders, "kit": kits}, known)
    assert set(triage.changed["kit"]) == {"BS1-NEW", "BS1-UNDATED"}
    assert set(triage.changed["order"]) == {"ORD-1"}
    assert triage.status_changes == 3  # the undated one counts as a change: nothing held to compare with
    assert triage.newly_ready == ["BS1-SAME"]


def test_triage_reports_an_unchanged_unknown_status_every_run() -> None:
    known = {("kit", "BS1-A"): Held("Teleported", JULY_10)}
    triage = triage_biomesight_statuses({"kit": {"BS1-A": _kit("Teleported")}}, known)
    assert not triage.changed["kit"]
    assert triage.status_changes == 0
    assert triage.still_unknown == {("biomesight", "Teleported"): 1}


@pytest.mark.parametrize(
    ("payload", "entity"),
    [
        ({"kit_id": "BS1-A", "status": "Sample Received"}, "kit"),
        ({"order_id": "ORD-1", "status": "Dispatched"}, "order"),
        ({"kit_id": "BS1-A", "order_id": "ORD-1", "status": "Sample Received"}, "kit"),
        # both ids, an order's status: the order's update, as the partner's example reads
        ({"kit_id": "BS1-A", "order_id": "ORD-1", "status": "Dispatched"}, "order"),
        ({"kit_id": "BS1-A", "order_id": "ORD-1", "status": "Teleported"}, "kit"),
        ({"kit_id": " ", "order_id": "ORD-1", "status": "Sample Received"}, "order"),
        ({"kit_id": "", "status": "Sample Received"}, "kit"),  # no usable id: the one named
    ],
)
def test_status_entity(payload: dict[str, Any], entity: str) -> None:
    assert status_entity(payload) == entity


def test_a_decoded_csv_kept_raw_reprocesses_to_the_same_rows() -> None:
    stored = {"BS1-A": taxonomy_raw_body(CSV), "BS1-B": {"csv": "not base64!"}}
    assert base64.b64decode(stored["BS1-A"]["csv"]) == CSV
    result = transform_biomesight_taxonomy_answers(stored, observed_at=OBSERVED)
    assert set(result.table("taxonomy").column("kit_id").to_pylist()) == {"BS1-A"}
    assert result.table("quarantine").column("entity_id").to_pylist() == ["BS1-B"]


@dataclass(frozen=True)
class Stored:
    path: str
    size_bytes: int
    sha256: str


def test_report_pdf_rows() -> None:
    result = transform_biomesight_report_pdfs(
        {"BS1-A": Stored("files/biomesight/reports/a.pdf", 10, "ab" * 32)}, observed_at=OBSERVED
    )
    table = result.table("report_pdfs")
    assert table.schema.equals(TABLES["report_pdfs"].schema)
    assert table.to_pylist()[0] | {"observed_at": None} == {
        "provider": "biomesight",
        "kit_id": "BS1-A",
        "path": "files/biomesight/reports/a.pdf",
        "size_bytes": 10,
        "sha256": "ab" * 32,
        "observed_at": None,
    }
    assert transform_biomesight_report_pdfs({}, observed_at=OBSERVED).tables == {}


def _sample(sample_id: str, status: str | None, created: str = "2025-07-10T14:22:00Z") -> dict[str, Any]:
    last = None if status is None else {"status": status, "created": created}
    return {"id": sample_id, "client_id": "S01", "last_status": last}


def test_gencove_listing_triage() -> None:
    known = {"s-same": Held("running", JULY_10)}
    page = [_sample("s-same", "running"), _sample("s-done", "succeeded"), _sample("s-qc", "failed qc")]
    triage = triage_gencove_listing(page, known)
    assert triage.status_changes == 2
    assert triage.final == ["s-done", "s-qc"]


def test_final_status_and_results() -> None:
    assert final_status(_sample("s", "succeeded")) == "succeeded"
    assert final_status(_sample("s", "running")) is None
    assert final_status(_sample("s", None)) is None
    assert has_results("succeeded")
    assert not has_results("failed qc")


def test_bundle_leaves_out_parts_not_fetched() -> None:
    bundle = sample_bundle(sample={"id": "s"}, metadata={}, statuses=[], qc=[])
    assert set(bundle) == {"sample", "metadata", "statuses", "qc"}  # a failed sample has no results to read
    full = sample_bundle(sample={"id": "s"}, metadata={}, statuses=[], qc=[], traits=[], ancestry={})
    assert set(full) == {"sample", "metadata", "statuses", "qc", "traits", "ancestry"}


def test_pushed_samples() -> None:
    event = {
        "event_id": "e1",
        "event_type": "analysis_complete_v2",
        "payload": {"project": {"id": "p1"}, "samples": [{"id": "s1"}, {"id": ""}, "junk", {"id": "s2"}]},
    }
    assert pushed_samples(event) == {"s1": "p1", "s2": "p1"}
    assert pushed_samples({"event_id": "e2", "payload": None}) == {}
