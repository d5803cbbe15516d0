"""Reading raw responses back from the lake, and storing fetched documents (PDF reports) as lake files.

Raw responses are written like any lake table (`warehouse.batches.write_tables`); reading them back is for
`backfill --reprocess-from-raw`: the newest response per entity and endpoint, for the entities asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from transform.schemas import RAW_RESPONSES
from warehouse.lake import LakeRoot, list_files, partition_prefix, resolve_root

FILES_DIR = "files"


def latest_raw_responses(
    root: str | os.PathLike[str] | LakeRoot,
    provider: str,
    endpoint: str,
    entity_ids: Collection[str] | None = None,
) -> dict[str, Any]:
    """entity id -> the newest body fetched from `endpoint` (parsed JSON), for `entity_ids` or all."""
    lake = resolve_root(root)
    prefix = partition_prefix(RAW_RESPONSES, {"provider": provider, "endpoint": endpoint}) + "/"
    files = [f for f in list_files(lake, RAW_RESPONSES.name) if f.path.startswith(prefix)]
    if not files:
        return {}
    dataset = pads.dataset(
        [lake.full(f.path) for f in files],
        schema=RAW_RESPONSES.schema,
        format="parquet",
        filesystem=lake.filesystem,
    )
    condition = None
    if entity_ids is not None:
        if not entity_ids:
            return {}
        condition = pc.field("entity_id").isin(pa.array(sorted(entity_ids), pa.string()))
    table = dataset.to_table(columns=["entity_id", "body_json", "observed_at"], filter=condition)
    if table.num_rows == 0:
        return {}
    table = table.sort_by([("entity_id", "ascending"), ("observed_at", "ascending")])
    newest: dict[str, str] = {}
    for entity_id, body in zip(
        table.column("entity_id").to_pylist(), table.column("body_json").to_pylist(), strict=True
    ):
        newest[entity_id] = body  # sorted by time: the last one seen is the newest
    return {entity_id: json.loads(body) for entity_id, body in newest.items()}


@dataclass(frozen=True)
class StoredFile:
    """A document kept in the lake: its path relative to the lake root, size and checksum."""

    path: str
    size_bytes: int
    sha256: str


def store_file(
    root: str | os.PathLike[str] | LakeRoot, directory: str, name: str, content: bytes
) -> StoredFile:
    """Write `content` to `{lake root}/files/{directory}/{name}`, all or nothing (`LakeRoot.put`)."""
    final = posixpath.join(FILES_DIR, directory, name)
    resolve_root(root).put(final, content)
    return StoredFile(final, len(content), hashlib.sha256(content).hexdigest())
