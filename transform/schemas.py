"""The data contract: every lake/warehouse table declared once (schema, keys, partitions, how it merges).

The warehouse derives its DDL and merge logic from these specs and the README reuses the descriptions, so a
column is added here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

# How a table's new rows combine with what the warehouse already holds:
# - "current": one row per primary key; the newer observation (by `observed_at`) wins column by column, and a
#   null in the newer row keeps the older value (partial observations never erase what another source saw).
# - "history": append-only; a row whose primary key is already present is dropped (the first observation wins).
# - "replace": the rows of each `replace_key` group (e.g. one kit's taxonomy) are replaced as a whole by the
#   group's newest observation, so a re-fetched result never leaves stale rows behind.
MergeMode = Literal["current", "history", "replace"]


@dataclass(frozen=True)
class TableSpec:
    """One table of the lake and the warehouse."""

    name: str
    schema: pa.Schema
    primary_key: tuple[str, ...]
    description: str
    merge: MergeMode
    partition_by: tuple[str, ...] = ("provider",)  # the lake adds ingest_date=YYYY-MM-DD below these
    replace_key: tuple[str, ...] = ()  # for merge == "replace"
    observed_at: str = "observed_at"  # the column that orders observations
