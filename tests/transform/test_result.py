"""Transform results: declared schemas, in-batch merging by key, concatenation, run rows, status map."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from transform.gencove import transform_gencove_project_samples, transform_gencove_samples
from transform.platform import transform_platform_export
from transform.reference import status_map_table
from transform.result import TableRows, TransformResult, build_table, concat_results
from transform.runs import transform_sync_run
from transform.schemas import TABLES
from transform.status import DOCUMENTED


def test_missing_tables_come_back_empty_with_their_schema() -> None:
    result = TransformResult()
    for name, spec in TABLES.items():
        assert result.table(name).schema == spec.schema
        assert result.table(name).num_rows == 0


def test_concat_adds_rows_and_unknown_counts(
    export_row: dict[str, Any], key: bytes, observed_at: datetime
) -> None:
    first = transform_platform_export([export_row], key=key, observed_at=observed_at)
    second = transform_gencove_project_samples(
        [{"id": "s-1", "last_status": {"status": "zzz", "created": "2025-01-01T00:00:00Z"}}],
        project_id="p",
        key=key,
        observed_at=observed_at,
    )
    both = concat_results([first, second, second])
    assert both.table("kits").num_rows == first.table("kits").num_rows + 2 * second.table("kits").num_rows
    assert both.unknown_statuses[("gencove", "zzz")] == 2
    assert (first + second).row_counts()["status_events"] == 3


def test_current_tables_merge_within_a_batch_coalescing_nulls(key: bytes, observed_at: datetime) -> None:
    item = {"id": "s-1", "client_id": "c-1", "failed_qc": []}
    detail = {"id": "s-1", "project": "p-1", "metadata": {"channel": "app"}}
    result = transform_gencove_samples([item, detail], key=key, observed_at=observed_at)
    [kit] = result.table("kits").to_pylist()
    assert kit["customer_key"] is not None
    assert kit["project_id"] == "p-1"
    assert kit["metadata_json"] == '{"channel":"app"}'


def test_history_tables_keep_one_row_per_key(
    export_row: dict[str, Any], key: bytes, observed_at: datetime
) -> None:
    result = transform_platform_export([export_row, export_row], key=key, observed_at=observed_at)
    assert result.table("status_events").num_rows == 2  # purchase + collection, each once


def test_contract_violations_are_bugs_not_data() -> None:
    now = datetime.now(UTC)
    with pytest.raises(KeyError, match="not in the declared schema"):
        build_table(
            "orders",
            [{"provider": "biomesight", "order_id": "o", "source": "x", "observed_at": now, "email": "x"}],
        )
    with pytest.raises(ValueError, match="required"):
        build_table(
            "orders", [{"provider": "biomesight", "order_id": None, "source": "x", "observed_at": now}]
        )
    with pytest.raises(ValueError, match="aware"):
        TableRows(datetime(2026, 1, 1))  # noqa: DTZ001


def test_sync_run_row(observed_at: datetime) -> None:
    started = observed_at - timedelta(minutes=5)
    summary = {
        "run_id": "run-1",
        "flow": "sync-gencove",
        "provider": "gencove",
        "started_at": started,
        "finished_at": observed_at.isoformat(),
        "state": "COMPLETED",
        "counts": {"kits": 12, "quarantine": 1},
        "parameters": {
            "project_ids": ["p"],
            "api_key": "sekrit",
            "nested": {"client_secret": "x", "limit": 2},
        },
    }
    [row] = transform_sync_run(summary, observed_at=observed_at).table("sync_runs").to_pylist()
    assert row["started_at"] == started
    assert row["finished_at"] == observed_at
    assert row["counts_json"] == '{"kits":12,"quarantine":1}'
    assert "sekrit" not in row["parameters_json"]
    assert '"limit":2' in row["parameters_json"]
    assert "client_secret" not in row["parameters_json"]
    with pytest.raises(ValueError, match="lacks"):
        transform_sync_run({"run_id": "r"}, observed_at=observed_at)


def test_status_map_lists_every_documented_status(observed_at: datetime) -> None:
    table = status_map_table(observed_at)
    assert table.schema == TABLES["status_map"].schema
    assert table.num_rows == len({(m.provider, m.entity, m.partner_status) for m in DOCUMENTED})
    finals = {row["partner_status"] for row in table.to_pylist() if row["is_final"]}
    assert {"Results Processed", "succeeded", "failed qc", "failed_qc", "Delivered"} <= finals


def test_lifecycle_stages_cover_every_stage_with_its_rank_and_finality(observed_at: datetime) -> None:
    from transform.reference import lifecycle_stages_table
    from transform.status import FINAL_STAGES, PATH_STAGES, STAGE_RANK, STAGES

    table = lifecycle_stages_table(observed_at)
    assert table.schema == TABLES["lifecycle_stages"].schema
    rows = {row["stage"]: row for row in table.to_pylist()}
    assert set(rows) == set(STAGES)
    for stage, row in rows.items():
        assert row["stage_rank"] == STAGE_RANK[stage]
        assert row["on_path"] == (stage in PATH_STAGES)
        assert row["is_final"] == (stage in FINAL_STAGES)
    # an order's delivery ends the order, not the kit: the kit lifecycle goes on to sample collection
    assert rows["delivered"]["is_final"] is False
