"""The durable landing store for partner webhook events: one fsynced JSON file per event, deduplicated on id.

Layout under `{root}/landing/webhooks/{provider}/`:
- `tmp/`: files being written; a crash leaves them here, never half-written under a real name.
- `ids/{event_id}`: the dedupe index. It is a hard link to the event's file, made with `os.link` (which fails
  if the name exists), so claiming an id and making its content durable are one atomic step: an id is never
  claimed without its content, and two concurrent deliveries of one event land it exactly once.
- `{received-date}/{event_id}.json`: landed and not yet consumed (what `pending` yields).
- `consumed/{received-date}/{event_id}.json`: handed to a sync that marked them consumed.

The receiver answers 2xx only after `land` returned, so whatever the store lost in a crash was never
acknowledged and the partner delivers it again.

A lake on object storage (`s3://...`) lands events there instead (`ObjectLanding`, chosen by `open_landing`),
so a receiver on one machine and syncs on others share one landing. An object store has no links or renames,
but a conditional PUT (`If-None-Match: *`) is the same atomic claim-with-content: `events/{event_id}.json` is
the event and its dedupe claim at once, and `consumed/{event_id}` marks it handed to a sync.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from transform.events import SAFE_EVENT_ID as _SAFE_NAME
from warehouse.files import LakeRoot, fsync_dir, make_private_dirs, resolve_root, write_synced

log = logging.getLogger(__name__)

# Ids and provider names become file names: a strict alphabet keeps a hostile id from walking the tree.
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class LandableEvent(Protocol):
    """What `land` needs of an event: extract's `LandedEvent` fits (warehouse must not import extract)."""

    @property
    def provider(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def body(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LandedEventRecord:
    """An event as read back from the store; `path` is where its file lies now."""

    provider: str
    event_id: str
    kind: str
    received_at: datetime
    body: dict[str, Any]
    path: Path | str  # local: the file; object store: the key under the root


def is_safe_name(name: str) -> bool:
    """Whether `name` can be a provider or event id in the store (receivers reject the others up front)."""
    return bool(_SAFE_NAME.match(name))


class WebhookLanding:
    """Lands webhook events durably and hands them to the next sync at least once."""

    def __init__(self, root: Path, *, stale_after: float = 300.0) -> None:
        # `stale_after`: how old a leftover tmp file must be before `pending` treats it as a crash's remains
        # rather than a landing in progress in another thread or process.
        self.root = Path(root)
        self.base = self.root / "landing" / "webhooks"
        self.stale_after = stale_after

    # --- landing ------------------------------------------------------------------------------------------

    def land(self, event: LandableEvent) -> bool:
        """Write `event` durably; False if this provider already landed its id (nothing is written then).

        Raises (OSError, ValueError) when it could not land: the receiver then answers 503 and nothing is
        claimed, so the partner's retry can land it.
        """
        provider, event_id = _checked(event.provider), _checked(event.event_id)
        if event.received_at.tzinfo is None:
            raise ValueError("received_at must be an aware UTC datetime")
        received_at = event.received_at.astimezone(UTC)
        document = {
            "provider": provider,
            "event_id": event_id,
            "kind": event.kind,
            "received_at": received_at.isoformat(),
            "body": event.body,
        }
        content = json.dumps(document, ensure_ascii=False, allow_nan=False, sort_keys=True).encode()
        marker = self._ids(provider) / event_id
        if marker.exists():
            return False
        tmp = self._dir(provider, "tmp") / f"{event_id}.{uuid.uuid4().hex}.tmp"
        try:
            write_synced(tmp, content)
            os.link(tmp, marker)  # the claim: atomic, and only ever of complete, fsynced content
        except FileExistsError:
            tmp.unlink()
            return False
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # Claimed. If the claim's directory entry cannot be made durable, raise (503, the partner retries and
        # finds a duplicate); the linked tmp file stays for `pending` to file by date either way.
        fsync_dir(marker.parent)
        try:
            self._publish(tmp, provider, event_id, received_at)
        except OSError:
            log.warning("landed %s event %s but could not file it by date yet", provider, event_id)
        return True

    def _publish(self, tmp: Path, provider: str, event_id: str, received_at: datetime) -> None:
        dated = self._dir(provider, received_at.date().isoformat())
        os.replace(tmp, dated / f"{event_id}.json")
        fsync_dir(dated)
        fsync_dir(tmp.parent)

    # --- consuming ----------------------------------------------------------------------------------------

    def pending(self, provider: str) -> Iterator[LandedEventRecord]:
        """Landed events not yet marked consumed, oldest received first."""
        provider_dir = self.base / _checked(provider)
        if not provider_dir.is_dir():
            return
        self._recover(provider)
        files = [
            path
            for day in provider_dir.iterdir()
            if day.is_dir() and _DATE_DIR.match(day.name)
            for path in day.glob("*.json")
        ]
        records = []
        for path in files:
            try:
                records.append((path.stat().st_mtime_ns, _read_record(path)))
            except FileNotFoundError:  # consumed by a concurrent sync between listing and reading
                continue
        records.sort(key=lambda pair: (pair[1].received_at, pair[0], pair[1].event_id))
        for _, record in records:
            yield record

    def mark_consumed(self, provider: str, event_ids: Iterable[str]) -> int:
        """Move these events out of `pending`; unknown or already consumed ids are skipped. Returns moved."""
        provider = _checked(provider)
        moved = 0
        touched: set[Path] = set()
        for event_id in event_ids:
            marker = self._ids(provider) / _checked(event_id)
            try:
                record = _read_record(marker)
            except FileNotFoundError:
                continue
            day = record.received_at.date().isoformat()
            source = self.base / provider / day / f"{event_id}.json"
            target_dir = self._dir(provider, "consumed", day)
            try:
                os.replace(source, target_dir / source.name)
            except FileNotFoundError:
                continue
            touched.update({source.parent, target_dir})
            moved += 1
        for directory in touched:
            fsync_dir(directory)
        return moved

    def is_landed(self, provider: str, event_id: str) -> bool:
        """Whether this provider's event id was ever landed (consumed or not)."""
        return (self._ids(_checked(provider)) / _checked(event_id)).exists()

    def _recover(self, provider: str) -> None:
        """Finish or discard what a crash left in tmp/ (only files older than `stale_after`)."""
        tmp_dir = self.base / provider / "tmp"
        if not tmp_dir.is_dir():
            return
        cutoff = time.time() - self.stale_after
        for tmp in tmp_dir.glob("*.tmp"):
            try:
                status = tmp.stat()
                if status.st_mtime > cutoff:
                    continue
                if status.st_nlink > 1:  # claimed under ids/: landed, only its dated name is missing
                    record = _read_record(tmp)
                    self._publish(tmp, provider, record.event_id, record.received_at)
                else:  # never claimed, so never acknowledged: the partner redelivers it
                    tmp.unlink()
            except FileNotFoundError:
                continue

    # --- paths --------------------------------------------------------------------------------------------

    def _ids(self, provider: str) -> Path:
        return self._dir(provider, "ids")

    def _dir(self, *parts: str) -> Path:
        """`base/parts...`, each directory it creates owner-only."""
        path = self.base.joinpath(*parts)
        if path.is_dir():
            return path
        make_private_dirs(str(self.root), "/".join(("landing", "webhooks", *parts)))
        return path


def _checked(name: str) -> str:
    if not is_safe_name(name):
        raise ValueError(f"not a usable provider or event id: {name[:40]!r}")
    return name


def _read_record(path: Path) -> LandedEventRecord:
    return _record(json.loads(path.read_bytes()), path)


def _record(document: dict[str, Any], path: Path | str) -> LandedEventRecord:
    return LandedEventRecord(
        provider=document["provider"],
        event_id=document["event_id"],
        kind=document["kind"],
        received_at=datetime.fromisoformat(document["received_at"]).astimezone(UTC),
        body=document["body"],
        path=path,
    )


class Landing(Protocol):
    """What the receiver and the syncs use of a landing store, on local disk or object storage."""

    def land(self, event: LandableEvent) -> bool: ...
    def pending(self, provider: str) -> Iterator[LandedEventRecord]: ...
    def mark_consumed(self, provider: str, event_ids: Iterable[str]) -> int: ...
    def is_landed(self, provider: str, event_id: str) -> bool: ...


def open_landing(root: str | os.PathLike[str] | LakeRoot) -> Landing:
    """The landing store under a lake root: files on local disk, objects on an object store."""
    resolved = resolve_root(root)
    if resolved.is_local:
        return WebhookLanding(Path(resolved.base))
    return ObjectLanding(resolved)


class ObjectLanding:
    """Webhook events landed on an object store (see the module docstring for the layout)."""

    def __init__(self, root: LakeRoot) -> None:
        self.root = root
        self.base = "landing/webhooks"

    def land(self, event: LandableEvent) -> bool:
        """Claim and write `event` in one conditional PUT; False if this provider already landed its id."""
        provider, event_id = _checked(event.provider), _checked(event.event_id)
        if event.received_at.tzinfo is None:
            raise ValueError("received_at must be an aware UTC datetime")
        document = {
            "provider": provider,
            "event_id": event_id,
            "kind": event.kind,
            "received_at": event.received_at.astimezone(UTC).isoformat(),
            "body": event.body,
        }
        content = json.dumps(document, ensure_ascii=False, allow_nan=False, sort_keys=True).encode()
        return self.root.put(self._event(provider, event_id), content, exclusive=True)

    def pending(self, provider: str) -> Iterator[LandedEventRecord]:
        """Landed events not yet marked consumed, oldest received first."""
        provider = _checked(provider)
        consumed = {info.base_name for info in self.root.walk(f"{self.base}/{provider}/consumed")}
        records = []
        for info in self.root.walk(f"{self.base}/{provider}/events"):
            event_id = info.base_name.removesuffix(".json")
            if event_id in consumed:
                continue
            key = self.root.relative(info.path)
            content = self.root.read(key)
            if content is not None:
                records.append(_record(json.loads(content), key))
        records.sort(key=lambda record: (record.received_at, record.event_id))
        yield from records

    def mark_consumed(self, provider: str, event_ids: Iterable[str]) -> int:
        """Mark these events handed to a sync; unknown or already consumed ids are skipped. Returns marked."""
        provider = _checked(provider)
        marked = 0
        for event_id in event_ids:
            if not self.root.exists(self._event(provider, _checked(event_id))):
                continue
            marked += self.root.put(f"{self.base}/{provider}/consumed/{event_id}", b"", exclusive=True)
        return marked

    def is_landed(self, provider: str, event_id: str) -> bool:
        return self.root.exists(self._event(_checked(provider), _checked(event_id)))

    def _event(self, provider: str, event_id: str) -> str:
        return f"{self.base}/{provider}/events/{event_id}.json"
