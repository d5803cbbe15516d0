"""DuckDB plumbing shared by the warehouse: identifier quoting, the arrow-to-DuckDB type map, connections."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.types as pat

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700


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


def duckdb_type(arrow_type: pa.DataType) -> str:  # noqa: PLR0911 - one return per type family
    """The DuckDB column type for an arrow type: the single place the lake's types meet the warehouse's."""
    simple: list[tuple[Any, str]] = [
        (pat.is_boolean, "BOOLEAN"),
        (pat.is_int8, "TINYINT"),
        (pat.is_int16, "SMALLINT"),
        (pat.is_int32, "INTEGER"),
        (pat.is_int64, "BIGINT"),
        (pat.is_uint8, "UTINYINT"),
        (pat.is_uint16, "USMALLINT"),
        (pat.is_uint32, "UINTEGER"),
        (pat.is_uint64, "UBIGINT"),
        (pat.is_float16, "FLOAT"),
        (pat.is_float32, "FLOAT"),
        (pat.is_float64, "DOUBLE"),
        (pat.is_string, "VARCHAR"),
        (pat.is_large_string, "VARCHAR"),
        (pat.is_string_view, "VARCHAR"),
        (pat.is_binary, "BLOB"),
        (pat.is_large_binary, "BLOB"),
        (pat.is_binary_view, "BLOB"),
        (pat.is_date, "DATE"),
        (pat.is_time, "TIME"),
        (pat.is_duration, "INTERVAL"),
    ]
    for predicate, name in simple:
        if predicate(arrow_type):
            return name
    if pat.is_timestamp(arrow_type):
        if arrow_type.tz is not None:
            return "TIMESTAMPTZ"
        return {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "us": "TIMESTAMP", "ns": "TIMESTAMP_NS"}[
            arrow_type.unit
        ]
    if pat.is_decimal(arrow_type):
        if arrow_type.precision > 38:
            raise TypeError(f"DuckDB decimals hold at most 38 digits, not {arrow_type}")
        return f"DECIMAL({arrow_type.precision},{arrow_type.scale})"
    if pat.is_dictionary(arrow_type):
        return duckdb_type(arrow_type.value_type)
    if pat.is_fixed_size_list(arrow_type):
        return f"{duckdb_type(arrow_type.value_type)}[{arrow_type.list_size}]"
    if pat.is_list(arrow_type) or pat.is_large_list(arrow_type) or pat.is_list_view(arrow_type):
        return f"{duckdb_type(arrow_type.value_type)}[]"
    if pat.is_map(arrow_type):
        return f"MAP({duckdb_type(arrow_type.key_type)}, {duckdb_type(arrow_type.item_type)})"
    if pat.is_struct(arrow_type):
        fields = ", ".join(
            f"{quote_ident(arrow_type.field(i).name)} {duckdb_type(arrow_type.field(i).type)}"
            for i in range(arrow_type.num_fields)
        )
        return f"STRUCT({fields})"
    raise TypeError(f"no DuckDB column type for arrow type {arrow_type}")


def scalar(connection: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The single value of a one-row query, with the result drained (DuckDB 2 results hold the connection
    until fully fetched, so a bare fetchone() would block the next statement)."""
    rows = connection.execute(sql, params).fetchall()
    return rows[0][0] if rows else None


def restrict_to_owner(path: Path) -> None:
    """Customer data lives in these files: only the account running kitsync may read them."""
    os.chmod(path, OWNER_ONLY_DIR if path.is_dir() else OWNER_ONLY_FILE)


def ensure_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_DIR)
    restrict_to_owner(path)


def connect_readonly(path: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """An analyst's connection to the published warehouse.

    Read-only connections take only a shared lock and the loader never opens the published file for writing,
    so any number of these run beside a load. A connection keeps the snapshot it opened (the loader replaces
    the file by rename, the open file stays intact): close and reconnect to see newer loads (while one
    connection to the path stays open, DuckDB hands new ones in the same process that same old snapshot).
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"no published warehouse at {target}; run a load first")
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
