"""The canonical lifecycle: every documented status maps to a known stage, finality drives polling."""

from __future__ import annotations

import pytest

from transform.status import (
    DOCUMENTED,
    FAILURE_REASONS,
    FINAL_STAGES,
    PATH_STAGES,
    STAGE_RANK,
    STAGES,
    UNKNOWN,
    entity_of,
    is_final,
    lookup,
    to_stage,
)

# The statuses as the partner documents list them (copied from the docs, not from our table).
BIOMESIGHT_KIT = (
    "Shipping to Lab",
    "Sample Delivered",
    "Sample Received",
    "Lab Processing",
    "Lab Processing Repeating",
    "Results Processed",
    "Replacement Kit",
    "Sample Not Viable",
    "Enquiry Initiated",
    "Dried Out",
    "Sample Cancelled",
    "QA Failed",
)
BIOMESIGHT_ORDER = (
    "Pending",
    "Booked with Amazon",
    "Dispatched",
    "Shipped",
    "Delivered",
    "Cancelled",
    "Error",
    "Lost",
    "Enquiry in Progress",
)
GENCOVE = (
    "consumer_awaiting_kit_order",
    "kit_requested",
    "kit_ordered",
    "running",
    "succeeded",
    "failed",
    "failed qc",
    "failed_qc",
)


@pytest.mark.parametrize(
    ("provider", "status"),
    [*(("biomesight", s) for s in BIOMESIGHT_KIT + BIOMESIGHT_ORDER), *(("gencove", s) for s in GENCOVE)],
)
def test_every_documented_status_maps_to_a_known_stage(provider: str, status: str) -> None:
    stage, reason = to_stage(provider, status)
    assert stage in STAGES
    assert stage != UNKNOWN
    assert (reason is not None) == (stage == "failed")
    assert reason is None or reason in FAILURE_REASONS


def test_kit_and_order_statuses_are_told_apart() -> None:
    assert {entity_of("biomesight", s) for s in BIOMESIGHT_KIT} == {"kit"}
    assert {entity_of("biomesight", s) for s in BIOMESIGHT_ORDER} == {"order"}


@pytest.mark.parametrize("status", ["failed qc", "failed_qc", "Failed QC", "failed-qc"])
def test_both_failed_qc_spellings_map_to_failed_qc(status: str) -> None:
    assert to_stage("gencove", status) == ("failed", "failed_qc")
    assert is_final("gencove", status)


@pytest.mark.parametrize(
    ("provider", "status", "expected"),
    [
        ("biomesight", "Sample Not Viable", ("failed", "not_viable")),
        ("biomesight", "Dried Out", ("failed", "dried_out")),
        ("biomesight", "QA Failed", ("failed", "qa_failed")),
        ("biomesight", "Error", ("failed", "fulfilment_error")),
        ("biomesight", "Lost", ("lost", None)),
        ("biomesight", "Replacement Kit", ("replaced", None)),
        ("biomesight", "Sample Cancelled", ("cancelled", None)),
        ("biomesight", "Pending", ("ordered", None)),
        ("biomesight", "Results Processed", ("results_ready", None)),
        ("biomesight", "Enquiry Initiated", ("enquiry", None)),
        ("gencove", "failed", ("failed", "failed")),
        ("gencove", "succeeded", ("results_ready", None)),
        ("gencove", "running", ("processing", None)),
    ],
)
def test_specific_mappings(provider: str, status: str, expected: tuple[str, str | None]) -> None:
    assert to_stage(provider, status) == expected


def test_finality() -> None:
    assert is_final("biomesight", "Results Processed")
    assert is_final("gencove", "succeeded")
    assert not is_final("biomesight", "Lab Processing")
    assert not is_final("biomesight", "Enquiry Initiated")  # an enquiry usually resumes the lifecycle
    assert not is_final("gencove", "running")
    assert is_final("biomesight", "Delivered")  # nothing more to learn from the order itself
    assert not is_final("biomesight", "Delivered", entity="kit")
    assert not is_final("gencove", "brand_new_status")


def test_unknown_status_is_unknown_and_not_final() -> None:
    assert to_stage("gencove", "teleported") == (UNKNOWN, None)
    assert to_stage("biomesight", "Sample Received") != to_stage("gencove", "Sample Received")
    assert lookup("biomesight", "nope") is None


def test_lookup_tolerates_case_and_spacing_but_keeps_the_mapping() -> None:
    assert to_stage("biomesight", "  sample   received ") == ("received", None)


def test_stage_order_puts_the_path_first_and_finals_after() -> None:
    ranks = [STAGE_RANK[stage] for stage in PATH_STAGES]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    assert all(STAGE_RANK[stage] > max(ranks) for stage in FINAL_STAGES - {"results_ready"})
    assert all(mapping.stage in STAGE_RANK for mapping in DOCUMENTED)
