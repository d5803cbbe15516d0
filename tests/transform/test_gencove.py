"""Gencove payloads -> kits, status events, deliverables, quality controls, trait scores, ancestry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from transform.gencove import (
    METADATA_SAFE_FIELDS,
    failed_qc_list,
    samples_without_customer_id,
    transform_gencove_ancestry,
    transform_gencove_project_samples,
    transform_gencove_quality_controls,
    transform_gencove_sample_customers,
    transform_gencove_sample_statuses,
    transform_gencove_samples,
    transform_gencove_trait_scores,
)
from transform.platform import transform_platform_export
from transform.pseudonym import customer_key
from transform.raw import fit_to_keep
from transform.schemas import TABLES

PROJECT = "67931e57-c374-4c0b-9616-8b809ad5b657"
SAMPLE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def list_item(sample_id: str = SAMPLE, status: str = "running", **extra: Any) -> dict[str, Any]:
    return {
        "id": sample_id,
        "run": None,
        "created": "2025-10-31T12:34:56.123456Z",
        "modified": "2025-11-02T08:00:00Z",
        "hidden": False,
        "client_id": "cust_12345",
        "physical_id": "",
        "legacy_id": "",
        "last_status": {"id": "s-1", "status": status, "note": "", "created": "2025-11-02T08:00:00Z"},
        "archive_last_status": {
            "id": "a-1",
            "status": "available",
            "created": "2025-10-31 12:34:56.394485+00:00",
            "transition_cutoff": None,
        },
        "failed_qc": [],
        **extra,
    }


def _assert_schemas(result: Any) -> None:
    for name, table in result.tables.items():
        assert table.schema == TABLES[name].schema, name


def test_list_items_become_kits_and_last_status_events(key: bytes, observed_at: datetime) -> None:
    items = [list_item(), list_item("s-2", status="failed qc", failed_qc=["format"])]
    result = transform_gencove_project_samples(items, project_id=PROJECT, key=key, observed_at=observed_at)
    _assert_schemas(result)
    kits = {kit["kit_id"]: kit for kit in result.table("kits").to_pylist()}
    kit = kits[SAMPLE]
    assert kit["provider"] == "gencove"
    assert kit["project_id"] == PROJECT
    assert kit["customer_key"] == customer_key("cust_12345", key)
    assert kit["archive_status"] == "available"
    assert kit["archive_status_at"] == datetime(2025, 10, 31, 12, 34, 56, 394485, tzinfo=UTC)
    assert kit["created_at"] == datetime(2025, 10, 31, 12, 34, 56, 123456, tzinfo=UTC)
    assert kit["hidden"] is False
    assert kit["failed_qc"] == []
    assert kit["physical_id"] is None
    assert kit["metadata_json"] is None
    assert kits["s-2"]["failed_qc"] == ["format"]
    events = {e["entity_id"]: e for e in result.table("status_events").to_pylist()}
    assert (events[SAMPLE]["stage"], events["s-2"]["stage"], events["s-2"]["failure_reason"]) == (
        "processing",
        "failed",
        "failed_qc",
    )
    assert "cust_12345" not in json.dumps(result.table("kits").to_pylist(), default=str)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], []),
        (["format", "coverage"], ["format", "coverage"]),
        ("", []),
        ("format", ["format"]),
        ("a, b", ["a", "b"]),
        (None, None),
        (3, None),
    ],
)
def test_failed_qc_list_or_string(value: object, expected: list[str] | None) -> None:
    assert failed_qc_list(value) == expected


def test_list_item_problems_are_quarantined(key: bytes, observed_at: datetime) -> None:
    undated = list_item("s-3")
    undated["last_status"] = {"status": "running"}
    items = [{"client_id": "cust_1"}, "junk", undated, list_item("s-4", status="beamed_up")]
    result = transform_gencove_project_samples(items, project_id=PROJECT, key=key, observed_at=observed_at)
    reasons = sorted(result.quarantine.column("reason").to_pylist())
    assert reasons == ["bad_date", "missing_field", "not_an_object"]
    assert result.quarantine.column("payload_excerpt").null_count == len(reasons)
    assert sorted(result.table("kits").column("kit_id").to_pylist()) == [
        "s-3",
        "s-4",
    ]  # undated event, kit kept
    assert result.unknown_statuses == {("gencove", "beamed_up"): 1}


def test_sample_detail_gives_kit_metadata_and_deliverables(key: bytes, observed_at: datetime) -> None:
    detail = list_item(
        project=PROJECT,
        status="succeeded",
        metadata={
            "customer_id": "cust_12345",
            "order_number": "ORD-2025-001",
            "email": "jane.doe@example.com",
        },
        files=[
            {
                "id": "f-1",
                "s3_path": "bucket/x.vcf.gz",
                "size": 123,
                "download_url": "https://s3.example/x?X-Amz-Signature=abc",
                "file_type": "impute-vcf",
                "checksum_sha256": "ab" * 32,
                "shadow_mode": None,
            },
            {
                "id": "f-2",
                "size": None,
                "download_url": "https://s3.example/y?sig=1",
                "file_type": "ancestry-json",
            },
        ],
    )
    result = transform_gencove_samples([detail], key=key, observed_at=observed_at)
    _assert_schemas(result)
    [kit] = result.table("kits").to_pylist()
    assert kit["project_id"] == PROJECT
    # The customer id becomes the key; the order number and the e-mail are not declared safe: dropped.
    assert kit["customer_key"] == customer_key("cust_12345", key)
    assert json.loads(kit["metadata_json"]) == {}
    files = result.table("deliverables").to_pylist()
    assert [(f["file_id"], f["file_type"], f["size_bytes"]) for f in files] == [
        ("f-1", "impute-vcf", 123),
        ("f-2", "ancestry-json", None),
    ]
    assert files[0]["checksum_sha256"] == "ab" * 32
    everything = json.dumps([t.to_pylist() for t in result.tables.values()], default=str)
    assert "s3.example" not in everything
    assert "Signature" not in everything
    assert result.table("status_events").column("stage").to_pylist() == ["results_ready"]


def test_metadata_endpoint_payloads_are_scrubbed_and_joined(key: bytes, observed_at: datetime) -> None:
    detail = list_item(project=PROJECT)
    metadata = {
        SAMPLE: {"metadata": {"channel": "app", "phone": "+1 555", "note": "call Jane Doe after 6"}},
        "s-only": {"metadata": {"a": 1, "customer_id": "CUST-000042"}},
    }
    result = transform_gencove_samples(
        [detail], key=key, observed_at=observed_at, metadata_by_sample=metadata
    )
    kits = {kit["kit_id"]: kit for kit in result.table("kits").to_pylist()}
    assert json.loads(kits[SAMPLE]["metadata_json"]) == {"channel": "app"}
    assert json.loads(kits["s-only"]["metadata_json"]) == {}
    assert kits["s-only"]["customer_key"] == customer_key("CUST-000042", key)
    assert "Jane" not in json.dumps([t.to_pylist() for t in result.tables.values()], default=str)
    assert result.table("deliverables").num_rows == 0  # no files key, nothing to replace


def test_malformed_files_quarantine_only_the_deliverables(key: bytes, observed_at: datetime) -> None:
    detail = list_item(
        project=PROJECT, files=[{"file_type": "impute-vcf", "download_url": "https://x/y?sig"}]
    )
    result = transform_gencove_samples([detail], key=key, observed_at=observed_at)
    assert result.table("kits").num_rows == 1
    assert result.table("deliverables").num_rows == 0
    [row] = result.quarantine.to_pylist()
    assert row["reason"] == "malformed_files"
    assert row["payload_excerpt"] is None


def test_sample_statuses_give_full_history(observed_at: datetime) -> None:
    history = [
        {"status": "kit_requested", "note": "", "created": "2025-09-01T10:00:00Z"},
        {"status": "kit_ordered", "note": "", "created": "2025-09-02T10:00:00Z"},
        {"status": "running", "note": "", "created": "2025-10-01T10:00:00Z"},
        {"status": "failed_qc", "note": "low coverage", "created": "2025-10-05T10:00:00Z"},
        {"note": "no status"},
    ]
    page = {"meta": {"count": len(history), "next": None}, "results": history}
    result = transform_gencove_sample_statuses({SAMPLE: page, "s-2": "oops"}, observed_at=observed_at)
    events = result.table("status_events").to_pylist()
    assert [e["stage"] for e in events] == ["ordered", "ordered", "processing", "failed"]
    assert events[-1]["failure_reason"] == "failed_qc"
    assert events[-1]["description"] == "low coverage"
    assert sorted(result.quarantine.column("reason").to_pylist()) == ["missing_field", "not_a_list"]


def test_quality_controls(observed_at: datetime) -> None:
    checks = [
        {
            "quality_control_type": {"key": "bases_dup_rate", "type": "fastq"},
            "quality_control": {
                "value_expected": 0.2,
                "value_measured": 0.05,
                "value_string": "",
                "status": "succeeded",
            },
        },
        {
            "quality_control_type": {"key": "effective_coverage", "type": "bam"},
            "quality_control": {"value_expected": "0.5", "value_measured": "n/a", "status": "failed"},
        },
    ]
    result = transform_gencove_quality_controls(
        {SAMPLE: checks, "s-2": [{"quality_control": {}}]}, observed_at=observed_at
    )
    _assert_schemas(result)
    rows = result.table("quality_controls").to_pylist()
    assert [(r["qc_key"], r["value_expected"], r["value_measured"], r["status"]) for r in rows] == [
        ("bases_dup_rate", 0.2, 0.05, "succeeded"),
        ("effective_coverage", 0.5, None, "failed"),
    ]
    assert result.quarantine.column("reason").to_pylist() == ["malformed_quality_controls"]


def test_trait_scores(observed_at: datetime) -> None:
    items = [
        {
            "trait_score": {"value": 1.7, "percentile": 83},
            "trait_distribution": {"value": [1, 2, 3], "version": "v1"},
            "trait": {"key": "height"},
            "trait_unit": {"key": "cm"},
            "risk": None,
        },
        {"trait_score": {"value": 0.2, "percentile": 10}, "trait": {"key": "t2d"}, "risk": "not_high_risk"},
    ]
    result = transform_gencove_trait_scores({SAMPLE: {"results": items}, "s-2": 42}, observed_at=observed_at)
    _assert_schemas(result)
    rows = {r["trait_key"]: r for r in result.table("trait_scores").to_pylist()}
    assert rows["height"]["percentile"] == 83.0
    assert rows["height"]["unit_key"] == "cm"
    assert json.loads(rows["height"]["distribution_json"]) == [1, 2, 3]
    assert rows["t2d"]["risk"] == "not_high_risk"
    assert rows["t2d"]["distribution_json"] is None
    assert result.quarantine.column("reason").to_pylist() == ["malformed_trait_scores"]


def test_ancestry_flattens_plain_mappings_and_keeps_json(key: bytes, observed_at: datetime) -> None:
    plain = {
        "ancestry": {"value": {"Northwestern European": 0.7, "Southern European": 0.3}},
        "metadata": {"value": {"reference": "v3", "email": "x@example.com"}},
    }
    nested = {
        "ancestry": {"value": {"populations": [{"id": "NWE", "fraction": 1.0}]}},
        "metadata": {"value": None},
    }
    result = transform_gencove_ancestry(
        {SAMPLE: plain, "s-2": nested, "s-3": []}, key=key, observed_at=observed_at
    )
    _assert_schemas(result)
    rows = result.table("ancestry").to_pylist()
    assert {(r["kit_id"], r["population"], r["fraction"]) for r in rows} == {
        (SAMPLE, "Northwestern European", 0.7),
        (SAMPLE, "Southern European", 0.3),
    }
    reports = {r["kit_id"]: r for r in result.table("ancestry_reports").to_pylist()}
    assert json.loads(reports["s-2"]["ancestry_json"]) == nested["ancestry"]["value"]
    assert json.loads(reports[SAMPLE]["metadata_json"]) == {"reference": "v3"}
    assert result.quarantine.column("entity_id").to_pylist() == ["s-3"]


@pytest.mark.parametrize(
    ("client_id", "metadata", "expected"),
    [
        ("", {"customer_id": "CUST-000007", "order_number": "GX-1"}, "CUST-000007"),  # the kit guide's way
        ("CUST-000007", {"customer_id": "CUST-000007"}, "CUST-000007"),
        ("cust_7", {"customer_id": "CUST-000007"}, "CUST-000007"),  # the metadata wins over client_id
        ("CUST-000007", {"order_number": "GX-1"}, "CUST-000007"),  # an older integration: client_id only
        ("CUST-000007", {"customer_id": "  "}, "CUST-000007"),  # a blank id is no id
        ("", {"order_number": "GX-1"}, None),  # no id anywhere: keyless, not guessed
        ("", {}, None),
    ],
)
def test_the_customer_key_comes_from_metadata_then_client_id(
    key: bytes, observed_at: datetime, client_id: str, metadata: dict[str, Any], expected: str | None
) -> None:
    want = None if expected is None else customer_key(expected, key)
    detail = list_item(client_id=client_id, project=PROJECT)
    from_endpoint = transform_gencove_samples(
        [detail], key=key, observed_at=observed_at, metadata_by_sample={SAMPLE: {"metadata": metadata}}
    )
    inline = transform_gencove_samples([{**detail, "metadata": metadata}], key=key, observed_at=observed_at)
    for result in (from_endpoint, inline):
        [kit] = result.table("kits").to_pylist()
        assert kit["customer_key"] == want


def test_a_listed_kit_ordering_sample_is_keyless_until_its_metadata_is_read(
    key: bytes, observed_at: datetime
) -> None:
    """The listing carries no metadata and client_id is "": no key there, and none guessed."""
    listed = transform_gencove_project_samples(
        [list_item(client_id="")], project_id=PROJECT, key=key, observed_at=observed_at
    )
    assert listed.table("kits").column("customer_key").to_pylist() == [None]


def test_one_customer_has_one_key_at_both_partners(key: bytes, observed_at: datetime) -> None:
    """Biomesight's user.id (via the platform export) and Gencove's metadata.customer_id, the same id."""
    export_row = {
        "order_id": "ORD-1",
        "kit_id": "BS1-AAAAA",
        "purchase_date": "2026-05-01T10:00:00Z",
        "customer_id": "CUST-000123",
        "country_code": "GB",
    }
    biomesight = transform_platform_export([export_row], key=key, observed_at=observed_at)
    gencove = transform_gencove_samples(
        [list_item(client_id="")],
        key=key,
        observed_at=observed_at,
        metadata_by_sample={SAMPLE: {"metadata": {"customer_id": "CUST-000123"}}},
    )
    keys = {
        *biomesight.table("orders").column("customer_key").to_pylist(),
        *biomesight.table("kits").column("customer_key").to_pylist(),
        *gencove.table("kits").column("customer_key").to_pylist(),
    }
    assert keys == {customer_key("CUST-000123", key)}


def test_raw_metadata_keeps_only_the_customer_id_and_declared_fields() -> None:
    """Raw responses are kept to be transformed again: the id stays verbatim, free text and order numbers go;
    Gencove's own report metadata (an ancestry report's {"value": ...}) is kept as before."""
    bundle = {
        "sample": {
            "id": SAMPLE,
            "client_id": "",
            "metadata": {"customer_id": "C-1", "note": "Jane Doe, +1 555"},
        },
        "metadata": {
            "metadata": {"customer_id": "C-1", "order_number": "GX-9", "channel": "web", "n": {"a": 1}}
        },
        "ancestry": {"ancestry": {"value": {"x": 1.0}}, "metadata": {"value": {"version": "v2"}}},
    }
    kept = fit_to_keep(bundle)
    assert kept["sample"]["metadata"] == {"customer_id": "C-1"}
    assert kept["metadata"] == {"metadata": {"customer_id": "C-1", "channel": "web"}}
    assert kept["ancestry"] == bundle["ancestry"]
    assert {"channel"} <= METADATA_SAFE_FIELDS


def test_listed_samples_without_an_id_of_their_own_are_named_for_a_metadata_read() -> None:
    items = [
        list_item("s-1", client_id=""),
        list_item("s-2", client_id="CUST-000002"),
        list_item("s-3", client_id="  "),
        list_item("s-4", client_id="", metadata={"customer_id": "CUST-000004"}),
        {"client_id": ""},
        "junk",
    ]
    assert samples_without_customer_id(items) == ["s-1", "s-3"]


def test_metadata_of_samples_in_flight_keys_their_kits_and_nothing_else(
    key: bytes, observed_at: datetime
) -> None:
    """Only customer_key: metadata_json marks a sample whose details were read, and these have not been."""
    metadata = {
        "s-1": {"metadata": {"customer_id": "CUST-000001", "order_number": "GX-1"}},
        "s-2": {"metadata": {"order_number": "GX-2"}},
    }
    result = transform_gencove_sample_customers(metadata, key=key, observed_at=observed_at)
    _assert_schemas(result)
    [kit] = result.table("kits").to_pylist()
    assert (kit["kit_id"], kit["customer_key"]) == ("s-1", customer_key("CUST-000001", key))
    assert kit["metadata_json"] is None
    assert kit["project_id"] is None


def test_only_the_metadata_member_of_the_endpoints_answer_is_the_samples(
    key: bytes, observed_at: datetime
) -> None:
    answer = {
        "metadata": {"customer_id": "CUST-000009", "channel": "app"},
        "schema_version": 3,
        "channel": "x",
    }
    result = transform_gencove_samples(
        [], key=key, observed_at=observed_at, metadata_by_sample={"s-1": answer}
    )
    [kit] = result.table("kits").to_pylist()
    assert kit["customer_key"] == customer_key("CUST-000009", key)
    assert json.loads(kit["metadata_json"]) == {"channel": "app"}
    assert fit_to_keep({"metadata": answer}) == {
        "metadata": {"metadata": {"customer_id": "CUST-000009", "channel": "app"}}
    }
