"""Where kitsync's shared files live (a local directory or `s3://bucket/prefix`), and how they are written.

Every durable file kitsync shares between runs and machines (lake parquet, stored documents, webhook events,
backfill ledgers) is written through `Store.put`: the whole object appears at once or not at all.

- Local disk: the bytes go to an owner-only temporary name in the target directory, are fsynced, then renamed
  into place (or hard-linked, for an exclusive put: the link fails if the name exists, so claiming a name and
  making its content durable are one step), and the directory is fsynced.
- Object storage has no rename, but one PUT is all-or-nothing: the object is written once under its final key
  (content-addressed for lake data, so a retried write lands on the same key), and an exclusive put is a
  conditional PUT (`If-None-Match: *`) that the store refuses when the key exists.

S3-compatible stores are configured by the standard variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_ENDPOINT_URL`, `AWS_REGION`): reads and listings go through pyarrow's S3 filesystem, puts through s3fs
(botocore), whose conditional PUT pyarrow lacks. s3fs's listing cache is off: another machine's writes must be
seen by the next listing.
"""

from __future__ import annotations

import functools
import os
import posixpath
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from warehouse.crash import crash_hook

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700
TEMP_PREFIX = ".tmp-"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a directory's entries (a rename, a link, a new file) durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """Create `path` with every missing level owner-only; levels someone else made are left alone.

    Not `makedirs(mode=...)`: it gives only the last level that mode, the parents it creates get the umask's
    (a data directory created that way is readable by everyone)."""
    missing = []
    current = os.path.abspath(os.fspath(path))
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, OWNER_ONLY_DIR)
        except FileExistsError:
            continue
        os.chmod(directory, OWNER_ONLY_DIR)  # mkdir's mode passes through the umask


def make_private_dirs(base: str, relative: str) -> None:
    """Create `base/relative`, each missing level owner-only; levels someone else made are left alone."""
    make_private_dir(posixpath.join(base, relative) if relative else base)


def write_synced(path: str | os.PathLike[str], content: bytes) -> None:
    """Create `path` (owner-only; it must not exist) holding `content`, fsynced: the first half of any
    durable local write, before the rename or link that publishes it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace_durably(path: str | os.PathLike[str], content: bytes) -> None:
    """Replace `path` by `content` so a reader sees the old file or the new one, never half of one, and the
    new one survives a power cut: a synced temporary file beside it, a rename, the directory synced."""
    final = os.fspath(path)
    directory = os.path.dirname(final) or "."
    make_private_dir(directory)
    temp = os.path.join(directory, f".{os.path.basename(final)}.tmp-{uuid.uuid4().hex}")
    try:
        write_synced(temp, content)
        os.replace(temp, final)
    finally:
        _unlink_quietly(temp)
    fsync_dir(directory)


@dataclass(frozen=True)
class LakeRoot:
    """A resolved store root: the pyarrow filesystem, the base path every stored path is relative to, and
    (object stores) the fsspec filesystem that makes conditional puts."""

    filesystem: pafs.FileSystem
    base: str
    object_store: Any = None

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def full(self, relative: str) -> str:
        return posixpath.join(self.base, relative) if relative else self.base

    def put(self, relative: str, content: bytes, *, exclusive: bool = False) -> bool:
        """Write `content` at `relative`, all or nothing; False when `exclusive` and the name exists."""
        if self.is_local:
            return _put_local(self, relative, content, exclusive=exclusive)
        return _put_object(self, relative, content, exclusive=exclusive)

    def touch(self, relative: str) -> None:
        """Create an empty marker at `relative`, durably (an existing one is left as it is).

        No crash hooks: the lake's crash points count data files, and a marker is put before its data file,
        so a crash at a data write already covers "a marker without its file"."""
        path = self.full(relative)
        if self.is_local:
            directory = posixpath.dirname(relative)
            new_directory = not os.path.isdir(self.full(directory))
            self.make_dirs(directory)
            if new_directory:  # its entry in the parent must survive a power cut too
                fsync_dir(self.full(posixpath.dirname(directory)))
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, OWNER_ONLY_FILE))
            fsync_dir(self.full(directory))
        elif self.object_store is not None:
            self.object_store.pipe_file(path, b"")
        else:
            with self.filesystem.open_output_stream(path) as stream:
                stream.write(b"")

    def list_after(self, relative: str, start_after: str) -> list[str]:
        """The files below `relative` whose relative names sort after `start_after`, in order.

        On an object store this is `ListObjectsV2` with `StartAfter`: the store skips the names before it, so
        the cost follows the names returned (1,000 a request), not all the names under the prefix. pyarrow's
        S3 filesystem has no such listing; s3fs's client makes the call. Elsewhere every name is walked."""
        if self.object_store is None:
            return sorted(
                name
                for name in (self.relative(info.path) for info in self.walk(relative))
                if name > start_after
            )
        bucket, _, prefix = self.full(relative).partition("/")
        base = self.base.partition("/")[2]
        skip = len(base) + 1 if base else 0
        request: dict[str, Any] = {
            "Bucket": bucket,
            "Prefix": prefix.rstrip("/") + "/",
            "StartAfter": self.full(start_after).partition("/")[2],
        }
        names = []
        while True:
            page = self.object_store.call_s3("list_objects_v2", **request)
            names += [item["Key"][skip:] for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return names
            request["ContinuationToken"] = page["NextContinuationToken"]

    def read(self, relative: str) -> bytes | None:
        """The stored bytes, or None when nothing is stored at `relative`."""
        try:
            with self.filesystem.open_input_stream(self.full(relative)) as stream:
                return bytes(stream.read())
        except FileNotFoundError:
            return None

    def exists(self, relative: str) -> bool:
        return self.filesystem.get_file_info(self.full(relative)).type == pafs.FileType.File

    def delete(self, relative: str) -> bool:
        """Delete one stored file; False when it was not there."""
        try:
            self.filesystem.delete_file(self.full(relative))
        except FileNotFoundError:
            return False
        return True

    def walk(self, relative: str) -> list[pafs.FileInfo]:
        """Every file below `relative` (none when it does not exist)."""
        selector = pafs.FileSelector(self.full(relative), recursive=True, allow_not_found=True)
        return [info for info in self.filesystem.get_file_info(selector) if info.type == pafs.FileType.File]

    def relative(self, full_path: str) -> str:
        base = self.base.rstrip("/") + "/"
        if not full_path.startswith(base):
            raise ValueError(f"{full_path} is outside the root {self.base}")
        return full_path[len(base) :]

    def make_dirs(self, directory: str) -> None:
        """Local disk: create `directory` owner-only. Object stores have no directories to make."""
        if self.is_local:
            make_private_dirs(self.base, directory)


def resolve_root(root: str | os.PathLike[str] | LakeRoot) -> LakeRoot:
    """Local paths (absolute or relative), `file://` and `s3://bucket/prefix` URIs name a root alike."""
    if isinstance(root, LakeRoot):
        return root
    text = os.fspath(root)
    if text.startswith("s3://"):
        return _object_root(text.rstrip("/"))
    if "://" not in text:
        text = os.path.abspath(text)
    filesystem, base = pafs.FileSystem.from_uri(text)
    return LakeRoot(filesystem, base.rstrip("/") or "/")


@functools.cache
def _object_root(uri: str) -> LakeRoot:
    """One client per URI and process: s3fs sessions are costly to build, cheap to reuse."""
    import s3fs  # only a lake on object storage needs it

    options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    client: dict[str, Any] = {}
    if endpoint:
        client["endpoint_url"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        client["region_name"] = region
    store = s3fs.S3FileSystem(client_kwargs=client, **options)
    # Reads, listings and deletes through pyarrow's own S3 client (C++, ~2.5x faster loads than pyarrow over
    # s3fs on moto); puts through s3fs, which has the conditional PUT pyarrow's client lacks.
    filesystem = pafs.S3FileSystem(
        endpoint_override=endpoint,
        region=region or "us-east-1",
        check_directory_existence_before_creation=False,
    )
    return LakeRoot(filesystem, uri.removeprefix("s3://"), object_store=store)


# Crash injection (tests only): bound once, so an unarmed process pays nothing per write.
_CRASH_MID_WRITE: Callable[[], None] | None = crash_hook("lake-write")
_CRASH_PUBLISHED: Callable[[], None] | None = crash_hook("lake-renamed")


def _put_local(root: LakeRoot, relative: str, content: bytes, *, exclusive: bool) -> bool:
    directory = posixpath.dirname(relative)
    root.make_dirs(directory)
    final = root.full(relative)
    if exclusive and os.path.exists(final):
        return False
    temp = root.full(posixpath.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}"))
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            half = len(content) // 2
            handle.write(content[:half])
            if _CRASH_MID_WRITE is not None:
                handle.flush()
                _CRASH_MID_WRITE()  # a temporary file holds part of the content
            handle.write(content[half:])
            handle.flush()
            os.fsync(handle.fileno())
        published = _publish_local(temp, final, exclusive=exclusive)
    finally:
        # After a rename the temporary name is gone, after a link it is a second name, after a failure debris.
        _unlink_quietly(temp)
    if published:
        fsync_dir(os.path.dirname(final))
        if _CRASH_PUBLISHED is not None:
            _CRASH_PUBLISHED()  # this file is published, a batch's next ones are not yet
    return published


def _publish_local(temp: str, final: str, *, exclusive: bool) -> bool:
    """The commit point on local disk: before it the content is invisible, after it complete."""
    if not exclusive:
        os.replace(temp, final)
        return True
    try:
        os.link(temp, final)  # fails if the name exists: the claim is atomic, and only of complete content
    except FileExistsError:
        return False
    return True


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


def _put_object(root: LakeRoot, relative: str, content: bytes, *, exclusive: bool) -> bool:
    if _CRASH_MID_WRITE is not None:
        _CRASH_MID_WRITE()  # the bytes are built, nothing is stored: an object store keeps no partial PUT
    path = root.full(relative)
    if root.object_store is None:  # a pyarrow filesystem given as is (tests' in-memory one): no conditions
        if exclusive and root.exists(relative):
            return False
        with root.filesystem.open_output_stream(path) as stream:
            stream.write(content)
    elif exclusive:
        try:
            root.object_store.pipe_file(path, content, mode="create")  # PUT with If-None-Match: *
        except FileExistsError:
            return False
    else:
        root.object_store.pipe_file(path, content)
    if _CRASH_PUBLISHED is not None:
        _CRASH_PUBLISHED()
    return True
