"""One writer, many readers: the loader's private DuckDB file, its lock, and the snapshot it publishes.

DuckDB lets one process open a file read-write and then no other process may open it at all, so analysts
never touch the file the loader writes. The loader works on `.{name}-writer.duckdb` beside the published
`{name}.duckdb`, and after each committed load publishes a copy: checkpoint, close, copy to a temporary file,
fsync, rename over the published file. A rename is atomic, so a reader opens either the old snapshot or the
new one, never a half-written file, and a reader that opened the old file keeps reading it (its inode lives
on until it closes). The price is one file copy per load that changed something (~1 s per GB).

A warehouse path ending in `.ducklake` is the scale-out warehouse: the same files, lock and publish step, but
the copied file is a DuckLake catalog (metadata only: which parquet file holds which rows, snapshot by
snapshot) and the data are immutable parquet files in `{name}.ducklake.files/`, written once by the load
that added them and shared by the writer's and the published catalog. Publishing then copies kilobytes to
a few megabytes whatever the warehouse's size, and a load writes only the files of what it changed
(bench/scale.py has the figures).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from warehouse.crash import crash_point
from warehouse.duck import OWNER_ONLY_FILE, ensure_private_dir, is_ducklake, restrict_to_owner
from warehouse.files import fsync_dir

_COPY_CHUNK = 16 * 1024 * 1024


WAREHOUSE_FILES = {"embedded": "kitsync.duckdb", "ducklake": "kitsync.ducklake"}


def warehouse_file(directory: str | os.PathLike[str], kind: str = "embedded") -> Path:
    """The published warehouse's path in `directory` for a kind: the embedded single DuckDB file (the
    default: one file an analyst opens with plain duckdb) or the DuckLake catalog (loads that cost what
    they change, readers on other machines)."""
    if kind not in WAREHOUSE_FILES:
        raise ValueError(f"unknown warehouse kind {kind!r}: one of {', '.join(WAREHOUSE_FILES)}")
    return Path(directory) / WAREHOUSE_FILES[kind]


class WarehouseBusy(TimeoutError):  # noqa: N818 - the name flows and the CLI catch
    """Another load holds the warehouse lock for longer than this one was willing to wait."""


@dataclass(frozen=True)
class WarehousePaths:
    """Where a warehouse's files live, all derived from the published file's path."""

    published: Path

    @classmethod
    def of(cls, db_path: str | os.PathLike[str]) -> WarehousePaths:
        return cls(Path(db_path).absolute())

    @property
    def directory(self) -> Path:
        return self.published.parent

    @property
    def writer(self) -> Path:
        return self.directory / f".{self.published.stem}-writer{self.published.suffix}"

    @property
    def is_lake(self) -> bool:
        """A DuckLake catalog (data as parquet beside it) rather than the embedded single file."""
        return is_ducklake(self.published)

    @property
    def data_dir(self) -> Path:
        """Where a DuckLake warehouse's parquet files live (immutable: loads only add files)."""
        return self.directory / f"{self.published.name}.files"

    @property
    def lock(self) -> Path:
        return self.directory / ".lock"

    @property
    def marker(self) -> Path:
        """Size and mtime of the writer file as last published: a load that committed but crashed before
        publishing leaves them different, so the next load publishes even if it has nothing new to load."""
        return self.directory / f".{self.published.stem}-published"


class RunInProgress(RuntimeError):  # noqa: N818 - reads as the state it reports, like WarehouseBusy
    """Another run of the same sync holds its lock: this one has nothing to add and steps aside."""


@contextmanager
def writer_lock(path: Path, *, timeout: float) -> Iterator[None]:
    """Hold the warehouse's writer lock (an flock, released by the kernel even if the process dies)."""
    with _flock(
        path,
        timeout=timeout,
        busy=lambda: WarehouseBusy(
            f"another load holds {path}; gave up after {timeout:g} s (loads run one at a time)"
        ),
    ):
        yield


@contextmanager
def run_lock(path: Path, *, what: str) -> Iterator[None]:
    """Hold a run's lock without waiting: a second `what` started meanwhile raises RunInProgress at once.

    Polling the same kits twice at once would only double the partner traffic, so the later run exits.
    """
    with _flock(
        path,
        timeout=0.0,
        busy=lambda: RunInProgress(
            f"another {what} is running (it holds {path}); this run exits without doing anything"
        ),
    ):
        yield


@contextmanager
def _flock(path: Path, *, timeout: float, busy: Callable[[], Exception]) -> Iterator[None]:
    ensure_private_dir(path.parent)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, OWNER_ONLY_FILE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy() from None
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def seed_writer(paths: WarehousePaths) -> None:
    """Start the writer from the published snapshot when its private file is gone (new machine, cleanup)."""
    if not paths.writer.exists() and paths.published.exists():
        _copy_durably(paths.published, paths.writer)


def needs_publish(paths: WarehousePaths) -> bool:
    if not paths.published.exists() or not paths.marker.exists():
        return True
    return paths.marker.read_text() != _writer_state(paths)


def publish_snapshot(paths: WarehousePaths) -> None:
    """Atomically replace the published file by a copy of the (closed, checkpointed) writer file."""
    if Path(f"{paths.writer}.wal").exists():
        raise RuntimeError(f"{paths.writer} still has a write-ahead log: close the writer before publishing")
    temporary = paths.directory / f".{paths.published.name}.tmp-{uuid.uuid4().hex}"
    try:
        _copy_durably(paths.writer, temporary)
        # A WAL beside the published name would be replayed into the new file by the next reader: the
        # published file is read-only by contract, so any WAL there is stale.
        Path(f"{paths.published}.wal").unlink(missing_ok=True)
        crash_point("publish-rename")  # the new snapshot is copied, the old one still published
        os.replace(temporary, paths.published)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_dir(paths.directory)
    descriptor = os.open(paths.marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY_FILE)
    with os.fdopen(descriptor, "w") as marker:
        marker.write(_writer_state(paths))


def _writer_state(paths: WarehousePaths) -> str:
    status = paths.writer.stat()
    return f"{status.st_size} {status.st_mtime_ns}"


def _copy_durably(source: Path, target: Path) -> None:
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY_FILE)
    with source.open("rb") as reader, os.fdopen(descriptor, "wb") as writer:
        shutil.copyfileobj(reader, writer, _COPY_CHUNK)
        writer.flush()
        os.fsync(writer.fileno())
    restrict_to_owner(target)
