"""Biomesight status payloads and results JSON -> status events, results, scores, recommendations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from transform.biomesight import transform_biomesight_results, transform_biomesight_statuses
from transform.schemas import TABLES
from transform.values import snake_case

RESULTS = {
    "scores": {
        "gut_health": 89.25,
        "Diversity": 88.0,
        "Probiotic": 90.07,
        "Commensal": 98.15,
        "Pathobiont": 83.33,
    },
    "recommendations": {
        "food": {"enjoy": ["cranberries", "green tea", "pomegranate"], "avoid": ["acacia tree", "guar bean"]},
        "prebiotics": {"enjoy": ["Acacia fiber", "lactulose"], "reduce": ["PHGG", "psyllium"]},
        "probiotics": {"reduce": ["Abiotrophia defectiva"]},
    },
    "general": {
        "kit_id": "BS1-ABC12",
        "sample_id": 380,
        "export_date": "2026-01-09 11:49:49",
        "pipeline_id": 1,
    },
}


def test_kit_and_order_statuses_from_a_webhook_mix(observed_at: datetime) -> None:
    payloads = [
        {
            "kit_id": "BS1-ABC12",
            "status": "Sample Received",
            "description": "Lab received sample",
            "date": "2025-07-10T14:22:00Z",
        },
        {
            "order_id": "ORD-1",
            "status": "Delivered",
            "description": "Kit has been delivered",
            "date": "2025-06-20T09:15:00Z",
        },
    ]
    result = transform_biomesight_statuses(payloads, source="webhook", observed_at=observed_at)
    assert result.table("status_events").schema == TABLES["status_events"].schema
    events = result.table("status_events").to_pylist()
    assert [(e["entity"], e["entity_id"], e["stage"]) for e in events] == [
        ("kit", "BS1-ABC12", "received"),
        ("order", "ORD-1", "delivered"),
    ]
    assert events[0]["partner_date"] == datetime(2025, 7, 10, 14, 22, tzinfo=UTC)
    assert events[0]["description"] == payloads[0]["description"]
    assert {e["source"] for e in events} == {"webhook"}
    assert result.quarantine.num_rows == 0
    assert not result.unknown_statuses


def test_pinned_entity_uses_its_id_field(observed_at: datetime) -> None:
    payload = {"order_id": "ORD-1", "status": "Shipped", "date": "2025-06-18T08:00:00Z"}
    result = transform_biomesight_statuses([payload], source="poll", observed_at=observed_at, entity="order")
    assert result.table("status_events").column("stage").to_pylist() == ["shipped"]
    result = transform_biomesight_statuses([payload], source="poll", observed_at=observed_at, entity="kit")
    assert result.quarantine.column("reason").to_pylist() == ["missing_field"]


def test_unknown_status_is_kept_verbatim_and_counted(observed_at: datetime) -> None:
    payloads = [
        {"kit_id": f"BS1-{n}", "status": "Sample Teleported", "date": "2025-07-10T14:22:00Z"}
        for n in range(3)
    ]
    result = transform_biomesight_statuses(payloads, source="poll", observed_at=observed_at)
    events = result.table("status_events").to_pylist()
    assert {(e["partner_status"], e["stage"]) for e in events} == {("Sample Teleported", "unknown")}
    assert result.unknown_statuses[("biomesight", "Sample Teleported")] == len(payloads)
    assert result.unknown_status_counts() == {"biomesight:Sample Teleported": len(payloads)}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"status": "Sample Received", "date": "2025-07-10T14:22:00Z"}, "missing_field"),
        ({"kit_id": "BS1-1", "date": "2025-07-10T14:22:00Z"}, "missing_field"),
        ({"kit_id": "BS1-1", "status": "Sample Received"}, "bad_date"),
        ({"kit_id": "BS1-1", "status": "Sample Received", "date": "yesterday"}, "bad_date"),
        ({"kit_id": "BS1-1", "status": "Sample Received", "date": 1720620000}, "bad_date"),
        (["kit_id", "BS1-1"], "not_an_object"),
    ],
)
def test_bad_status_payloads_are_quarantined(payload: Any, reason: str, observed_at: datetime) -> None:
    result = transform_biomesight_statuses([payload], source="poll", observed_at=observed_at)
    assert result.table("status_events").num_rows == 0
    [row] = result.quarantine.to_pylist()
    assert row["reason"] == reason
    assert row["detail"]
    assert row["payload_excerpt"]  # status payloads hold no PII: an excerpt helps whoever investigates


def test_results_become_results_scores_and_recommendations(observed_at: datetime) -> None:
    result = transform_biomesight_results({"BS1-ABC12": RESULTS}, observed_at=observed_at)
    for name, table in result.tables.items():
        assert table.schema == TABLES[name].schema
    [meta] = result.table("results").to_pylist()
    assert meta["sample_id"] == RESULTS["general"]["sample_id"]
    assert meta["pipeline_id"] == RESULTS["general"]["pipeline_id"]
    assert meta["export_date"] == datetime.fromisoformat(RESULTS["general"]["export_date"]).replace(
        tzinfo=UTC
    )
    scores = {row["score_key"]: row for row in result.table("scores").to_pylist()}
    assert set(scores) == {snake_case(name) for name in RESULTS["scores"]}
    assert scores["diversity"]["score_name"] == "Diversity"
    assert scores["gut_health"]["value"] == RESULTS["scores"]["gut_health"]
    recommendations = result.table("recommendations").to_pylist()
    expected = [
        (category, action, position, item)
        for category, actions in RESULTS["recommendations"].items()
        for action, items in actions.items()
        for position, item in enumerate(items, start=1)
    ]
    assert [(r["category"], r["action"], r["position"], r["item"]) for r in recommendations] == expected


def test_snake_case_keys() -> None:
    assert snake_case("Diversity") == "diversity"
    assert snake_case("gut_health") == "gut_health"
    assert snake_case("GutHealth") == "gut_health"
    assert snake_case("Bacteroidetes/Firmicutes Ratio") == "bacteroidetes_firmicutes_ratio"


def test_metadata_that_does_not_parse_is_null_not_lost(observed_at: datetime) -> None:
    payload = {**RESULTS, "general": {**RESULTS["general"], "export_date": "soon", "pipeline_id": "v2"}}
    result = transform_biomesight_results({"BS1-ABC12": payload}, observed_at=observed_at)
    [meta] = result.table("results").to_pylist()
    assert meta["export_date"] is None
    assert meta["pipeline_id"] is None
    assert '"pipeline_id":"v2"' in meta["general_json"]
    assert result.table("scores").num_rows == len(RESULTS["scores"])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json", "malformed_results"),
        ({**RESULTS, "scores": ["gut_health", 1]}, "malformed_results"),
        ({**RESULTS, "scores": {"gut_health": "high"}}, "malformed_results"),
        ({**RESULTS, "scores": {"Diversity": 1.0, "diversity": 2.0}}, "malformed_results"),
        ({**RESULTS, "recommendations": {"food": ["kale"]}}, "malformed_results"),
        ({**RESULTS, "recommendations": {"food": {"enjoy": [{"name": "kale"}]}}}, "malformed_results"),
        ({**RESULTS, "general": {**RESULTS["general"], "kit_id": "BS1-OTHER"}}, "kit_id_mismatch"),
    ],
)
def test_malformed_results_quarantine_the_whole_kit(payload: Any, reason: str, observed_at: datetime) -> None:
    result = transform_biomesight_results(
        {"BS1-ABC12": payload, "BS1-GOOD": {"scores": {"x": 1}}}, observed_at=observed_at
    )
    [row] = result.quarantine.to_pylist()
    assert (row["entity_id"], row["reason"]) == ("BS1-ABC12", reason)
    assert set(result.table("scores").column("kit_id").to_pylist()) == {"BS1-GOOD"}
    assert set(result.table("results").column("kit_id").to_pylist()) == {"BS1-GOOD"}
    assert result.table("recommendations").num_rows == 0
