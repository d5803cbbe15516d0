"""The load: ledger, idempotence, rebuild from the lake, one transaction per load, compaction, migrations."""

from __future__ import annotations

import shutil
import stat
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from tests.warehouse.tables import (
    KIT_STATE,
    SPECS,
    STATUS_EVENTS,
    TAXA,
    Row,
    at,
    db_of,
    expected,
    load_lake,
    rows_table,
    table_rows,
)
from transform.schemas import TableSpec
from warehouse import lake
from warehouse.duck import query
from warehouse.migrate import MIGRATIONS_DIR, MigrationError, SchemaDriftError, discover_migrations

DAY = date(2026, 11, 22)


def event(kit_id: str, hour: int, status: str = "shipped") -> Row:
    return {
        "provider": "biomesight",
        "kit_id": kit_id,
        "status": status,
        "source": "poll",
        "observed_at": at(hour),
    }


def kit(kit_id: str, hour: int, status: str | None = "shipped") -> Row:
    return {
        "provider": "biomesight",
        "kit_id": kit_id,
        "status": status,
        "lab": None,
        "score": None,
        "observed_at": at(hour),
    }


def taxon(kit_id: str, name: str, hour: int) -> Row:
    return {"provider": "gencove", "kit_id": kit_id, "taxon": name, "abundance": 0.5, "observed_at": at(hour)}


def land(root: Path, spec: TableSpec, rows: list[Row], day: date = DAY) -> list[lake.LakeFile]:
    return lake.write_table(root, spec, rows_table(spec, rows), ingest_date=day)


def contents(db: Path, specs: dict[str, TableSpec] = SPECS) -> dict[str, list[Row]]:
    return {name: table_rows(db, name) for name in specs}


def test_second_load_of_the_same_lake_changes_nothing(tmp_path: Path) -> None:
    files = land(tmp_path, STATUS_EVENTS, [event("k1", 1), event("k2", 1)]) + land(
        tmp_path, KIT_STATE, [kit("k1", 1)]
    )

    first = load_lake(tmp_path)
    before = contents(db_of(tmp_path))
    second = load_lake(tmp_path)

    assert first.files_merged == len(files)
    assert first.rows_read == 3
    assert first.published
    assert (second.files_merged, second.rows_read, second.schema_changes, second.published) == (
        0,
        0,
        (),
        False,
    )
    assert contents(db_of(tmp_path)) == before
    ledger = query(
        db_of(tmp_path), "SELECT path, row_count, action FROM loaded_files ORDER BY path"
    ).to_pylist()
    assert ledger == sorted(
        ({"path": f.path, "row_count": f.rows, "action": "merged"} for f in files),
        key=lambda r: str(r["path"]),
    )


def test_deleting_the_warehouse_and_reloading_rebuilds_it_exactly(tmp_path: Path) -> None:
    history: dict[str, list[Row]] = {name: [] for name in SPECS}
    batches = [
        (KIT_STATE, [kit("k1", 1), kit("k2", 1)]),
        (STATUS_EVENTS, [event("k1", 1), event("k1", 3, "received")]),
        (TAXA, [taxon("k1", "A", 2), taxon("k1", "B", 2)]),
        (KIT_STATE, [kit("k1", 4, "received"), kit("k2", 2, None)]),
        (STATUS_EVENTS, [event("k1", 2, "received")]),
        (TAXA, [taxon("k1", "A", 5)]),
    ]
    for spec, rows in batches:
        land(tmp_path, spec, rows)
        history[spec.name] += rows
        load_lake(tmp_path)
    incremental = contents(db_of(tmp_path))

    shutil.rmtree(tmp_path / "warehouse")
    report = load_lake(tmp_path)

    assert report.files_merged == len(batches)
    assert contents(db_of(tmp_path)) == incremental
    assert incremental == {name: expected(spec, history[name]) for name, spec in SPECS.items()}


def test_a_failing_load_changes_nothing_and_its_files_load_next_time(tmp_path: Path) -> None:
    land(tmp_path, KIT_STATE, [kit("k1", 1)])
    load_lake(tmp_path)
    before = contents(db_of(tmp_path))
    ledger_before = query(db_of(tmp_path), "SELECT * FROM loaded_files ORDER BY path").to_pylist()
    # New good files for the first two tables, and a corrupt file in the table merged last.
    new = land(tmp_path, KIT_STATE, [kit("k1", 2, "received")]) + land(
        tmp_path, STATUS_EVENTS, [event("k1", 2)]
    )
    [good_taxa] = land(tmp_path, TAXA, [taxon("k9", "A", 1)])
    corrupt = tmp_path / good_taxa.directory / "part-0corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet PAR1")

    with pytest.raises(pa.ArrowException):
        load_lake(tmp_path)

    assert contents(db_of(tmp_path)) == before
    assert query(db_of(tmp_path), "SELECT * FROM loaded_files ORDER BY path").to_pylist() == ledger_before
    writer = duckdb.connect(str(db_of(tmp_path).parent / ".kitsync-writer.duckdb"), read_only=True)
    try:
        assert writer.execute("SELECT count(*) FROM loaded_files").fetchall() == [(len(ledger_before),)]
    finally:
        writer.close()

    corrupt.unlink()
    report = load_lake(tmp_path)
    assert report.files_merged == len(new) + 1
    assert table_rows(db_of(tmp_path), "kit_state") == [kit("k1", 2, "received")]


def test_compacted_file_whose_inputs_were_loaded_is_recorded_not_reloaded(tmp_path: Path) -> None:
    rows = [event(f"k{n}", n) for n in range(4)]
    inputs = [land(tmp_path, STATUS_EVENTS, [row])[0] for row in rows]
    load_lake(tmp_path)
    before = contents(db_of(tmp_path))

    compacted = lake.compact(tmp_path, STATUS_EVENTS, inputs[0].directory)
    report = load_lake(tmp_path)

    assert compacted is not None
    assert (report.files_merged, report.files_covered, report.rows_read) == (0, 1, 0)
    assert contents(db_of(tmp_path)) == before
    assert query(
        db_of(tmp_path), "SELECT action FROM loaded_files WHERE path = ?", [compacted.path]
    ).to_pylist() == [{"action": "covered"}]
    shutil.rmtree(tmp_path / "warehouse")
    rebuilt = load_lake(tmp_path)
    assert (rebuilt.files_merged, rebuilt.rows_read) == (1, len(rows))
    assert contents(db_of(tmp_path)) == before


def test_compacted_file_with_unloaded_inputs_is_merged_without_duplicates(tmp_path: Path) -> None:
    loaded = land(tmp_path, STATUS_EVENTS, [event("k1", 1), event("k2", 1)])
    load_lake(tmp_path)
    land(tmp_path, STATUS_EVENTS, [event("k3", 1), event("k1", 0)])  # k1 seen earlier: replaces the held row

    lake.compact(tmp_path, STATUS_EVENTS, loaded[0].directory)
    report = load_lake(tmp_path)

    assert (report.files_merged, report.files_covered, report.rows_read) == (1, 0, 4)
    assert table_rows(db_of(tmp_path), "status_events") == [event("k1", 0), event("k2", 1), event("k3", 1)]


def test_a_column_added_to_a_spec_is_added_to_the_table(tmp_path: Path) -> None:
    narrow = TableSpec(
        name="kit_state",
        schema=KIT_STATE.schema.remove(KIT_STATE.schema.get_field_index("score")),
        primary_key=KIT_STATE.primary_key,
        description=KIT_STATE.description,
        merge="current",
    )
    old = {key: value for key, value in kit("k1", 1).items() if key != "score"}
    lake.write_table(tmp_path, narrow, rows_table(narrow, [old]), ingest_date=DAY)
    load_lake(tmp_path, {"kit_state": narrow})

    land(tmp_path, KIT_STATE, [kit("k2", 2) | {"score": 0.7}])
    report = load_lake(tmp_path, {"kit_state": KIT_STATE})

    assert "add column kit_state.score" in report.schema_changes
    assert table_rows(db_of(tmp_path), "kit_state") == [kit("k1", 1), kit("k2", 2) | {"score": 0.7}]
    shutil.rmtree(tmp_path / "warehouse")  # the old file (no score column) still loads under the wider spec
    load_lake(tmp_path, {"kit_state": KIT_STATE})
    assert table_rows(db_of(tmp_path), "kit_state") == [kit("k1", 1), kit("k2", 2) | {"score": 0.7}]


def test_a_retyped_column_needs_a_migration(tmp_path: Path) -> None:
    load_lake(tmp_path, {"kit_state": KIT_STATE})
    index = KIT_STATE.schema.get_field_index("score")
    retyped = TableSpec(
        name="kit_state",
        schema=KIT_STATE.schema.set(index, pa.field("score", pa.string())),
        primary_key=KIT_STATE.primary_key,
        description=KIT_STATE.description,
        merge="current",
    )

    with pytest.raises(SchemaDriftError, match="score"):
        load_lake(tmp_path, {"kit_state": retyped})


def test_sql_migrations_apply_once_in_order(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations)
    shipped = [f"migration {m.label}" for m in discover_migrations(MIGRATIONS_DIR)]
    labels, table = len(shipped) + 1, len(shipped) + 2  # the next two free version numbers
    (migrations / f"{labels:03d}_cohort_labels.sql").write_text(
        "CREATE TABLE cohort_labels (cohort VARCHAR, label VARCHAR);"
    )
    (migrations / f"{table:03d}_default_label.sql").write_text(
        "INSERT INTO cohort_labels VALUES ('all', 'Everyone');"
    )

    first = load_lake(tmp_path, migrations_dir=migrations)
    second = load_lake(tmp_path, migrations_dir=migrations)

    assert [c for c in first.schema_changes if c.startswith("migration")] == [
        *shipped,
        f"migration {labels:03d}_cohort_labels",
        f"migration {table:03d}_default_label",
    ]
    assert second.schema_changes == ()
    assert query(db_of(tmp_path), "SELECT * FROM cohort_labels").to_pylist() == [
        {"cohort": "all", "label": "Everyone"}
    ]
    versions = query(db_of(tmp_path), "SELECT version FROM schema_migrations ORDER BY version")
    assert versions.column("version").to_pylist() == list(range(1, table + 1))

    (migrations / "4_badly_named.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_name"):
        load_lake(tmp_path, migrations_dir=migrations)


def test_views_install_in_dependency_order_and_follow_their_files(tmp_path: Path) -> None:
    views = tmp_path / "views"
    views.mkdir()
    # a_ sorts first but builds on z_: installing in name order would fail.
    (views / "a_kits_per_provider.sql").write_text(
        "-- One row per provider.\nCREATE OR REPLACE VIEW a_kits_per_provider AS\n"
        "SELECT provider, count(*) AS kits FROM z_known_kits GROUP BY provider;\n"
    )
    (views / "z_known_kits.sql").write_text(
        "CREATE OR REPLACE VIEW z_known_kits AS SELECT * FROM kit_state;\n"
    )
    land(tmp_path, KIT_STATE, [kit("k1", 1), kit("k2", 1)])

    first = load_lake(tmp_path, views_dir=views)
    assert {"install view a_kits_per_provider", "install view z_known_kits"} <= set(first.schema_changes)
    assert query(db_of(tmp_path), "SELECT * FROM a_kits_per_provider").to_pylist() == [
        {"provider": "biomesight", "kits": 2}
    ]
    assert load_lake(tmp_path, views_dir=views).schema_changes == ()

    (views / "z_known_kits.sql").write_text(
        "CREATE OR REPLACE VIEW z_known_kits AS SELECT * FROM kit_state WHERE kit_id <> 'k2';\n"
    )
    changed = load_lake(tmp_path, views_dir=views)
    assert set(changed.schema_changes) == {"install view a_kits_per_provider", "install view z_known_kits"}
    assert query(db_of(tmp_path), "SELECT kits FROM a_kits_per_provider").to_pylist() == [{"kits": 1}]

    (views / "a_kits_per_provider.sql").unlink()
    assert load_lake(tmp_path, views_dir=views).schema_changes == ("drop view a_kits_per_provider",)

    (views / "misnamed.sql").write_text("CREATE OR REPLACE VIEW something_else AS SELECT 1 AS one;\n")
    with pytest.raises(MigrationError, match="misnamed"):
        load_lake(tmp_path, views_dir=views)


def test_query_is_read_only(tmp_path: Path) -> None:
    load_lake(tmp_path)

    with pytest.raises(duckdb.Error, match="read-only"):
        query(db_of(tmp_path), "CREATE TABLE scratch (a INTEGER)")
    assert query(
        db_of(tmp_path), "SELECT count(*) AS n FROM kit_state WHERE kit_id = ?", ["k1"]
    ).to_pylist() == [{"n": 0}]


def test_warehouse_files_are_owner_only(tmp_path: Path) -> None:
    land(tmp_path, KIT_STATE, [kit("k1", 1)])
    load_lake(tmp_path)

    directory = db_of(tmp_path).parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_load_that_committed_but_did_not_publish_is_published_next_time(tmp_path: Path) -> None:
    land(tmp_path, KIT_STATE, [kit("k1", 1)])
    load_lake(tmp_path)
    published = db_of(tmp_path)
    stale = published.read_bytes()
    land(tmp_path, KIT_STATE, [kit("k2", 1)])
    load_lake(tmp_path)
    published.write_bytes(stale)  # as if the process died between commit and publish
    (published.parent / ".kitsync-published").unlink()

    report = load_lake(tmp_path)

    assert report.files_merged == 0
    assert report.published
    assert [row["kit_id"] for row in table_rows(published, "kit_state")] == ["k1", "k2"]


def test_writer_is_rebuilt_from_the_published_snapshot_when_lost(tmp_path: Path) -> None:
    land(tmp_path, KIT_STATE, [kit("k1", 1)])
    load_lake(tmp_path)
    (db_of(tmp_path).parent / ".kitsync-writer.duckdb").unlink()
    land(tmp_path, KIT_STATE, [kit("k2", 1)], day=DAY + timedelta(days=1))

    report = load_lake(tmp_path)

    assert report.files_merged == 1
    assert [row["kit_id"] for row in table_rows(db_of(tmp_path), "kit_state")] == ["k1", "k2"]


def test_runs_recorded_before_completeness_was_read_stay_unknown(tmp_path: Path) -> None:
    """A warehouse from before `sync_runs.complete`: the migration adds the columns, and its old runs hold
    NULL (unknown: those runs ended listings on short pages), never a made-up True."""
    import duckdb

    from transform.schemas import SYNC_RUNS
    from warehouse.migrate import migrate

    connection = duckdb.connect(str(tmp_path / "old.duckdb"))
    connection.execute(
        "CREATE TABLE sync_runs (run_id VARCHAR NOT NULL, flow VARCHAR NOT NULL, provider VARCHAR NOT NULL, "
        "started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ, state VARCHAR NOT NULL, "
        "counts_json VARCHAR, parameters_json VARCHAR, observed_at TIMESTAMPTZ NOT NULL)"
    )
    connection.execute(
        "INSERT INTO sync_runs VALUES "
        "('r1', 'sync-gencove', 'gencove', now(), now(), 'completed', '{}', '{}', now())"
    )
    changes = migrate(connection, {"sync_runs": SYNC_RUNS}, views_dir=tmp_path / "no-views")
    assert "migration 002_sync_runs_complete" in changes
    rows = connection.execute("SELECT run_id, complete, incomplete_reason FROM sync_runs").fetchall()
    assert rows == [("r1", None, None)]
    connection.close()
