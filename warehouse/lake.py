"""The parquet lake: atomic, content-addressed, hive-partitioned files under `{root}/lake/{table}/`.

Layout: `{root}/lake/{table}/{col}={value}/.../ingest_date=YYYY-MM-DD/part-<id>.parquet`. Every file holds all
of its table's columns (partition columns included), so a file means the same thing wherever it is copied;
the directories are there for pruning and for compaction. `<id>` is a hash of the file's bytes, so re-writing
an identical batch (a retried flow, a crash before the caller recorded success) lands on the same name and
can never duplicate rows. Files are written under a temporary dot-name in their final directory and renamed
into place: readers and the loader only ever see `part-*` / `compact-*` names, so a crash leaves at most a
temporary file that `remove_debris` deletes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from transform.schemas import TableSpec
from warehouse.crash import crash_point
from warehouse.duck import OWNER_ONLY_DIR, OWNER_ONLY_FILE

LAKE_DIR = "lake"
PART_PREFIX = "part-"
COMPACT_PREFIX = "compact-"
TEMP_PREFIX = ".tmp-"
SUFFIX = ".parquet"
ROW_GROUP_ROWS = 1_000_000
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
COMPACTED_FROM_KEY = b"kitsync.compacted_from"
LEAVES_KEY = b"kitsync.leaves"


class LakeSchemaError(ValueError):
    """A batch does not have its table's declared schema: writing it would poison every later load."""


@dataclass(frozen=True)
class LakeRoot:
    """A resolved lake root: the filesystem and the base path every lake path is relative to."""

    filesystem: pafs.FileSystem
    base: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def full(self, relative: str) -> str:
        return posixpath.join(self.base, relative) if relative else self.base


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


def resolve_root(root: str | os.PathLike[str] | LakeRoot) -> LakeRoot:
    """Local paths (absolute or relative) and URIs (`file://`, `s3://...`) name a lake root alike."""
    if isinstance(root, LakeRoot):
        return root
    text = os.fspath(root)
    if "://" not in text:
        text = os.path.abspath(text)
    filesystem, base = pafs.FileSystem.from_uri(text)
    return LakeRoot(filesystem, base.rstrip("/") or "/")


def partition_dir(spec: TableSpec, values: Mapping[str, Any], ingest_date: date | str) -> str:
    """The lake-relative directory of one partition: partition columns in declared order, then ingest_date."""
    parts = [LAKE_DIR, spec.name]
    for column in spec.partition_by:
        if column not in values:
            raise KeyError(f"partition of {spec.name} needs a value for {column!r}")
        parts.append(f"{column}={encode_partition_value(values[column])}")
    parts.append(f"ingest_date={_ingest_day(ingest_date)}")
    return "/".join(parts)


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
    files = _data_files(lake, table)
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
        lake.filesystem.delete_file(lake.full(lake_file.path))
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
            removed.append(_relative(lake, info.path))
    directories = {f.directory for f in _data_files(lake, table) if f.is_compacted}
    for directory in sorted(directories):
        removed.extend(_finish_interrupted_compactions(lake, table, directory))
    return removed


def read_compaction_record(root: str | os.PathLike[str] | LakeRoot, lake_file: LakeFile) -> LakeFile:
    """The file with `replaces`/`leaves` filled from its parquet footer (only compacted files carry them)."""
    return _with_compaction_record(resolve_root(root), lake_file)


# --- writing ------------------------------------------------------------------------------------------------


class _HashingSink(io.RawIOBase):
    """Passes the parquet bytes through to the real stream while hashing them: the file's name is its hash."""

    def __init__(self, raw: BinaryIO | pa.NativeFile) -> None:
        super().__init__()
        self._raw = raw
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self._raw.write(view)
        crash_point("lake-write")  # mid-file: a temporary file holds part of a parquet file
        return view.nbytes


def _write_atomically(
    lake: LakeRoot, table_name: str, directory: str, rows: pa.Table, prefix: str
) -> LakeFile:
    make_dirs(lake, directory)
    temp = f"{directory}/{TEMP_PREFIX}{uuid.uuid4().hex}{SUFFIX}"
    try:
        content_id = _write_parquet(lake, temp, rows)
    except BaseException:
        _delete_quietly(lake, temp)
        raise
    final = f"{directory}/{prefix}{content_id}{SUFFIX}"
    if _exists(lake, final):
        # The same bytes are already published (an identical batch, or a retry after a crash): keep that file.
        lake.filesystem.delete_file(lake.full(temp))
    else:
        _rename(lake, temp, final)
        crash_point("lake-renamed")  # a batch's file is published, its siblings are not yet
    size = lake.filesystem.get_file_info(lake.full(final)).size
    return LakeFile(table=table_name, path=final, size_bytes=size, rows=rows.num_rows)


def _write_parquet(lake: LakeRoot, relative: str, rows: pa.Table) -> str:
    options: dict[str, Any] = {"compression": "zstd", "row_group_size": ROW_GROUP_ROWS}
    if lake.is_local:
        # Created owner-only from the first byte; fsync so the rename never publishes a file still in cache.
        descriptor = os.open(lake.full(relative), os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE)
        with os.fdopen(descriptor, "wb") as handle:
            sink = _HashingSink(handle)
            pq.write_table(rows, sink, **options)
            handle.flush()
            os.fsync(handle.fileno())
    else:
        with lake.filesystem.open_output_stream(lake.full(relative)) as stream:
            sink = _HashingSink(stream)
            pq.write_table(rows, sink, **options)
    return sink.digest.hexdigest()[:32]


def _rename(lake: LakeRoot, source: str, target: str) -> None:
    """The commit point of a lake write: before it the file is invisible, after it complete."""
    lake.filesystem.move(lake.full(source), lake.full(target))
    if lake.is_local:
        fsync_dir(lake.full(posixpath.dirname(target)))


def make_dirs(lake: LakeRoot, directory: str) -> None:
    if not lake.is_local:
        lake.filesystem.create_dir(lake.full(directory), recursive=True)
        return
    # Create each missing level owner-only; directories someone else made (the root itself) are left alone.
    path = lake.base
    os.makedirs(path, mode=OWNER_ONLY_DIR, exist_ok=True)
    for part in directory.split("/"):
        path = posixpath.join(path, part)
        try:
            os.mkdir(path, OWNER_ONLY_DIR)
        except FileExistsError:
            continue
        os.chmod(path, OWNER_ONLY_DIR)


def fsync_dir(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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


def encode_partition_value(value: Any) -> str:
    if value is None:
        return NULL_PARTITION
    text = value.isoformat() if isinstance(value, date) else str(value)
    return quote(text, safe="")


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
    selector = pafs.FileSelector(lake.full(f"{LAKE_DIR}/{table}"), recursive=True, allow_not_found=True)
    return [info for info in lake.filesystem.get_file_info(selector) if info.type == pafs.FileType.File]


def _data_files(lake: LakeRoot, table: str) -> list[LakeFile]:
    files = [
        LakeFile(table=table, path=_relative(lake, info.path), size_bytes=info.size or 0)
        for info in _walk(lake, table)
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
            if name in present and name != lake_file.name and _exists(lake, present[name].path):
                lake.filesystem.delete_file(lake.full(present[name].path))
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


def _exists(lake: LakeRoot, relative: str) -> bool:
    return lake.filesystem.get_file_info(lake.full(relative)).type == pafs.FileType.File


def _delete_quietly(lake: LakeRoot, relative: str) -> None:
    try:
        lake.filesystem.delete_file(lake.full(relative))
    except (FileNotFoundError, OSError):
        return


def _relative(lake: LakeRoot, full_path: str) -> str:
    base = lake.base.rstrip("/") + "/"
    if not full_path.startswith(base):
        raise ValueError(f"{full_path} is outside the lake root {lake.base}")
    return full_path[len(base) :]


def _content_id_of(name: str) -> str:
    stem = name.removesuffix(SUFFIX)
    for prefix in (PART_PREFIX, COMPACT_PREFIX):
        if stem.startswith(prefix):
            return stem[len(prefix) :]
    return stem
