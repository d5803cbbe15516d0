"""The lifecycle's stages are declared once, in transform/status.py; the warehouse gets them as the
`lifecycle_stages` table (written by each run) and the report from the view's columns. kit_lifecycle is the
one place SQL must spell stages out (a view's columns cannot come from data): these tests keep it in step.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import warehouse
from report.data import TOTAL_DURATION, stage_durations
from transform.reference import lifecycle_stages_table
from transform.schemas import TABLES
from transform.status import PATH_STAGES, STAGES
from warehouse.migrate import migrate

SQL_DIR = Path(warehouse.__file__).parent / "sql"
OBSERVED_AT = datetime(2026, 11, 1, tzinfo=UTC)
ORDERED_AT = datetime(2026, 6, 1, tzinfo=UTC)


def _reached_at(position: int) -> datetime:
    """When the test kit reached path stage `position`: gaps of 1, 2, 3... days, so every step differs."""
    return ORDERED_AT + timedelta(days=position * (position + 1) / 2)


@pytest.fixture(scope="module")
def warehouse_db() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory warehouse: the run's reference tables and one kit that went through every path stage."""
    connection = duckdb.connect()
    migrate(connection, TABLES)
    connection.register("stages", lifecycle_stages_table(OBSERVED_AT))
    connection.execute("INSERT INTO lifecycle_stages BY NAME SELECT * FROM stages")
    connection.unregister("stages")
    connection.execute(
        "INSERT INTO kits (provider, kit_id, source, observed_at) VALUES ('gencove', 'K1', 'poll', ?)",
        [OBSERVED_AT],
    )
    for position, stage in enumerate(PATH_STAGES):
        connection.execute(
            "INSERT INTO status_events (provider, entity, entity_id, partner_status, stage, partner_date,"
            " source, observed_at) VALUES ('gencove', 'kit', 'K1', ?, ?, ?, 'poll', ?)",
            [f"status {stage}", stage, _reached_at(position), OBSERVED_AT],
        )
    yield connection
    connection.close()


def _columns(connection: duckdb.DuckDBPyConnection) -> list[str]:
    return connection.sql("SELECT * FROM kit_lifecycle LIMIT 0").columns


def test_the_stages_table_holds_transform_s_stages_in_funnel_order(
    warehouse_db: duckdb.DuckDBPyConnection,
) -> None:
    on_path = warehouse_db.sql(
        "SELECT stage FROM lifecycle_stages WHERE on_path ORDER BY stage_rank"
    ).fetchall()
    assert [stage for (stage,) in on_path] == list(PATH_STAGES)
    everything = warehouse_db.sql("SELECT stage FROM lifecycle_stages").fetchall()
    assert {stage for (stage,) in everything} == set(STAGES)


def test_kit_lifecycle_has_a_first_reached_column_for_each_path_stage_in_order(
    warehouse_db: duckdb.DuckDBPyConnection,
) -> None:
    on_path = [
        stage for (stage,) in warehouse_db.sql("SELECT stage FROM lifecycle_stages WHERE on_path").fetchall()
    ]
    reached = [c for c in _columns(warehouse_db) if c.endswith("_at") and c.removesuffix("_at") in on_path]
    assert reached == [f"{stage}_at" for stage in PATH_STAGES]
    row = warehouse_db.sql(f"SELECT {', '.join(reached)} FROM kit_lifecycle").fetchall()  # noqa: S608
    assert list(row[0]) == [_reached_at(position) for position in range(len(PATH_STAGES))]


def test_each_step_the_report_shows_spans_two_consecutive_path_stages(
    warehouse_db: duckdb.DuckDBPyConnection,
) -> None:
    durations = stage_durations(_columns(warehouse_db))
    steps = [column for column, _ in durations if column != TOTAL_DURATION]
    assert len(steps) == len(PATH_STAGES) - 1
    assert durations[-1] == (TOTAL_DURATION, "total: ordered → results ready")
    values = warehouse_db.sql(f"SELECT {', '.join(steps)}, {TOTAL_DURATION} FROM kit_lifecycle").fetchall()[0]  # noqa: S608
    # the kit spent `position + 1` days going from stage `position` to the next one
    assert list(values[:-1]) == [float(position + 1) for position in range(len(steps))]
    assert values[-1] == (_reached_at(len(PATH_STAGES) - 1) - ORDERED_AT).total_seconds() / 86400
    for (column, label), (first, second) in zip(durations, itertools.pairwise(PATH_STAGES), strict=False):
        start, end = label.split(" → ")
        assert first.replace("_", " ").startswith(start), (column, label)
        assert second.replace("_", " ").startswith(end), (column, label)


def test_no_other_view_spells_out_a_stage() -> None:
    """Views other than kit_lifecycle read stages, ranks and finality from lifecycle_stages / status_map."""
    literal = re.compile(r"'(" + "|".join(re.escape(stage) for stage in STAGES) + r")'")
    offenders = {}
    for path in sorted(SQL_DIR.glob("*.sql")):
        if path.stem == "kit_lifecycle":
            continue
        code = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        if found := literal.findall(code):
            offenders[path.name] = found
    assert not offenders
