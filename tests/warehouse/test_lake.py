"""The parquet lake: partitions, schema checks, atomic content-addressed writes, permissions, compaction."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from tests.warehouse.tables import KIT_STATE, STATUS_EVENTS, at, rows_table
from warehouse import lake
from warehouse.lake import LakeRoot, LakeSchemaError

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 22)


def events(provider: str, kits: range, hour: int = 1) -> pa.Table:
    return rows_table(
        STATUS_EVENTS,
        [
            {
                "provider": provider,
                "kit_id": f"k{n}",
                "status": "shipped",
                "source": "poll",
                "observed_at": at(hour),
            }
            for n in kits
        ],
    )


def sorted_rows(table: pa.Table) -> list[dict[str, object]]:
    return sorted(table.to_pylist(), key=lambda row: (row["provider"], row["kit_id"], row["observed_at"]))


def test_batch_splits_into_hive_partitions_holding_all_columns(tmp_path: Path) -> None:
    batch = pa.concat_tables([events("biomesight", range(3)), events("gencove", range(2))])

    written = lake.write_table(tmp_path, STATUS_EVENTS, batch, ingest_date=DAY)

    assert {f.directory for f in written} == {
        "lake/status_events/provider=biomesight/ingest_date=2026-11-22",
        "lake/status_events/provider=gencove/ingest_date=2026-11-22",
    }
    for lake_file in written:
        assert lake_file.name.startswith("part-")
        assert lake_file.name.endswith(".parquet")
        content = pq.read_table(tmp_path / lake_file.path)
        provider = lake_file.directory.split("/")[2].removeprefix("provider=")
        assert set(content["provider"].to_pylist()) == {provider}
        assert content.schema.equals(STATUS_EVENTS.schema, check_metadata=False)
        assert lake_file.rows == content.num_rows
    assert sum(f.rows or 0 for f in written) == batch.num_rows
    assert [f.path for f in lake.list_files(tmp_path, "status_events")] == sorted(f.path for f in written)


def test_partition_values_cannot_escape_their_directory(tmp_path: Path) -> None:
    batch = events("../../etc", range(1))

    [written] = lake.write_table(tmp_path, STATUS_EVENTS, batch, ingest_date=DAY)

    assert written.directory == "lake/status_events/provider=..%2F..%2Fetc/ingest_date=2026-11-22"
    assert (tmp_path / written.path).is_file()


def test_schema_mismatch_is_refused_with_the_offending_columns(tmp_path: Path) -> None:
    good = events("biomesight", range(2))
    retyped = good.set_column(good.schema.get_field_index("source"), "source", pa.array([1, 2], pa.int64()))
    missing = good.drop_columns(["source"])

    with pytest.raises(LakeSchemaError, match="'source' is int64"):
        lake.write_table(tmp_path, STATUS_EVENTS, retyped, ingest_date=DAY)
    with pytest.raises(LakeSchemaError, match="missing column 'source'"):
        lake.write_table(tmp_path, STATUS_EVENTS, missing, ingest_date=DAY)
    assert lake.list_files(tmp_path, "status_events") == []


def test_identical_batch_lands_on_the_same_file(tmp_path: Path) -> None:
    batch = events("biomesight", range(5))
    rechunked = pa.concat_tables([batch.slice(0, 2), batch.slice(2)])

    first = lake.write_table(tmp_path, STATUS_EVENTS, batch, ingest_date=DAY)
    second = lake.write_table(tmp_path, STATUS_EVENTS, rechunked, ingest_date=DAY)
    different = lake.write_table(tmp_path, STATUS_EVENTS, events("biomesight", range(6)), ingest_date=DAY)

    assert [f.path for f in first] == [f.path for f in second]
    assert [f.path for f in different] != [f.path for f in first]
    assert len(lake.list_files(tmp_path, "status_events")) == 2


def test_empty_batch_writes_nothing(tmp_path: Path) -> None:
    assert lake.write_table(tmp_path, STATUS_EVENTS, events("biomesight", range(0)), ingest_date=DAY) == []
    assert not (tmp_path / "lake").exists()


def test_crash_between_write_and_rename_leaves_nothing_visible(tmp_path: Path) -> None:
    # A real crash: the writing process dies (os._exit, no cleanup) right at the rename.
    script = (
        "import os, sys\n"
        "from datetime import date\n"
        "from tests.warehouse.tables import STATUS_EVENTS, at, rows_table\n"
        "from warehouse import files, lake\n"
        "files._publish_local = lambda *args, **kwargs: os._exit(3)\n"
        "batch = rows_table(STATUS_EVENTS, [{'provider': 'biomesight', 'kit_id': 'k1', 'status': 'shipped',\n"
        "    'source': 'poll', 'observed_at': at(1)}])\n"
        "lake.write_table(sys.argv[1], STATUS_EVENTS, batch, ingest_date=date(2026, 11, 22))\n"
    )
    crashed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, str(tmp_path)], cwd=REPO, env=_env(), capture_output=True, check=False
    )

    assert crashed.returncode == 3, crashed.stderr
    leftovers = [p for p in (tmp_path / "lake").rglob("*") if p.is_file()]
    assert len(leftovers) == 1
    assert leftovers[0].name.startswith(".tmp-")
    assert lake.list_files(tmp_path, "status_events") == []
    assert lake.remove_debris(tmp_path, "status_events", min_age=timedelta(hours=1)) == []  # may be in flight
    assert lake.remove_debris(tmp_path, "status_events", min_age=timedelta(0)) == [
        leftovers[0].relative_to(tmp_path).as_posix()
    ]
    assert not leftovers[0].exists()


def test_local_lake_is_owner_only(tmp_path: Path) -> None:
    root = tmp_path / "data"

    [written] = lake.write_table(root, STATUS_EVENTS, events("biomesight", range(2)), ingest_date=DAY)

    assert stat.S_IMODE((root / written.path).stat().st_mode) == 0o600
    directory = root / written.directory
    while directory != tmp_path:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        directory = directory.parent


def test_compaction_keeps_the_rows_and_records_its_inputs(tmp_path: Path) -> None:
    batches = [events("biomesight", range(n, n + 3), hour=n + 1) for n in range(0, 12, 3)]
    inputs = [
        f for batch in batches for f in lake.write_table(tmp_path, STATUS_EVENTS, batch, ingest_date=DAY)
    ]
    other_day = lake.write_table(tmp_path, STATUS_EVENTS, batches[0], ingest_date=DAY + timedelta(days=1))

    compacted = lake.compact(tmp_path, STATUS_EVENTS, {"provider": "biomesight", "ingest_date": DAY})

    assert compacted is not None
    assert compacted.is_compacted
    assert compacted.replaces == {f.name for f in inputs} == compacted.leaves
    assert compacted.rows == sum(batch.num_rows for batch in batches)
    content = pq.read_table(tmp_path / compacted.path).replace_schema_metadata(None)
    assert sorted_rows(content) == sorted_rows(pa.concat_tables(batches))
    listed = lake.list_files(tmp_path, "status_events")
    assert [f.path for f in listed] == sorted([compacted.path, *(f.path for f in other_day)])
    assert not any((tmp_path / f.path).exists() for f in inputs)
    assert lake.compact(tmp_path, STATUS_EVENTS, compacted.directory) is None  # one file: nothing to merge


def test_recompaction_keeps_the_original_files_as_leaves(tmp_path: Path) -> None:
    first = [
        lake.write_table(tmp_path, STATUS_EVENTS, events("gencove", range(n, n + 1)), ingest_date=DAY)[0]
        for n in range(2)
    ]
    earlier = lake.compact(tmp_path, STATUS_EVENTS, first[0].directory)
    late = lake.write_table(tmp_path, STATUS_EVENTS, events("gencove", range(5, 6)), ingest_date=DAY)

    assert earlier is not None
    later = lake.compact(tmp_path, STATUS_EVENTS, earlier.directory)

    assert later is not None
    assert later.replaces == {earlier.name, late[0].name}
    assert later.leaves == {first[0].name, first[1].name, late[0].name}
    assert later.rows == 3


def test_interrupted_compaction_hides_and_then_removes_its_inputs(tmp_path: Path) -> None:
    inputs = [lake.write_table(tmp_path, KIT_STATE, _kit(n), ingest_date=DAY)[0] for n in range(2)]
    saved = {f.path: (tmp_path / f.path).read_bytes() for f in inputs}
    compacted = lake.compact(tmp_path, KIT_STATE, inputs[0].directory)
    for path, content in saved.items():  # as if the process died before deleting the inputs
        (tmp_path / path).write_bytes(content)

    assert compacted is not None
    assert [f.path for f in lake.list_files(tmp_path, "kit_state")] == [compacted.path]
    assert sorted(lake.remove_debris(tmp_path, "kit_state")) == sorted(saved)
    assert not any((tmp_path / path).exists() for path in saved)


def test_lake_on_a_non_local_filesystem(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    memory = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem("memory")))
    root = LakeRoot(memory, f"/kitsync-test-{tmp_path.name}")

    written = lake.write_table(root, STATUS_EVENTS, events("biomesight", range(3)), ingest_date=DAY)
    again = lake.write_table(root, STATUS_EVENTS, events("biomesight", range(3)), ingest_date=DAY)
    more = lake.write_table(root, STATUS_EVENTS, events("biomesight", range(3, 5)), ingest_date=DAY)
    compacted = lake.compact(root, STATUS_EVENTS, written[0].directory)

    assert [f.path for f in again] == [f.path for f in written]
    assert compacted is not None
    assert compacted.replaces == {written[0].name, more[0].name}
    assert [f.path for f in lake.list_files(root, "status_events")] == [compacted.path]


def _kit(n: int) -> pa.Table:
    return rows_table(
        KIT_STATE,
        [
            {
                "provider": "biomesight",
                "kit_id": f"k{n}",
                "status": "shipped",
                "lab": None,
                "score": None,
                "observed_at": at(1),
            }
        ],
    )


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}
