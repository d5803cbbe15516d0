"""The parquet lake: atomic, content-addressed, hive-partitioned files under `{root}/lake/{table}/`.

Layout: `{root}/lake/{table}/{col}={value}/.../ingest_date=YYYY-MM-DD/part-<id>.parquet`. Every file holds all
of its table's columns (partition columns included), so a file means the same thing wherever it is copied;
the directories are there for pruning and for compaction. `<id>` is a hash of the file's bytes, so re-writing
an identical batch (a retried flow, a crash before the caller recorded success) lands on the same name and
can never duplicate rows. A file is serialized first, so its final key is known, and then put whole
(`warehouse.files`): on local disk under a temporary dot-name renamed into place, on an object store
(`s3://bucket/prefix`) as one PUT, which is all-or-nothing. The object under its content-addressed key is the
commit, written last: readers and the loader only ever see complete `part-*` / `compact-*` files, so a crash
leaves at most a local temporary file that `remove_debris` deletes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from transform.schemas import TableSpec
from warehouse import journal
from warehouse.files import TEMP_PREFIX, LakeRoot, resolve_root

__all__ = ["LakeRoot", "resolve_root"]  # re-exported: callers name the root where they name the lake

LAKE_DIR = "lake"
PART_PREFIX = "part-"
COMPACT_PREFIX = "compact-"
SUFFIX = ".parquet"
ROW_GROUP_ROWS = 1_000_000
COMPACTED_FROM_KEY = b"kitsync.compacted_from"
LEAVES_KEY = b"kitsync.leaves"


class LakeSchemaError(ValueError):
    """A batch does not have its table's declared schema: writing it would poison every later load."""


@dataclass(frozen=True)
class LakeFile:
    """One immutable data file of the lake.

    `path` is relative to the lake root ('/'-separated): it is the loader's ledger key, so a lake copied to
    another root (local disk to object storage) is still recognised as loaded.
    """

    table: str
    path: str
    size_bytes: int
    rows: int | None = None
    replaces: frozenset[str] = frozenset()  # compacted files: names of the files merged into this one
    leaves: frozenset[str] = frozenset()  # compacted files: the original part files, through re-compactions

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path)

    @property
    def content_id(self) -> str:
        return _content_id_of(self.name)

    @property
    def is_compacted(self) -> bool:
        return self.name.startswith(COMPACT_PREFIX)


def partition_dir(spec: TableSpec, values: Mapping[str, Any], ingest_date: date | str) -> str:
    """The lake-relative directory of one partition: partition columns in declared order, then ingest_date."""
    day = date.fromisoformat(_ingest_day(ingest_date))
    return f"{partition_prefix(spec, values)}/{_hive([('ingest_date', pa.date32(), day)])}"


def partition_prefix(spec: TableSpec, values: Mapping[str, Any]) -> str:
    """The lake-relative directory of a table's declared partition columns (above the ingest dates)."""
    missing = [column for column in spec.partition_by if column not in values]
    if missing:
        raise KeyError(f"partition of {spec.name} needs a value for {missing[0]!r}")
    columns = [(column, spec.schema.field(column).type, values[column]) for column in spec.partition_by]
    return "/".join([LAKE_DIR, spec.name, *([_hive(columns)] if columns else [])])


def _hive(columns: list[tuple[str, pa.DataType, Any]]) -> str:
    """`col=value/...` as pyarrow's hive partitioning names it (URI-escaped values, so nothing in a value can
    leave its directory; null as __HIVE_DEFAULT_PARTITION__): the names pyarrow and DuckDB read back."""
    schema = pa.schema([pa.field(name, data_type) for name, data_type, _ in columns])
    conditions = [
        pc.field(name).is_null() if value is None else pc.field(name) == pa.scalar(value, data_type)
        for name, data_type, value in columns
    ]
    directory, _ = pads.partitioning(schema, flavor="hive").format(
        functools.reduce(operator.and_, conditions)
    )
    return str(directory)


def write_table(
    root: str | os.PathLike[str] | LakeRoot, spec: TableSpec, table: pa.Table, *, ingest_date: date
) -> list[LakeFile]:
    """Land one batch of a table: one file per partition, each appearing atomically (or not at all)."""
    if not table.schema.equals(spec.schema, check_metadata=False):
        raise LakeSchemaError(_schema_difference(spec, table.schema))
    if table.num_rows == 0:
        return []
    lake = resolve_root(root)
    written = []
    for values, rows in _split_by_partition(table, spec.partition_by):
        directory = partition_dir(spec, values, ingest_date)
        written.append(_write_atomically(lake, spec.name, directory, rows, PART_PREFIX))
    return written


def list_files(root: str | os.PathLike[str] | LakeRoot, table: str) -> list[LakeFile]:
    """The files that together hold a table's content exactly once, sorted by path.

    Temporary files are never listed. When a compacted file and some of the inputs it replaces are both
    present (a crash between the compacted file's rename and the inputs' deletion), only the compacted file
    is listed: its content includes theirs.
    """
    lake = resolve_root(root)
    return _resolve_compactions(lake, _data_files(lake, table))


def list_directory(root: str | os.PathLike[str] | LakeRoot, table: str, directory: str) -> list[LakeFile]:
    """`list_files` for one lake-relative partition directory alone (one listing request on object storage):
    what the loader reads for a partition the journal says was written to. Compaction merges files within
    one directory only, so what supersedes what is decided within it exactly as for the whole table."""
    lake = resolve_root(root)
    selector = pafs.FileSelector(lake.full(directory), recursive=False, allow_not_found=True)
    infos = [info for info in lake.filesystem.get_file_info(selector) if info.type == pafs.FileType.File]
    return _resolve_compactions(lake, _lake_files(lake, table, infos))


def _resolve_compactions(lake: LakeRoot, files: list[LakeFile]) -> list[LakeFile]:
    superseded: set[str] = set()
    resolved = []
    for found in files:
        lake_file = _with_compaction_record(lake, found) if found.is_compacted else found
        superseded.update(posixpath.join(lake_file.directory, name) for name in lake_file.replaces)
        resolved.append(lake_file)
    return [lake_file for lake_file in resolved if lake_file.path not in superseded]


def list_partitions(root: str | os.PathLike[str] | LakeRoot, table: str) -> list[str]:
    """The lake-relative leaf (`ingest_date=`) directories of a table that hold files."""
    return sorted({lake_file.directory for lake_file in list_files(root, table)})


def compact(
    root: str | os.PathLike[str] | LakeRoot,
    spec: TableSpec,
    partition: str | Mapping[str, Any],
    *,
    small_bytes: int = 32 * 1024 * 1024,
) -> LakeFile | None:
    """Merge the small files of one partition into one file with the same rows (None: nothing to merge).

    `partition` is a lake-relative directory (as from `list_partitions`) or a mapping of the partition
    columns plus `ingest_date`. The new `compact-<id>.parquet` records in its parquet metadata which files it
    replaces, then the inputs are deleted. The loader uses that record to avoid loading anything twice: a
    compacted file whose inputs were all loaded is recorded as covered without being read, otherwise it is
    loaded in full (merging is idempotent, so rows already present change nothing). Keeping the record inside
    the file rather than in a side manifest means there is no second object to keep consistent with it.
    """
    lake = resolve_root(root)
    directory = partition if isinstance(partition, str) else _partition_from_mapping(spec, partition)
    _finish_interrupted_compactions(lake, spec.name, directory)
    inputs = [
        f for f in list_files(lake, spec.name) if f.directory == directory and f.size_bytes < small_bytes
    ]
    if len(inputs) < 2:
        return None
    inputs.sort(key=lambda lake_file: lake_file.name)
    tables = [_conform(_read(lake, lake_file), spec) for lake_file in inputs]
    merged = pa.concat_tables(tables)
    leaves = set()
    for lake_file in inputs:
        leaves.update(lake_file.leaves if lake_file.is_compacted else {lake_file.name})
    record = {
        COMPACTED_FROM_KEY: json.dumps(sorted(f.name for f in inputs)).encode(),
        LEAVES_KEY: json.dumps(sorted(leaves)).encode(),
    }
    merged = merged.replace_schema_metadata({**(merged.schema.metadata or {}), **record})
    compacted = _write_atomically(lake, spec.name, directory, merged, COMPACT_PREFIX)
    for lake_file in inputs:
        lake.delete(lake_file.path)
    return _with_compaction_record(lake, compacted)


def remove_debris(
    root: str | os.PathLike[str] | LakeRoot, table: str, *, min_age: timedelta = timedelta(hours=1)
) -> list[str]:
    """Delete what crashes leave behind: temporary files older than `min_age` (younger ones may belong to a
    writer still running) and inputs of a finished compaction. Returns the removed lake-relative paths."""
    lake = resolve_root(root)
    now_ns = datetime.now(UTC).timestamp() * 1e9
    removed = []
    for info in _walk(lake, table):
        if (
            info.base_name.startswith(TEMP_PREFIX)
            and now_ns - (info.mtime_ns or 0) >= min_age.total_seconds() * 1e9
        ):
            lake.filesystem.delete_file(info.path)
            removed.append(lake.relative(info.path))
    directories = {f.directory for f in _data_files(lake, table) if f.is_compacted}
    for directory in sorted(directories):
        removed.extend(_finish_interrupted_compactions(lake, table, directory))
    return removed


def read_compaction_record(root: str | os.PathLike[str] | LakeRoot, lake_file: LakeFile) -> LakeFile:
    """The file with `replaces`/`leaves` filled from its parquet footer (only compacted files carry them)."""
    return _with_compaction_record(resolve_root(root), lake_file)


# --- writing ------------------------------------------------------------------------------------------------


def _write_atomically(
    lake: LakeRoot, table_name: str, directory: str, rows: pa.Table, prefix: str
) -> LakeFile:
    """Serialize, name by content, and put the file whole (`LakeRoot.put`: rename locally, one PUT on an
    object store). The name is the hash of the bytes, so the key is known before anything is stored."""
    sink = pa.BufferOutputStream()
    pq.write_table(rows, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    content = sink.getvalue().to_pybytes()
    content_id = hashlib.sha256(content).hexdigest()[:32]
    final = f"{directory}/{prefix}{content_id}{SUFFIX}"
    # Exclusive: when the same bytes are already published (an identical batch, a retry, another worker)
    # they are kept. On an object store that is one conditional PUT (If-None-Match: *), no HEAD first.
    journal.record(lake, final)  # before the file: every file a listing can see has its marker
    lake.put(final, content, exclusive=True)
    return LakeFile(table=table_name, path=final, size_bytes=len(content), rows=rows.num_rows)


def _split_by_partition(
    table: pa.Table, columns: tuple[str, ...]
) -> Iterable[tuple[dict[str, Any], pa.Table]]:
    if not columns:
        yield {}, table
        return
    combinations = table.select(list(columns)).group_by(list(columns)).aggregate([]).to_pylist()
    for values in combinations:
        mask = None
        for column, value in values.items():
            if value is None:
                condition = pc.is_null(table[column])
            else:
                condition = pc.fill_null(
                    pc.equal(table[column], pa.scalar(value, table.schema.field(column).type)), False
                )
            mask = condition if mask is None else pc.and_(mask, condition)
        yield values, table.filter(mask)


def _ingest_day(ingest_date: date | str) -> str:
    if isinstance(ingest_date, datetime):
        if ingest_date.tzinfo is None:
            raise ValueError("ingest_date must be a date or an aware datetime")
        return ingest_date.astimezone(UTC).date().isoformat()
    if isinstance(ingest_date, date):
        return ingest_date.isoformat()
    return date.fromisoformat(ingest_date).isoformat()


def _partition_from_mapping(spec: TableSpec, partition: Mapping[str, Any]) -> str:
    if "ingest_date" not in partition:
        raise KeyError("a partition mapping needs 'ingest_date'")
    return partition_dir(spec, partition, partition["ingest_date"])


def _schema_difference(spec: TableSpec, actual: pa.Schema) -> str:
    expected = {field.name: field for field in spec.schema}
    found = {field.name: field for field in actual}
    problems = [f"missing column {name!r}" for name in expected if name not in found]
    problems += [f"undeclared column {name!r}" for name in found if name not in expected]
    problems += [
        f"column {name!r} is {found[name].type}{'' if found[name].nullable else ' not null'}, "
        f"declared {field.type}{'' if field.nullable else ' not null'}"
        for name, field in expected.items()
        if name in found and not found[name].equals(field)
    ]
    if not problems and list(expected) != list(found):
        problems.append(f"columns in order {list(found)}, declared {list(expected)}")
    return f"batch for table {spec.name!r} does not match its declared schema: " + "; ".join(problems)


# --- reading ------------------------------------------------------------------------------------------------


def _walk(lake: LakeRoot, table: str) -> list[pafs.FileInfo]:
    return lake.walk(f"{LAKE_DIR}/{table}")


def _data_files(lake: LakeRoot, table: str) -> list[LakeFile]:
    return _lake_files(lake, table, _walk(lake, table))


def _lake_files(lake: LakeRoot, table: str, infos: Iterable[pafs.FileInfo]) -> list[LakeFile]:
    files = [
        LakeFile(table=table, path=lake.relative(info.path), size_bytes=info.size or 0)
        for info in infos
        if info.base_name.endswith(SUFFIX) and info.base_name.startswith((PART_PREFIX, COMPACT_PREFIX))
    ]
    return sorted(files, key=lambda lake_file: lake_file.path)


def _with_compaction_record(lake: LakeRoot, lake_file: LakeFile) -> LakeFile:
    if not lake_file.is_compacted:
        return lake_file
    metadata = pq.read_metadata(lake.full(lake_file.path), filesystem=lake.filesystem)
    record = metadata.metadata or {}
    return LakeFile(
        table=lake_file.table,
        path=lake_file.path,
        size_bytes=lake_file.size_bytes,
        rows=metadata.num_rows,
        replaces=frozenset(json.loads(record.get(COMPACTED_FROM_KEY, b"[]"))),
        leaves=frozenset(json.loads(record.get(LEAVES_KEY, b"[]"))),
    )


def _finish_interrupted_compactions(lake: LakeRoot, table: str, directory: str) -> list[str]:
    present = {f.name: f for f in _data_files(lake, table) if f.directory == directory}
    removed = []
    for lake_file in present.values():
        if not lake_file.is_compacted:
            continue
        for name in _with_compaction_record(lake, lake_file).replaces:
            if name in present and name != lake_file.name and lake.exists(present[name].path):
                lake.delete(present[name].path)
                removed.append(present[name].path)
    return removed


def _read(lake: LakeRoot, lake_file: LakeFile) -> pa.Table:
    table = pq.read_table(lake.full(lake_file.path), filesystem=lake.filesystem)
    return table.replace_schema_metadata(None)


def _conform(table: pa.Table, spec: TableSpec) -> pa.Table:
    """A file written under an older declaration (fewer columns) in the current schema, new columns null."""
    undeclared = set(table.column_names) - set(spec.schema.names)
    if undeclared:
        raise LakeSchemaError(f"lake file of {spec.name!r} has undeclared columns {sorted(undeclared)}")
    columns = [
        table[field.name].cast(field.type)
        if field.name in table.column_names
        else pa.nulls(len(table), field.type)
        for field in spec.schema
    ]
    return pa.Table.from_arrays(columns, schema=spec.schema)


def _content_id_of(name: str) -> str:
    stem = name.removesuffix(SUFFIX)
    for prefix in (PART_PREFIX, COMPACT_PREFIX):
        if stem.startswith(prefix):
            return stem[len(prefix) :]
    return stem
