"""Brings a warehouse's schema up to the code's: versioned SQL migrations, tables derived from specs, views.

Order, all in one transaction:
1. pending `warehouse/migrations/NNN_name.sql` files, recorded in `schema_migrations`;
2. every declared table created from its TableSpec, and every column a spec gained added with
   `ALTER TABLE ... ADD COLUMN` (rows loaded before hold NULL there, exactly what re-loading their lake files
   would give);
3. the analysis views of `warehouse/sql/*.sql`, (re)installed when their text changed.

What code cannot do safely raises `SchemaDriftError` instead: a column whose type changed or that left the
spec needs a hand-written SQL migration. Such a migration runs before step 2, so on a fresh warehouse the
table does not exist yet: write it with `IF EXISTS` (`ALTER TABLE IF EXISTS ...`).
(The module is `migrate`, not `migrations`, so it cannot be confused with the `migrations/` SQL directory.)
"""

from __future__ import annotations

import graphlib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from transform.schemas import TableSpec
from warehouse.duck import duckdb_type, quote_ident, quote_literal, scalar
from warehouse.merge import check_spec, observation_table, value_columns

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VIEWS_DIR = Path(__file__).parent / "sql"
_MIGRATION_FILE = re.compile(r"^(\d{3,})_([A-Za-z0-9_]+)\.sql$")
_SOURCE = re.compile(r"\b(?:FROM|JOIN)\s+(\"?)([A-Za-z_][A-Za-z0-9_]*)\1", re.IGNORECASE)


class SchemaDriftError(RuntimeError):
    """The warehouse holds a table the spec changed in a way only a hand-written migration may resolve."""


class MigrationError(RuntimeError):
    """A migration or view file is malformed or failed to apply."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.version:03d}_{self.name}"


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} is not named NNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"two migrations share a version number in {directory}")
    return sorted(found, key=lambda m: m.version)


def migrate(
    connection: duckdb.DuckDBPyConnection,
    specs: Mapping[str, TableSpec],
    *,
    migrations_dir: Path = MIGRATIONS_DIR,
    views_dir: Path = VIEWS_DIR,
) -> list[str]:
    """Apply everything pending in one transaction; returns what changed (empty when already current).

    A warehouse brought up to exactly these specs, migrations and views before records their fingerprint,
    and is then left alone without reading its catalog: listing a DuckLake's columns costs seconds (each
    view is bound), which a load that changes little should not pay. Any change to a spec, a migration file,
    a view file or DuckDB's version changes the fingerprint, and the full comparison runs.
    """
    for spec in specs.values():
        check_spec(spec)
    fingerprint = _fingerprint(specs, migrations_dir, views_dir)
    if _held_fingerprint(connection) == fingerprint:
        return []
    connection.begin()
    try:
        changes = _apply_sql_migrations(connection, migrations_dir)
        columns = _held_columns(connection)
        for spec in specs.values():
            changes += _sync_table(connection, spec.name, spec.schema, spec.description, columns)
            if spec.merge == "current":
                changes += _sync_table(
                    connection,
                    observation_table(spec),
                    _observation_schema(spec),
                    f"When each column of {spec.name} was observed (the warehouse's merge bookkeeping).",
                    columns,
                )
        changes += _install_views(connection, views_dir)
        connection.execute("CREATE TABLE IF NOT EXISTS schema_fingerprint (digest VARCHAR NOT NULL)")
        connection.execute("DELETE FROM schema_fingerprint")
        connection.execute("INSERT INTO schema_fingerprint VALUES (?)", [fingerprint])
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return changes


def _fingerprint(specs: Mapping[str, TableSpec], migrations_dir: Path, views_dir: Path) -> str:
    """A digest of everything migrate() brings a warehouse up to (the texts that decide its schema)."""
    digest = hashlib.sha256(f"duckdb {duckdb.__version__}\n".encode())
    for name in sorted(specs):
        spec = specs[name]
        fields = [(f.name, str(f.type), f.nullable) for f in spec.schema]
        digest.update(repr((name, fields, spec.description, spec.merge, spec.primary_key)).encode())
    for directory in (migrations_dir, views_dir):
        for path in sorted(directory.glob("*.sql")) if directory.is_dir() else ():
            digest.update(f"\n{directory.name}/{path.name}\n".encode() + path.read_bytes())
    return digest.hexdigest()


def _held_fingerprint(connection: duckdb.DuckDBPyConnection) -> str | None:
    try:
        return scalar(connection, "SELECT max(digest) FROM schema_fingerprint")
    except duckdb.CatalogException:
        return None  # a warehouse never migrated by this code (new, or from before fingerprints)


def table_ddl(name: str, schema: pa.Schema) -> str:
    """CREATE TABLE text for a declared schema; non-nullable fields become NOT NULL (cheap, unlike keys)."""
    columns = ", ".join(
        f"{quote_ident(field.name)} {duckdb_type(field.type)}{'' if field.nullable else ' NOT NULL'}"
        for field in schema
    )
    return f"CREATE TABLE {quote_ident(name)} ({columns})"


def _apply_sql_migrations(connection: duckdb.DuckDBPyConnection, directory: Path) -> list[str]:
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    applied = {row[0] for row in connection.execute("SELECT version FROM schema_migrations").fetchall()}
    changes = []
    for migration in discover_migrations(directory):
        if migration.version in applied:
            continue
        try:
            connection.execute(migration.path.read_text())
        except duckdb.Error as error:
            raise MigrationError(f"migration {migration.label} failed: {error}") from error
        connection.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
            [migration.version, migration.name, datetime.now(UTC)],
        )
        changes.append(f"migration {migration.label}")
    return changes


def _held_columns(connection: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Every main-schema table's columns and types, in one catalog query (not one per table: a no-op load
    of an unchanged lake is mostly this bookkeeping)."""
    held: dict[str, dict[str, str]] = {}
    for table, column, data_type in connection.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal "
        "ORDER BY table_name, column_index"
    ).fetchall():
        held.setdefault(table, {})[column] = data_type
    return held


def _sync_table(
    connection: duckdb.DuckDBPyConnection,
    name: str,
    schema: pa.Schema,
    description: str,
    columns: dict[str, dict[str, str]],
) -> list[str]:
    held = columns.get(name, {})
    if not held:
        connection.execute(table_ddl(name, schema))
        connection.execute(f"COMMENT ON TABLE {quote_ident(name)} IS {quote_literal(description)}")
        return [f"create table {name}"]
    undeclared = sorted(set(held) - set(schema.names))
    retyped = [
        f"{field.name}: {held[field.name]} -> {duckdb_type(field.type)}"
        for field in schema
        if field.name in held and held[field.name] != duckdb_type(field.type)
    ]
    if undeclared or retyped:
        raise SchemaDriftError(
            f"table {name} differs from its spec (columns not declared: {undeclared}; "
            f"type changes: {retyped}); write a migration in warehouse/migrations/"
        )
    changes = []
    for field in schema:
        if field.name not in held:
            column = f"{quote_ident(field.name)} {duckdb_type(field.type)}"
            connection.execute(f"ALTER TABLE {quote_ident(name)} ADD COLUMN {column}")
            changes.append(f"add column {name}.{field.name}")
    return changes


def _observation_schema(spec: TableSpec) -> pa.Schema:
    at_type = spec.schema.field(spec.observed_at).type
    key_fields = [spec.schema.field(name) for name in spec.primary_key]
    return pa.schema([*key_fields, *(pa.field(name, at_type) for name in value_columns(spec))])


def _install_views(connection: duckdb.DuckDBPyConnection, directory: Path) -> list[str]:
    """Each `name.sql` holds one `CREATE OR REPLACE VIEW name AS ...`; re-run only when its text changed.

    A view may build on another: files run in dependency order (a file that reads FROM or JOINs another
    file's view runs after it), because a failed statement aborts DuckDB's transaction: no retrying.
    Views whose file disappeared are dropped.
    """
    connection.execute(
        "CREATE TABLE IF NOT EXISTS installed_views (name VARCHAR NOT NULL, sha256 VARCHAR NOT NULL)"
    )
    installed = dict(connection.execute("SELECT name, sha256 FROM installed_views").fetchall())
    files = (
        {path.stem: path.read_text() for path in sorted(directory.glob("*.sql"))}
        if directory.is_dir()
        else {}
    )
    digests = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()}
    changes = []
    for name in sorted(set(installed) - set(files)):
        connection.execute(f"DROP VIEW IF EXISTS {quote_ident(name)}")
        connection.execute("DELETE FROM installed_views WHERE name = ?", [name])
        changes.append(f"drop view {name}")
    changed = {name for name in files if installed.get(name) != digests[name]}
    # A view is re-created when it or a view it builds on changed (DuckDB binds a view's columns at creation).
    for name in _dependency_order(files):
        if name not in changed and not (_mentions(files, name) & changed):
            continue
        changed.add(name)
        try:
            connection.execute(files[name])
        except duckdb.Error as error:
            raise MigrationError(f"view {name}.sql failed: {error}") from error
        exists = scalar(
            connection,
            "SELECT count(*) FROM duckdb_views() "
            "WHERE database_name = current_database() AND schema_name = 'main' AND view_name = ?",
            [name],
        )
        if not exists:
            raise MigrationError(f"{name}.sql must create a view named {name}")
        connection.execute("DELETE FROM installed_views WHERE name = ?", [name])
        connection.execute("INSERT INTO installed_views VALUES (?, ?)", [name, digests[name]])
        changes.append(f"install view {name}")
    return changes


def _mentions(files: Mapping[str, str], name: str) -> set[str]:
    """The other views a view file reads from: names after FROM or JOIN, comments ignored."""
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", files[name], flags=re.DOTALL)
    referenced = {match[1] for match in _SOURCE.findall(text)}
    return {other for other in files if other != name and other in referenced}


def _dependency_order(files: Mapping[str, str]) -> list[str]:
    sorter = graphlib.TopologicalSorter({name: _mentions(files, name) for name in sorted(files)})
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as error:
        raise MigrationError(f"view files refer to each other in a cycle: {error.args[1]}") from error
