"""The data contract: every table declared once, with provider, observed_at, keys and merge modes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from transform.schemas import TABLES, UTC_TS, TableSpec

REQUIRED = {
    "orders",
    "order_items",
    "kits",
    "status_events",
    "results",
    "scores",
    "recommendations",
    "taxonomy",
    "deliverables",
    "quality_controls",
    "trait_scores",
    "ancestry",
    "quarantine",
    "sync_runs",
}


def test_every_required_table_is_declared_under_its_own_name() -> None:
    assert set(TABLES) >= REQUIRED
    assert all(spec.name == name for name, spec in TABLES.items())


@pytest.mark.parametrize("spec", TABLES.values(), ids=lambda spec: spec.name)
def test_table_has_provider_observed_at_and_required_keys(spec: TableSpec) -> None:
    schema = spec.schema
    assert schema.field("provider").type == pa.string()
    assert schema.field("observed_at").type == UTC_TS
    assert not schema.field("observed_at").nullable
    for column in spec.primary_key:
        assert not schema.field(column).nullable, f"{spec.name}.{column} is in the key but nullable"
    for column in (*spec.partition_by, *spec.replace_key):
        assert column in schema.names
    assert (spec.merge == "replace") == bool(spec.replace_key)
    assert spec.description
    assert "\n" not in spec.description


def test_merge_modes_follow_the_contract() -> None:
    modes = {name: spec.merge for name, spec in TABLES.items()}
    for name in ("orders", "order_items", "kits", "results", "sync_runs"):
        assert modes[name] == "current"
    for name in ("status_events", "quarantine"):
        assert modes[name] == "history"
    for name in (
        "scores",
        "recommendations",
        "taxonomy",
        "deliverables",
        "quality_controls",
        "trait_scores",
        "ancestry",
    ):
        assert modes[name] == "replace"
        assert TABLES[name].replace_key == ("provider", "kit_id")


def test_timestamps_are_utc_microseconds_and_dates_are_date32() -> None:
    for spec in TABLES.values():
        for field in spec.schema:
            if pa.types.is_timestamp(field.type):
                assert field.type == UTC_TS, f"{spec.name}.{field.name}"
            if field.name.endswith("_date") and field.name not in {"partner_date", "export_date"}:
                assert field.type == pa.date32(), f"{spec.name}.{field.name}"


def test_no_column_can_hold_a_download_url() -> None:
    assert all("url" not in name for spec in TABLES.values() for name in spec.schema.names)
