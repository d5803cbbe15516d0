"""The project's real declarations (transform.schemas.TABLES) and views migrate and load."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.types as pat
import pytest

from tests.warehouse.tables import at, db_of, table_rows
from transform.schemas import TableSpec
from warehouse import lake
from warehouse.duck import query, quote_ident
from warehouse.load import default_specs, load
from warehouse.migrate import VIEWS_DIR


def sample(data_type: pa.DataType, hour: int) -> Any:  # noqa: PLR0911 - one return per type family
    """A plausible value of any type the specs use (hour varies it, so two samples of a key differ)."""
    if pat.is_string(data_type) or pat.is_large_string(data_type):
        return f"value-{hour}"
    if pat.is_boolean(data_type):
        return bool(hour % 2)
    if pat.is_integer(data_type):
        return hour
    if pat.is_floating(data_type):
        return hour / 10
    if pat.is_timestamp(data_type):
        return at(hour)
    if pat.is_date(data_type):
        return date(2026, 11, hour)
    if pat.is_list(data_type) or pat.is_large_list(data_type):
        return [sample(data_type.value_type, hour)]
    if pat.is_struct(data_type):
        return {f.name: sample(f.type, hour) for f in data_type}
    if pat.is_map(data_type):
        return [(sample(data_type.key_type, hour), sample(data_type.item_type, hour))]
    raise TypeError(f"no sample value for {data_type}")


def sample_table(spec: TableSpec, hour: int) -> pa.Table:
    key = {*spec.primary_key, *spec.replace_key}  # the same key in every sample, other values vary
    row = {f.name: sample(f.type, 1 if f.name in key else hour) for f in spec.schema}
    row[spec.observed_at] = at(hour)
    row |= {
        column: "biomesight" for column in spec.partition_by if pat.is_string(spec.schema.field(column).type)
    }
    return pa.Table.from_pylist([row], schema=spec.schema)


@pytest.fixture
def project_specs() -> dict[str, TableSpec]:
    try:
        return dict(default_specs())
    except RuntimeError:
        pytest.skip("transform.schemas declares no TABLES yet")


def test_every_declared_table_migrates_loads_and_reloads(
    tmp_path: Path, project_specs: dict[str, TableSpec]
) -> None:
    no_views = tmp_path / "no-views"  # the views have their own test below
    empty = load(
        tmp_path, db_of(tmp_path), views_dir=no_views
    )  # no lake yet: tables are created all the same
    assert {f"create table {name}" for name in project_specs} <= set(empty.schema_changes)

    for spec in project_specs.values():
        for hour in (1, 2):  # two observations of the same key: every table keeps exactly one row of it
            lake.write_table(tmp_path, spec, sample_table(spec, hour), ingest_date=date(2026, 11, 22))
    first = load(tmp_path, db_of(tmp_path), views_dir=no_views)
    second = load(tmp_path, db_of(tmp_path), views_dir=no_views)

    assert first.files_merged == 2 * len(project_specs)
    assert {t.table: t.rows_after for t in first.tables} == dict.fromkeys(project_specs, 1)
    assert (second.files_merged, second.schema_changes) == (0, ())
    for name, spec in project_specs.items():
        [row] = table_rows(db_of(tmp_path), name)
        want_hour = 1 if spec.merge == "history" else 2
        assert row[spec.observed_at] == at(want_hour), name


def test_project_views_install_over_the_project_tables(
    tmp_path: Path, project_specs: dict[str, TableSpec]
) -> None:
    report = load(tmp_path, db_of(tmp_path), project_specs, views_dir=VIEWS_DIR)

    views = sorted(path.stem for path in VIEWS_DIR.glob("*.sql"))
    assert sorted(c.removeprefix("install view ") for c in report.schema_changes if "view" in c) == views
    for view in views:  # every view runs on the empty warehouse
        query(db_of(tmp_path), f"SELECT * FROM {quote_ident(view)} LIMIT 1")  # noqa: S608
