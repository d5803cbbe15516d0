"""DuckDB plumbing shared by the warehouse: identifier quoting, the arrow-to-DuckDB type map, connections."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from warehouse.files import OWNER_ONLY_DIR, OWNER_ONLY_FILE, make_private_dir


def quote_ident(name: str) -> str:
    """The one way an identifier (table, column, view, struct field) enters SQL text.

    Names come from code (table specs, view file names), never from data, but quoting them anyway means a
    column called `order` or `rank` works and nothing in a name can end the identifier early.
    """
    if not name or "\x00" in name:
        raise ValueError(f"not a usable SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A string literal for the few statements DuckDB cannot parameterize (COMMENT ON takes no `?`).

    Only ever used for texts written in code (table descriptions), never for data.
    """
    if "\x00" in text:
        raise ValueError("a NUL byte cannot appear in a SQL literal")
    return "'" + text.replace("'", "''") + "'"


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB column type for an arrow type, as DuckDB itself maps it when it scans arrow data.

    The single place the lake's types meet the warehouse's, and no table of our own: DuckDB's arrow scan
    decides (the same mapping a load's staging scan applies), in DuckDB's own spelling, so the text compares
    equal to what the catalog reports for a held column. Types DuckDB cannot hold raise TypeError.
    """
    return _duckdb_type_text(arrow_type)


@functools.cache
def _duckdb_type_text(arrow_type: pa.DataType) -> str:
    empty = pa.table({"c": pa.array([], type=arrow_type)})
    with _TYPE_LOCK:
        global _type_connection  # noqa: PLW0603 - one in-memory connection answers every type question
        if _type_connection is None:
            _type_connection = duckdb.connect()
        try:
            _type_connection.register("_kitsync_arrow_type", empty)
            try:
                return str(_type_connection.execute("DESCRIBE _kitsync_arrow_type").fetchall()[0][1])
            finally:
                _type_connection.unregister("_kitsync_arrow_type")
        except (duckdb.Error, pa.ArrowException) as error:
            raise TypeError(f"no DuckDB column type for arrow type {arrow_type}: {error}") from error


_TYPE_LOCK = threading.Lock()
_type_connection: duckdb.DuckDBPyConnection | None = None


def scalar(connection: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The single value of a one-row query, with the result drained (DuckDB 2 results hold the connection
    until fully fetched, so a bare fetchone() would block the next statement)."""
    rows = connection.execute(sql, params).fetchall()
    return rows[0][0] if rows else None


def restrict_to_owner(path: Path) -> None:
    """Customer data lives in these files: only the account running kitsync may read them."""
    os.chmod(path, OWNER_ONLY_DIR if path.is_dir() else OWNER_ONLY_FILE)


def ensure_private_dir(path: Path) -> None:
    """`path` and every level of it kitsync creates, owner-only (a first load may create the data dir)."""
    make_private_dir(path)
    restrict_to_owner(path)


LAKE_SUFFIX = ".ducklake"
LAKE_ALIAS = "kitsync"


def is_ducklake(path: str | os.PathLike[str]) -> bool:
    """A warehouse path ending in `.ducklake` names a DuckLake catalog (a small DuckDB file of metadata) whose
    data are parquet files beside it; any other path names the embedded single-file warehouse."""
    return Path(path).suffix == LAKE_SUFFIX


def load_extension(connection: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load a DuckDB extension from the wheel the lock file pins (`duckdb-extension-<name>`), no download.

    Extensions cannot be fetched on these machines or CI, and each wheel ships the binary for exactly one
    DuckDB version (`<package>/extensions/v<version>/<name>.duckdb_extension`). Without the wheel (an
    analyst's own duckdb that ran `INSTALL ducklake`) the usual `LOAD name` is tried.
    """
    package = f"duckdb_extension_{name.replace('-', '_')}"
    with contextlib.suppress(ModuleNotFoundError):
        binary = (
            resources.files(package) / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
        )
        if binary.is_file():
            connection.execute(f"LOAD {quote_literal(str(binary))}")
            return
    connection.execute(f"LOAD {quote_ident(name)}")


def attach_ducklake(
    connection: duckdb.DuckDBPyConnection,
    catalog: str | os.PathLike[str],
    *,
    data_path: str | os.PathLike[str] | None = None,
    read_only: bool,
) -> None:
    """Attach a DuckLake catalog as `kitsync`, the default database (unqualified names resolve there).

    The writer passes `data_path` (where new parquet files go; stored in the catalog when it is created) and
    turns data inlining off, so the catalog holds metadata only and stays small enough to publish by copy.
    A reader passes neither: the catalog knows where its files are (`data_path` overrides it, e.g. for an
    analyst who mounted the files elsewhere).
    """
    # No progress bar on stdout: a DuckLake query can take long enough to draw one; stdout is the caller's.
    connection.execute("SET enable_progress_bar = false")
    load_extension(connection, "ducklake")
    target = quote_literal(f"ducklake:{catalog}")
    connection.execute(
        f"ATTACH {target} AS {quote_ident(LAKE_ALIAS)} ({_attach_options(data_path, read_only=read_only)})"
    )
    connection.execute(f"USE {quote_ident(LAKE_ALIAS)}")


def _attach_options(data_path: str | os.PathLike[str] | None, *, read_only: bool) -> str:
    """ATTACH's options for a DuckLake: the data path is the only value, and it is quoted."""
    options = ["READ_ONLY"] if read_only else ["DATA_INLINING_ROW_LIMIT 0"]
    if data_path is not None:
        options.append(f"DATA_PATH {quote_literal(str(data_path).rstrip('/') + '/')}")
        if read_only:  # a reader's copy of the files (elsewhere, object storage) is not the writer's path
            options.append("OVERRIDE_DATA_PATH TRUE")
    return ", ".join(options)


def connect_readonly(
    path: str | os.PathLike[str], *, data_path: str | os.PathLike[str] | None = None
) -> duckdb.DuckDBPyConnection:
    """An analyst's connection to the published warehouse.

    Read-only connections take only a shared lock and the loader never opens the published file for writing,
    so any number of these run beside a load. A connection keeps the snapshot it opened (the loader replaces
    the file by rename, the open file stays intact): close and reconnect to see newer loads (while one
    connection to the path stays open, DuckDB hands new ones in the same process that same old snapshot).
    A `.ducklake` path is a published DuckLake catalog: attached read-only as the connection's default
    database, its tables and views read exactly like the embedded file's; `data_path` says where its parquet
    files are when they are not where the loader wrote them (an analyst's copy on another machine, or
    `s3://...` with the httpfs extension loaded).
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"no published warehouse at {target}; run a load first")
    if is_ducklake(target):
        connection = duckdb.connect()
        try:
            attach_ducklake(connection, target, data_path=data_path, read_only=True)
        except BaseException:
            connection.close()
            raise
        return connection
    return duckdb.connect(str(target), read_only=True)


def query(
    db_path: str | os.PathLike[str], sql: str, params: list[Any] | dict[str, Any] | None = None
) -> pa.Table:
    """Run one read-only statement against the published warehouse; writes are refused."""
    connection = connect_readonly(db_path)
    try:
        return connection.sql(sql, params=params).to_arrow_table()
    finally:
        connection.close()
