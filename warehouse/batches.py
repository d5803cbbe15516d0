"""Landing one batch of transformed tables in the lake: one file per table and partition, never per kit."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date

import pyarrow as pa

from transform.schemas import ALL_SPECS, TableSpec
from warehouse.lake import LakeRoot, write_table
from warehouse.state import DONE_TABLES

# A crash can stop a batch between two of its files. Raw responses go first, so whatever else landed can be
# reprocessed; the tables the planner reads to decide a kit's work is done (warehouse.state.DONE_TABLES) go
# last, so a batch cut short looks undone and the next run fetches it again, rather than looking done with
# its scores or QC rows missing.
_WRITE_ORDER = {"raw_responses": 0, **dict.fromkeys(DONE_TABLES, 2)}


def write_tables(
    root: str | os.PathLike[str] | LakeRoot,
    tables: Mapping[str, pa.Table],
    *,
    ingest_date: date,
    specs: Mapping[str, TableSpec] = ALL_SPECS,
) -> dict[str, int]:
    """Write every non-empty table of a batch; returns rows written per table."""
    written: dict[str, int] = {}
    for name, table in sorted(tables.items(), key=lambda item: _WRITE_ORDER.get(item[0], 1)):
        if table.num_rows:
            write_table(root, specs[name], table, ingest_date=ingest_date)
            written[name] = table.num_rows
    return written
