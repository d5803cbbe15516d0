"""Lake upkeep: merge the small files of closed partitions and clear what crashes left behind; on a DuckLake
warehouse, merge its small data files and delete the files no snapshot still in use needs.

Runs under the warehouse's writer lock, so no load lists a file that compaction is about to delete; syncs may
keep writing meanwhile because only partitions from before today (closed: nothing lands there any more) are
compacted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from transform.schemas import TableSpec
from warehouse.duck import LAKE_ALIAS
from warehouse.lake import LakeRoot, compact, list_partitions, remove_debris, resolve_root
from warehouse.load import checkpoint, open_writer
from warehouse.publish import WarehousePaths, publish_snapshot, writer_lock

_INGEST_DATE = re.compile(r"ingest_date=(\d{4}-\d{2}-\d{2})$")


@dataclass
class CompactionReport:
    """How many files compaction merged and removed, per table."""

    files_merged: dict[str, int] = field(default_factory=dict)
    debris_removed: dict[str, int] = field(default_factory=dict)


def compact_lake(
    lake_root: str | os.PathLike[str] | LakeRoot,
    db_path: str | os.PathLike[str],
    specs: Mapping[str, TableSpec],
    *,
    before: date,
    lock_timeout: float = 600.0,
) -> CompactionReport:
    """Compact every partition ingested before `before`, for each table in `specs`."""
    lake = resolve_root(lake_root)
    report = CompactionReport()
    with writer_lock(WarehousePaths.of(db_path).lock, timeout=lock_timeout):
        for spec in specs.values():
            removed = remove_debris(lake, spec.name)
            if removed:
                report.debris_removed[spec.name] = len(removed)
            for directory in list_partitions(lake, spec.name):
                match = _INGEST_DATE.search(directory)
                if match is None or date.fromisoformat(match.group(1)) >= before:
                    continue
                compacted = compact(lake, spec, directory)
                if compacted is not None:
                    report.files_merged[spec.name] = report.files_merged.get(spec.name, 0) + len(
                        compacted.replaces
                    )
    return report


@dataclass(frozen=True)
class LakeUpkeep:
    """What `tidy_ducklake` did: data files merged into fewer, files deleted for good."""

    files_merged: int
    files_deleted: int


def tidy_ducklake(
    db_path: str | os.PathLike[str], *, keep: timedelta = timedelta(days=1), lock_timeout: float = 600.0
) -> LakeUpkeep:
    """Merge a DuckLake warehouse's small data files (each load adds one per table it changed) and delete
    the files that only snapshots older than `keep` referenced.

    Merging writes new files and a new snapshot; the files it replaced stay on disk for `keep`, because an
    analyst who attached the previously published catalog reads them: `keep` is how long a reader's
    connection may stay open and still read everything. Runs under the writer lock and publishes at the end.
    """
    paths = WarehousePaths.of(db_path)
    if not paths.is_lake:
        raise ValueError(f"{paths.published} is not a DuckLake warehouse (*.ducklake)")
    alias = LAKE_ALIAS
    with writer_lock(paths.lock, timeout=lock_timeout):
        connection = open_writer(paths)
        try:
            merged = connection.execute("CALL ducklake_merge_adjacent_files(?)", [alias]).fetchall()
            cutoff = datetime.now(UTC) - keep  # after the merge: with keep=0 the files it replaced go too
            connection.execute(
                "CALL ducklake_expire_snapshots(?, older_than => ?)", [alias, cutoff]
            ).fetchall()
            deleted = connection.execute(
                "CALL ducklake_cleanup_old_files(?, older_than => ?)", [alias, cutoff]
            ).fetchall()
            # files a crashed load wrote but never committed: no snapshot ever referenced them
            deleted += connection.execute(
                "CALL ducklake_delete_orphaned_files(?, older_than => ?)", [alias, cutoff]
            ).fetchall()
            checkpoint(connection, paths)
        finally:
            connection.close()
        publish_snapshot(paths)
    return LakeUpkeep(files_merged=sum(int(row[2]) for row in merged), files_deleted=len(deleted))
