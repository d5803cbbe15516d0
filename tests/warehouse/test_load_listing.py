"""A load finds the lake files it lacks through the lake journal: its listing follows what was written since
the last load, not the lake's size, and still finds files landed in old partitions (backfills, compaction),
by another worker while a load ran, or copied in by hand (with `rescan`).

The S3 cases count the listing requests the moto server answered (server-side, whatever the client)."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.storage.s3 import S3Server
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
from transform.schemas import TableSpec
from warehouse import journal, lake
from warehouse.files import resolve_root
from warehouse.load import has_unloaded_files, load

TODAY = date(2026, 11, 30)


def event(kit_id: str, hour: int = 1) -> Row:
    return {
        "provider": "biomesight",
        "kit_id": kit_id,
        "status": "shipped",
        "source": "poll",
        "observed_at": at(hour),
    }


def kit(kit_id: str, hour: int = 1) -> Row:
    return {
        "provider": "biomesight",
        "kit_id": kit_id,
        "status": "shipped",
        "lab": None,
        "score": None,
        "observed_at": at(hour),
    }


def taxon(kit_id: str, hour: int = 1) -> Row:
    return {
        "provider": "gencove",
        "kit_id": kit_id,
        "taxon": "Bacteroides",
        "abundance": 0.5,
        "observed_at": at(hour),
    }


ROW = {"kit_state": kit, "status_events": event, "taxa": taxon}


def land(root: Any, spec: TableSpec, rows: list[Row], day: date = TODAY) -> list[lake.LakeFile]:
    return lake.write_table(root, spec, rows_table(spec, rows), ingest_date=day)


class Warehouse:
    """A lake root (local path or s3:// URI) and its warehouse in a local directory."""

    def __init__(self, root: Any, directory: Path) -> None:
        self.root, self.db = root, directory / "warehouse" / "kitsync.duckdb"
        self.views = directory / "no-views"

    def load(self, **options: Any) -> Any:
        return load(self.root, self.db, SPECS, views_dir=self.views, **options)

    def has_unloaded(self) -> bool:
        return has_unloaded_files(self.root, self.db, SPECS)

    def rows(self, table: str) -> list[Row]:
        return table_rows(self.db, table)


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    if request.param == "local":
        return Warehouse(tmp_path / "lake-root", tmp_path)
    server: S3Server = request.getfixturevalue("s3_server")
    return Warehouse(server.new_bucket(), tmp_path)


def _old_lake(root: Any, days: int) -> dict[str, list[Row]]:
    """Every table holds two files in each of `days` past partitions; returns the rows landed per table."""
    landed: dict[str, list[Row]] = {name: [] for name in SPECS}
    for day in range(days):
        for name, spec in SPECS.items():
            for n in range(2):
                rows = [ROW[name](f"old-{day}-{n}")]
                land(root, spec, rows, TODAY - timedelta(days=10 + day))
                landed[name] += rows
    return landed


@pytest.mark.parametrize("days", [1, 4])
def test_a_load_on_s3_lists_the_journal_and_the_changed_partition_whatever_the_lake_holds(
    days: int, s3_server: S3Server, tmp_path: Path
) -> None:
    house = Warehouse(s3_server.new_bucket(), tmp_path)
    _old_lake(house.root, days)
    house.load()  # the first load lists the whole lake once

    land(house.root, STATUS_EVENTS, [event("new")])
    mark = len(s3_server.requests)
    report = house.load()
    # One listing of the journal's tail and one of the partition it names; the other tables and the old
    # partitions are not listed (the whole-lake listing made one request per table, more past 1,000 files).
    assert len(s3_server.lists_since(mark)) == 2
    assert report.files_merged == 1

    mark = len(s3_server.requests)
    assert house.load().files_merged == 0
    assert len(s3_server.lists_since(mark)) == 1  # nothing new: the journal's tail alone


def test_whether_anything_waits_is_one_listing_on_s3(s3_server: S3Server, tmp_path: Path) -> None:
    house = Warehouse(s3_server.new_bucket(), tmp_path)
    assert house.has_unloaded()  # no warehouse yet
    _old_lake(house.root, 2)
    house.load()

    mark = len(s3_server.requests)
    assert not house.has_unloaded()
    assert len(s3_server.requests) - mark == 1  # one ListObjectsV2 of the journal, nothing else
    assert len(s3_server.lists_since(mark)) == 1

    land(house.root, TAXA, [taxon("late")], TODAY - timedelta(days=30))  # even into an old partition
    assert house.has_unloaded()
    house.load()
    assert not house.has_unloaded()


def test_files_landed_in_old_partitions_are_loaded_once(where: Warehouse) -> None:
    landed = _old_lake(where.root, 2)
    where.load()
    old_day = TODAY - timedelta(days=10)

    # A backfill lands in an old partition, and compaction then merges it with the loaded files there.
    backfill = [event(f"backfill-{n}") for n in range(3)]
    land(where.root, STATUS_EVENTS, backfill, old_day)
    compacted = lake.compact(
        where.root, STATUS_EVENTS, lake.partition_dir(STATUS_EVENTS, {"provider": "biomesight"}, old_day)
    )
    assert compacted is not None
    assert where.has_unloaded()
    report = where.load()
    assert report.files_merged == 1  # the compacted file: its backfilled input was never loaded
    assert where.rows("status_events") == expected(STATUS_EVENTS, landed["status_events"] + backfill)

    # Compaction of an old partition whose files were all loaded: recorded as covered, nothing re-read.
    older = lake.partition_dir(TAXA, {"provider": "gencove"}, TODAY - timedelta(days=11))
    assert lake.compact(where.root, TAXA, older) is not None
    report = where.load()
    assert (report.files_merged, report.files_covered) == (0, 1)
    for name, spec in SPECS.items():
        rows = landed[name] + (backfill if name == "status_events" else [])
        assert where.rows(name) == expected(spec, rows)
    assert not where.has_unloaded()


def _serialized(spec: TableSpec, rows: list[Row], day: date) -> tuple[str, bytes]:
    """A lake file as the writer makes it: its content-addressed path and its bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(rows_table(spec, rows), sink, compression="zstd")
    content = sink.getvalue().to_pybytes()
    directory = lake.partition_dir(spec, {"provider": rows[0]["provider"]}, day)
    return f"{directory}/part-{hashlib.sha256(content).hexdigest()[:32]}.parquet", content


def _put_without_marker(root: Any, spec: TableSpec, rows: list[Row], day: date) -> str:
    path, content = _serialized(spec, rows, day)
    resolve_root(root).put(path, content, exclusive=True)
    return path


def test_a_file_still_being_written_while_a_load_listed_is_found_by_the_next_load(where: Warehouse) -> None:
    landed = _old_lake(where.root, 1)
    where.load()

    # Another worker began a write: its marker is there, its file is not yet.
    slow = [event("slow-writer")]
    path, content = _serialized(STATUS_EVENTS, slow, TODAY - timedelta(days=10))
    journal.record(resolve_root(where.root), path)
    # Meanwhile other files land and a load takes them in, moving its watermark past the marker.
    quick = [event("quick-writer")]
    land(where.root, STATUS_EVENTS, quick)
    assert where.load().files_merged == 1

    # The slow write finishes; nothing else is written. The next load must still find the file.
    resolve_root(where.root).put(path, content, exclusive=True)
    assert where.has_unloaded()
    assert where.load().files_merged == 1
    assert where.rows("status_events") == expected(STATUS_EVENTS, landed["status_events"] + quick + slow)


def test_files_put_without_a_marker_are_found_by_a_rescan(where: Warehouse) -> None:
    landed = _old_lake(where.root, 1)
    where.load()
    copied = [kit("copied-in")]
    _put_without_marker(where.root, KIT_STATE, copied, TODAY - timedelta(days=40))

    assert where.load().files_merged == 0  # no marker: a load following the journal does not see it
    assert where.load(rescan=True).files_merged == 1
    assert where.rows("kit_state") == expected(KIT_STATE, landed["kit_state"] + copied)


def test_an_empty_warehouse_lists_the_whole_lake_even_with_an_old_journal(tmp_path: Path) -> None:
    root = tmp_path / "lake-root"
    landed = _old_lake(root, 3)
    first, second = Warehouse(root, tmp_path / "one"), Warehouse(root, tmp_path / "two")
    first.load()
    land(root, STATUS_EVENTS, [event("later")])
    first.load()
    second.load()  # a new machine: no watermark, the whole lake
    for name in SPECS:
        assert second.rows(name) == first.rows(name)
    assert len(second.rows("status_events")) == len(landed["status_events"]) + 1
