"""Lake upkeep: merge the small files of closed partitions and clear what crashes left behind.

Runs under the warehouse's writer lock, so no load lists a file that compaction is about to delete; syncs may
keep writing meanwhile because only partitions from before today (closed: nothing lands there any more) are
compacted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from transform.schemas import TableSpec
from warehouse.lake import LakeRoot, compact, list_partitions, remove_debris, resolve_root
from warehouse.publish import WarehousePaths, writer_lock

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
