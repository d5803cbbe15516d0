"""The lake's journal: which lake files were written when, so a load lists what changed, not the whole lake.

Every lake file's write first puts an empty marker under `{root}/lake-journal/{YYYY-MM-DD}/`, named by the
writer's clock when the write began and by the file's lake-relative path:
`lake-journal/2026-11-30/021530.123456_lake%2Fstatus_events%2F...%2Fpart-<id>.parquet`. The names sort by
time, so a load finds the files written since it last looked by listing only the journal's tail: on object
storage one `ListObjectsV2` with `StartAfter` (1,000 names a request), on local disk the day directories from
that day on. Its cost follows what was written since the last load, whatever the lake's size.

Why no file can be missed (the argument the loader's watermark rests on):
- The marker is put BEFORE the data file, and a data file is complete the moment it appears (`LakeRoot.put`),
  so every lake file that any listing can see has its marker already: an old partition rewritten by
  compaction, a backfill, a file landed by another worker, all write markers like any other write.
- A load notes the time T (its own clock) just before it lists, and the next load lists markers from
  T - overlap on. A marker the first load did not see, or whose data file was not there yet (a write in
  flight), was stamped at most (the writer's put time + clock skew between machines) before T, so the next
  load lists it as long as `overlap` exceeds that: the default, one hour, is far beyond a PUT's retries and
  any NTP-kept clock. A marker stamped in the future (a clock ahead) stays in every window until it is past.
- A marker whose file never appears (the write crashed, or it is still in flight) is listed and skipped: the
  data file itself, found by listing its directory, is what a load takes in.
- A warehouse that has no watermark yet (a first load, a warehouse from before the journal, a new machine)
  lists the whole lake once; `load(..., rescan=True)` does the same on demand (files copied into the lake by
  hand carry no markers).
The markers are tiny and never read, only listed; `prune` deletes the days that no load will list again.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote, unquote

import pyarrow.fs as pafs

from warehouse.files import LakeRoot

JOURNAL_DIR = "lake-journal"
DEFAULT_OVERLAP = timedelta(hours=1)
_STAMP = "%H%M%S.%f"


@dataclass(frozen=True, order=True)
class JournalEntry:
    """One marker: when a write of `path` (lake-relative) began, by the writer's clock."""

    written_at: datetime
    path: str

    @property
    def table(self) -> str:
        """The lake table the file belongs to (`lake/{table}/...`)."""
        parts = self.path.split("/")
        return parts[1] if len(parts) > 2 else ""

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path)


def record(lake: LakeRoot, path: str, *, now: datetime | None = None) -> None:
    """Put the marker of a lake file about to be written at `path` (call BEFORE the data file's put)."""
    written_at = (now or datetime.now(UTC)).astimezone(UTC)
    lake.touch(_marker(written_at, path))


def entries_since(lake: LakeRoot, since: datetime) -> list[JournalEntry]:
    """Every marker stamped at or after `since`, oldest first (requests: the markers listed / 1,000)."""
    since = since.astimezone(UTC)
    start = f"{JOURNAL_DIR}/{since:%Y-%m-%d}/{since.strftime(_STAMP)}"
    if lake.object_store is not None:
        names = lake.list_after(JOURNAL_DIR, start)
    else:
        names = [
            name
            for day in _days(lake)
            if day >= since.date()
            for name in _names_in(lake, f"{JOURNAL_DIR}/{day.isoformat()}")
        ]
        names = [name for name in names if name > start]
    return sorted(entry for entry in map(_parse, names) if entry is not None)


def prune(lake: LakeRoot, before: date) -> int:
    """Delete the markers of days before `before` (keep every day a load's window may still list: more than
    the overlap before the oldest warehouse's last load). Returns the markers deleted."""
    deleted = 0
    for day in _days(lake):
        if day < before:
            for name in _names_in(lake, f"{JOURNAL_DIR}/{day.isoformat()}"):
                deleted += lake.delete(name)
    return deleted


# Ends every marker's name: a marker is no parquet file, and nothing that globs the data directory for
# `*.parquet` (a reader, a PII scan) may take it for one.
_SUFFIX = ".written"


def _marker(written_at: datetime, path: str) -> str:
    stamp = written_at.strftime(_STAMP)
    return f"{JOURNAL_DIR}/{written_at:%Y-%m-%d}/{stamp}_{quote(path, safe='')}{_SUFFIX}"


def _parse(name: str) -> JournalEntry | None:
    """The entry a marker's lake-relative name stands for (None: not a marker, e.g. a temporary file)."""
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != JOURNAL_DIR:
        return None
    stamp, separator, quoted = parts[2].partition("_")
    if not separator or not quoted.endswith(_SUFFIX):
        return None
    quoted = quoted.removesuffix(_SUFFIX)
    try:
        written_at = datetime.strptime(f"{parts[1]} {stamp}", f"%Y-%m-%d {_STAMP}").replace(tzinfo=UTC)
    except ValueError:
        return None
    return JournalEntry(written_at=written_at, path=unquote(quoted))


def _days(lake: LakeRoot) -> list[date]:
    selector = pafs.FileSelector(lake.full(JOURNAL_DIR), recursive=False, allow_not_found=True)
    days = []
    for info in lake.filesystem.get_file_info(selector):
        try:
            days.append(date.fromisoformat(info.base_name))
        except ValueError:
            continue
    return sorted(days)


def _names_in(lake: LakeRoot, directory: str) -> Iterable[str]:
    return (lake.relative(info.path) for info in lake.walk(directory))
