"""The DuckLake warehouse (`*.ducklake`): a small load writes only what it changed, readers see whole loads,
a crash anywhere leaves it consistent, and it holds exactly what the embedded single file holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.warehouse.tables import (
    KIT_STATE,
    SPECS,
    STATUS_EVENTS,
    TAXA,
    Row,
    at,
    expected,
    rows_table,
    table_rows,
)
from tests.warehouse.test_concurrency import READER, land_events, python
from tests.warehouse.test_load import event, kit
from warehouse import lake
from warehouse.duck import connect_readonly, query
from warehouse.load import LoadReport, load
from warehouse.maintenance import tidy_ducklake
from warehouse.publish import WarehousePaths

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 22)


def lake_db(root: Path) -> Path:
    return root / "warehouse" / "kitsync.ducklake"


def load_into(root: Path, db: Path, **options: Any) -> LoadReport:
    options.setdefault("views_dir", root / "no-views")
    return load(root, db, SPECS, **options)


def taxa(kits: range, hour: int = 1) -> list[Row]:
    return [
        {
            "provider": "biomesight",
            "kit_id": f"k{k}",
            "taxon": f"t{t}",
            "abundance": 0.01 * t,
            "observed_at": at(hour),
        }
        for k in kits
        for t in range(20)
    ]


def data_files(db: Path) -> dict[Path, tuple[int, int, int]]:
    """Every file under the DuckLake's data directory, with what would change if it were rewritten."""
    root = WarehousePaths.of(db).data_dir
    return {
        p: (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()
    }


def snapshot_id(db: Path) -> int:
    connection = connect_readonly(db)
    try:
        return int(
            connection.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('kitsync')").fetchall()[0][0]
        )
    finally:
        connection.close()


def test_a_small_load_after_a_big_one_writes_only_the_new_rows(tmp_path: Path) -> None:
    db = lake_db(tmp_path)
    big = taxa(range(2000))
    lake.write_table(tmp_path, TAXA, rows_table(TAXA, big), ingest_date=DAY)
    load_into(tmp_path, db)
    before_files, before_snapshot = data_files(db), snapshot_id(db)
    catalog_bytes = db.stat().st_size

    small = taxa(range(5000, 5020), hour=2)
    lake.write_table(tmp_path, TAXA, rows_table(TAXA, small), ingest_date=DAY)
    report = load_into(tmp_path, db)

    after = data_files(db)
    assert report.rows_read == len(small)
    # nothing held before was rewritten, moved or removed: the big data are not copied again
    assert {path: after.get(path) for path in before_files} == before_files
    new_files = set(after) - set(before_files)
    # the new rows, once (besides them only the ledger's one new row for the file loaded)
    assert sum(pq.read_metadata(p).num_rows for p in new_files if p.parent.name == "taxa") == len(small)
    assert sum(pq.read_metadata(p).num_rows for p in new_files if p.parent.name != "taxa") == 1
    # one load, one snapshot: readers move from the old state to the new one in a single step
    assert snapshot_id(db) == before_snapshot + 1
    # what is published (copied) is the catalog: its size follows the files and snapshots, not the rows
    assert db.stat().st_size < 2 * catalog_bytes
    assert len(table_rows(db, "taxa")) == len(big) + len(small)


def test_the_ducklake_holds_what_the_embedded_file_holds(tmp_path: Path) -> None:
    history: dict[str, list[Row]] = {name: [] for name in SPECS}
    batches = [
        (KIT_STATE, [kit("k1", 1), kit("k2", 1, None)]),
        (TAXA, taxa(range(3))),
        (KIT_STATE, [kit("k1", 4, "received") | {"lab": "L1"}, kit("k2", 2, None) | {"score": 0.5}]),
        (TAXA, taxa(range(2), hour=5)[:7]),  # a re-analysis replaces kit k0 with fewer taxa
        (STATUS_EVENTS, [event("k1", 1), event("k1", 3, "received")]),
        (STATUS_EVENTS, [event("k1", 2, "received")]),  # a late, earlier observation of the same status
    ]
    embedded = tmp_path / "warehouse" / "kitsync.duckdb"
    for spec, rows in batches:
        lake.write_table(tmp_path, spec, rows_table(spec, rows), ingest_date=DAY)
        history[spec.name] += rows
        load_into(tmp_path, lake_db(tmp_path))
        load_into(tmp_path, embedded)

    for name, spec in SPECS.items():
        assert (
            table_rows(lake_db(tmp_path), name) == table_rows(embedded, name) == expected(spec, history[name])
        )


def test_readers_see_only_whole_loads_of_the_ducklake(tmp_path: Path) -> None:
    db = lake_db(tmp_path)
    land_events(tmp_path, 0, 10)
    load_into(tmp_path, db)
    stop = tmp_path / "stop"
    reader = python(READER, str(db), str(stop))
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "ready"
        sizes = [20_000 + batch for batch in range(1, 5)]
        for batch, size in enumerate(sizes, start=1):
            land_events(tmp_path, batch, size)
            load_into(tmp_path, db)
        stop.touch()
        out, err = reader.communicate(timeout=120)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()

    assert reader.returncode == 0, err
    counts = [int(n) for n in out.split()]
    assert counts[-1] == 10 + sum(sizes)
    assert set(counts) <= {10 + sum(sizes[:k]) for k in range(len(sizes) + 1)}  # only ever a whole load


LOADER = """
import sys
from pathlib import Path
from tests.warehouse.tables import SPECS
from warehouse.load import load
root = Path(sys.argv[1])
load(root, root / "warehouse" / "kitsync.ducklake", SPECS, views_dir=root / "no-views")
"""


@pytest.mark.parametrize("point", ["load-commit:1", "load-publish:1", "publish-rename:1"])
def test_a_crash_mid_load_leaves_the_ducklake_consistent(tmp_path: Path, point: str) -> None:
    db = lake_db(tmp_path)
    land_events(tmp_path, 0, 10)
    load_into(tmp_path, db)
    land_events(tmp_path, 1, 500)

    crashed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", LOADER, str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "KITSYNC_CRASH_AT": point},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert crashed.returncode == -9, crashed.stderr  # SIGKILLed at the point, no cleanup ran

    # analysts still read a whole snapshot: the old one (every point is before the new one is published)
    assert len(_events_loaded(db)) == 10

    report = load_into(tmp_path, db)  # a normal re-run repairs everything
    assert report.published
    rows = table_rows(db, "status_events")
    assert len(rows) == 510
    assert len({(r["kit_id"], r["status"], r["observed_at"]) for r in rows}) == 510  # nothing twice


def _events_loaded(db: Path) -> list[Row]:
    """The status events a consistent snapshot holds: exactly the rows its ledger says were loaded."""
    ledger = query(
        db, "SELECT coalesce(sum(row_count), 0) AS n FROM loaded_files WHERE table_name = 'status_events'"
    )
    count = int(ledger.column("n")[0].as_py())
    rows = table_rows(db, "status_events")
    assert len(rows) == count
    return rows


def test_tidying_merges_the_small_files_of_many_loads_and_keeps_the_rows(tmp_path: Path) -> None:
    db = lake_db(tmp_path)
    for hour in range(1, 5):
        lake.write_table(
            tmp_path, TAXA, rows_table(TAXA, taxa(range(hour * 10, hour * 10 + 3), hour)), ingest_date=DAY
        )
        load_into(tmp_path, db)
    before = table_rows(db, "taxa")
    taxa_files = lambda: [p for p in data_files(db) if p.parent.name == "taxa"]  # noqa: E731
    assert len(taxa_files()) == 4  # one per load

    upkeep = tidy_ducklake(db, keep=timedelta(0))

    assert upkeep.files_merged >= 4
    assert len(taxa_files()) == 1  # merged, and the replaced files deleted (no reader needs them: keep=0)
    assert table_rows(db, "taxa") == before
    lake.write_table(tmp_path, TAXA, rows_table(TAXA, taxa(range(90, 91), 9)), ingest_date=DAY)
    assert load_into(tmp_path, db).rows_read == 20  # loads go on from the tidied catalog
    assert len(table_rows(db, "taxa")) == len(before) + 20


def test_kitsync_warehouse_setting_picks_the_analysts_warehouse(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.runtime import data_paths
    from flows.settings import Settings

    monkeypatch.delenv("KITSYNC_WAREHOUSE", raising=False)
    assert data_paths(Settings()).warehouse.name == "kitsync.duckdb"  # the embedded default (make demo)
    monkeypatch.setenv("KITSYNC_WAREHOUSE", "ducklake")
    assert WarehousePaths.of(data_paths(Settings()).warehouse).is_lake
    monkeypatch.setenv("KITSYNC_WAREHOUSE", "lakehouse")
    with pytest.raises(ValueError, match="warehouse"):
        Settings()


def test_an_analyst_elsewhere_reads_a_copy_of_the_catalog_and_its_files(tmp_path: Path) -> None:
    db = lake_db(tmp_path)
    lake.write_table(tmp_path, TAXA, rows_table(TAXA, taxa(range(30))), ingest_date=DAY)
    load_into(tmp_path, db)
    expected_rows = table_rows(db, "taxa")
    # another machine: the published catalog and the data files, copied (as to object storage), and the
    # loader's own directory out of reach
    elsewhere = tmp_path / "analyst"
    elsewhere.mkdir()
    shutil.copy(db, elsewhere / db.name)
    shutil.copytree(WarehousePaths.of(db).data_dir, elsewhere / "files")
    shutil.move(tmp_path / "warehouse", tmp_path / "out-of-reach")

    connection = connect_readonly(elsewhere / db.name, data_path=elsewhere / "files")
    try:
        rows = connection.sql("SELECT * FROM taxa ORDER BY ALL").to_arrow_table().to_pylist()
    finally:
        connection.close()
    assert rows == expected_rows
