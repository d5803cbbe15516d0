"""Landing one batch of transformed tables in the lake: one file per table and partition, never per kit."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date

import pyarrow as pa

from transform.schemas import ALL_SPECS, TableSpec
from warehouse.lake import LakeRoot, write_table


def write_tables(
    root: str | os.PathLike[str] | LakeRoot,
    tables: Mapping[str, pa.Table],
    *,
    ingest_date: date,
    specs: Mapping[str, TableSpec] = ALL_SPECS,
) -> dict[str, int]:
    """Write every non-empty table of a batch; returns rows written per table."""
    written: dict[str, int] = {}
    for name, table in tables.items():
        if table.num_rows:
            write_table(root, specs[name], table, ingest_date=ingest_date)
            written[name] = table.num_rows
    return written
