"""Set-based merges of one staged batch into its warehouse table, one statement sequence per merge mode.

Every mode is written so that the result depends only on the set of observations ever loaded, not on how
they were split into loads or in which order the loads came: loading a late backfill, re-loading a file, or
rebuilding the whole warehouse from the lake in one go all give the same table. Concretely:

- "current": per primary key and per column, the value of the newest observation in which that column is not
  null; `observed_at` is the newest observation of the key. (The per-column observation times live in a side
  table, `_kitsync_observed_<table>`, because a late-arriving older observation must not overwrite a newer
  value, and an older non-null value must still fill a column that newer observations left null.)
- "history": per primary key, the earliest observation (a late backfill of an earlier observation replaces a
  later one, so the table equals what loading everything in order would give).
- "replace": per `replace_key` group, exactly the rows of the group's newest `observed_at`, one per key.

Ties (equal `observed_at`, different values) are broken by comparing the values themselves, so no outcome
depends on scan order. Keys are enforced here, not with PRIMARY KEY constraints, which slow DuckDB loads ~12x.
"""

# ruff: noqa: S608 - SQL text here holds only identifiers, each through duck.quote_ident; values are bound

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np

from transform.schemas import TableSpec
from warehouse.duck import quote_ident, scalar

STAGE = "_kitsync_stage"
_WINNERS = "_kitsync_winners"
_GROUPS = "_kitsync_groups"
_OBSERVATIONS = "_kitsync_observations"
_ROW_AT = "_kitsync_row_at"
_BATCH_AT = "_kitsync_batch_at"
_HELD_AT = "_kitsync_held_at"


class SpecError(ValueError):
    """A table declaration the warehouse cannot merge (unknown columns in keys, a key-less current table)."""


def observation_table(spec: TableSpec) -> str:
    """The side table of a "current" table: when each column's value was observed."""
    return f"_kitsync_observed_{spec.name}"


def value_columns(spec: TableSpec) -> list[str]:
    """The columns of a "current" table that merge column by column (all but the key and observed_at)."""
    return [name for name in spec.schema.names if name not in spec.primary_key and name != spec.observed_at]


def check_spec(spec: TableSpec) -> None:
    names = set(spec.schema.names)
    problems = []
    if spec.merge not in ("current", "history", "replace"):
        problems.append(f"unknown merge mode {spec.merge!r}")
    if spec.observed_at not in names:
        problems.append(f"observed_at column {spec.observed_at!r} is not in the schema")
    for label, columns in (("primary key", spec.primary_key), ("partition", spec.partition_by)):
        problems += [f"{label} column {c!r} is not in the schema" for c in columns if c not in names]
    if spec.merge == "current" and not spec.primary_key:
        problems.append('a "current" table needs a primary key')
    if spec.merge == "replace":
        if not spec.replace_key:
            problems.append('a "replace" table needs a replace_key')
        problems += [
            f"replace_key column {c!r} is not in the schema" for c in spec.replace_key if c not in names
        ]
    if problems:
        raise SpecError(f"table {spec.name!r}: " + "; ".join(problems))


def merge_batch(connection: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    """Merge the rows staged in the temp table `STAGE` into `spec`'s table, in the caller's transaction."""
    check_spec(spec)
    nulls = scalar(
        connection, f"SELECT count(*) FROM {quote_ident(STAGE)} WHERE {quote_ident(spec.observed_at)} IS NULL"
    )
    if nulls:
        raise ValueError(
            f"{nulls} staged rows of {spec.name!r} have no {spec.observed_at}: cannot order them"
        )
    {"current": _merge_current, "history": _merge_history, "replace": _merge_replace}[spec.merge](
        connection, spec
    )
    for temp in (_WINNERS, _GROUPS, _OBSERVATIONS):
        connection.execute(f"DROP TABLE IF EXISTS {quote_ident(temp)}")


def takes_direct_insert(spec: TableSpec) -> bool:
    """Whether a batch into an EMPTY table of this spec may be inserted straight from the lake, skipping the
    stage, and then checked (`settle_direct_insert`): true for "history" and "replace", whose merge into an
    empty table keeps a batch without nulls, repeated keys or (replace) older observations exactly as it
    is. A "current" table also fills its side table of observation times, so it always stages."""
    return spec.merge in ("history", "replace")


def settle_direct_insert(connection: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    """Finish a batch inserted straight into its table, which was empty before (in the caller's transaction).

    A first load's batch is almost always its own merge result, and then checking it costs a fraction of
    staging it (on 3M taxonomy rows the stage copy and the joined insert cost ~30 s, the checks below
    ~0.5 s). When a check fails, the rows move to the stage and take the usual merge: same result.
    """
    check_spec(spec)
    target, at = quote_ident(spec.name), quote_ident(spec.observed_at)
    nulls = scalar(connection, f"SELECT count(*) FROM {target} WHERE {at} IS NULL")
    if nulls:
        raise ValueError(
            f"{nulls} staged rows of {spec.name!r} have no {spec.observed_at}: cannot order them"
        )
    older = spec.merge == "replace" and _exists(
        connection,
        f"SELECT 1 FROM {target} GROUP BY {_list(spec.replace_key)} HAVING min({at}) <> max({at})",
    )
    if not older and not _any_repeated(connection, target, _key(spec)):
        return
    stage = quote_ident(STAGE)
    connection.execute(f"CREATE TEMP TABLE {stage} AS SELECT * FROM {target}")
    connection.execute(f"DELETE FROM {target}")
    merge_batch(connection, spec)
    connection.execute(f"DROP TABLE {stage}")


def _merge_history(connection: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    target, stage, key = quote_ident(spec.name), quote_ident(STAGE), _key(spec)
    columns = spec.schema.names
    order = [_asc(spec.observed_at), *(_asc(c) for c in columns)]
    within, bounds = _within_batch_range(connection, key, "t")
    held = (
        f"SELECT {_list(columns, 't')} FROM {target} AS t SEMI JOIN {stage} AS s ON {_same('t', 's', key)} "
        f"WHERE {within}"
    )
    if not _exists(connection, held, bounds) and not _any_repeated(connection, stage, key):
        # Every staged key is new (a first load, or events never seen): the batch is the winners as it is.
        connection.execute(f"INSERT INTO {target} BY NAME SELECT {_list(columns)} FROM {stage}")
        return
    _keep_first_per_key(
        connection,
        f"""
        SELECT {_list(columns)} FROM {stage}
        UNION ALL
        {held}
        """,
        columns,
        key,
        order,
        params=bounds,
    )
    _swap_in(connection, target, key, columns, within, bounds)


def _merge_replace(connection: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    target, stage, groups = quote_ident(spec.name), quote_ident(STAGE), quote_ident(_GROUPS)
    group, at = list(spec.replace_key), quote_ident(spec.observed_at)
    batch_at, held_at = quote_ident(_BATCH_AT), quote_ident(_HELD_AT)
    columns = spec.schema.names
    within, bounds = _within_batch_range(connection, group, "t")
    # The groups this batch takes over: those where it is at least as new as what the warehouse holds.
    connection.execute(
        f"""
        CREATE TEMP TABLE {groups} AS
        WITH batch AS (
            SELECT {_list(group)}, max({at}) AS {batch_at} FROM {stage} GROUP BY {_list(group)}
        ),
        held AS (
            SELECT {_list(group, "t")}, max(t.{at}) AS {held_at}
            FROM {target} AS t SEMI JOIN batch AS b ON {_same("t", "b", group)}
            WHERE {within}
            GROUP BY {_list(group, "t")}
        )
        SELECT b.* FROM batch AS b LEFT JOIN held AS h ON {_same("b", "h", group)}
        WHERE h.{held_at} IS NULL OR b.{batch_at} >= h.{held_at}
        """,
        bounds,
    )
    batch_rows = f"""
        SELECT {_list(columns, "s")} FROM {stage} AS s
        JOIN {groups} AS g ON {_same("s", "g", group)} AND s.{at} = g.{batch_at}
    """
    held_rows = f"""
        SELECT {_list(columns, "t")} FROM {target} AS t
        JOIN {groups} AS g ON {_same("t", "g", group)} AND t.{at} = g.{batch_at}
        WHERE {within}
    """
    delete = f"DELETE FROM {target} AS t USING {groups} AS g WHERE {_same('t', 'g', group)} AND {within}"
    if not _exists(connection, held_rows, bounds) and not _any_repeated(connection, stage, _key(spec)):
        # The usual case: the warehouse holds no row of the groups' newest observations and no key repeats,
        # so the batch's newest rows per group are the winners as they are (no ranking, no temp copy).
        connection.execute(delete, bounds)
        connection.execute(f"INSERT INTO {target} BY NAME {batch_rows}")
        return
    _keep_first_per_key(
        connection,
        f"{batch_rows} UNION ALL {held_rows}",
        columns,
        _key(spec),
        [_asc(c) for c in columns],
        params=bounds,
    )
    connection.execute(delete, bounds)
    connection.execute(f"INSERT INTO {target} BY NAME SELECT {_list(columns)} FROM {quote_ident(_WINNERS)}")


def _within_batch_range(
    connection: duckdb.DuckDBPyConnection, columns: Sequence[str], alias: str
) -> tuple[str, list[Any]]:
    """A filter on the target's rows that keeps every row the batch's keys can match: each key column between
    the batch's least and greatest value (a column with a null in the batch is left unfiltered).

    A join to the staged batch alone makes DuckDB read the whole target; constant bounds let it skip the row
    groups (and on a DuckLake, the data files) whose min/max statistics lie outside them, so a batch of new
    kits reads almost nothing of a large table. The filter only narrows what the join would discard.
    """
    stage = quote_ident(STAGE)
    aggregates = ", ".join(
        f"count(*) - count({quote_ident(c)}), min({quote_ident(c)}), max({quote_ident(c)})" for c in columns
    )
    row = connection.execute(f"SELECT {aggregates} FROM {stage}").fetchall()[0]
    conditions, bounds = [], []
    for index, column in enumerate(columns):
        nulls, low, high = row[3 * index : 3 * index + 3]
        if nulls or low is None:
            continue
        conditions.append(f"{alias}.{quote_ident(column)} BETWEEN ? AND ?")
        bounds += [low, high]
    return (" AND ".join(conditions) or "TRUE"), bounds


def _merge_current(connection: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    target, stage, side = quote_ident(spec.name), quote_ident(STAGE), quote_ident(observation_table(spec))
    key, at, row_at = list(spec.primary_key), quote_ident(spec.observed_at), quote_ident(_ROW_AT)
    values = value_columns(spec)
    times = [quote_ident(f"_kitsync_at_{i}") for i in range(len(values))]
    within, bounds = _within_batch_range(connection, key, "t")
    from_batch = [
        *(quote_ident(c) for c in key),
        f"{at} AS {row_at}",
        *(quote_ident(c) for c in values),
        *(
            f"CASE WHEN {quote_ident(c)} IS NULL THEN NULL ELSE {at} END AS {t}"
            for c, t in zip(values, times, strict=True)
        ),
    ]
    # A held row's per-column times come from the side table; without one (rows written by a hand-made
    # migration) each non-null value counts as observed at the row's observed_at.
    from_held = [
        *(f"t.{quote_ident(c)}" for c in key),
        f"t.{at} AS {row_at}",
        *(f"t.{quote_ident(c)}" for c in values),
        *(
            f"coalesce(o.{quote_ident(c)}, CASE WHEN t.{quote_ident(c)} IS NULL THEN NULL ELSE t.{at} END)"
            f" AS {t}"
            for c, t in zip(values, times, strict=True)
        ),
    ]
    connection.execute(
        f"""
        CREATE TEMP TABLE {quote_ident(_OBSERVATIONS)} AS
        SELECT {", ".join(from_batch)} FROM {stage}
        UNION ALL
        SELECT {", ".join(from_held)}
        FROM (
            SELECT t.* FROM {target} AS t SEMI JOIN {stage} AS s ON {_same("t", "s", key)} WHERE {within}
        ) AS t
        LEFT JOIN {side} AS o ON {_same("t", "o", key)}
        """,
        bounds,
    )
    merged = [
        *(quote_ident(c) for c in key),
        f"max({row_at}) AS {at}",
        *(
            f"first({quote_ident(c)} ORDER BY {t} DESC, {quote_ident(c)} DESC) "
            f"FILTER (WHERE {quote_ident(c)} IS NOT NULL) AS {quote_ident(c)}"
            for c, t in zip(values, times, strict=True)
        ),
        *(f"max({t}) AS {t}" for t in times),
    ]
    connection.execute(
        f"""
        CREATE TEMP TABLE {quote_ident(_WINNERS)} AS
        SELECT {", ".join(merged)} FROM {quote_ident(_OBSERVATIONS)} GROUP BY {_list(key)}
        """
    )
    _swap_in(connection, target, key, spec.schema.names, within, bounds)
    side_within, side_bounds = _within_batch_range(connection, key, "o")
    side_columns = [
        *(quote_ident(c) for c in key),
        *(f"{t} AS {quote_ident(c)}" for c, t in zip(values, times, strict=True)),
    ]
    connection.execute(
        f"DELETE FROM {side} AS o USING {quote_ident(_WINNERS)} AS w WHERE {_same('o', 'w', key)} "
        f"AND {side_within}",
        side_bounds,
    )
    connection.execute(
        f"INSERT INTO {side} BY NAME SELECT {', '.join(side_columns)} FROM {quote_ident(_WINNERS)}"
    )


def _keep_first_per_key(
    connection: duckdb.DuckDBPyConnection,
    candidates: str,
    columns: Sequence[str],
    key: Sequence[str],
    order: Sequence[str],
    *,
    params: list[Any] | None = None,
) -> None:
    """`_WINNERS` := the first candidate row per key in `order` (the candidates' SQL is a row source).

    Keys are almost always unique already (a batch holds each key once, and only a reload or a late backfill
    repeats one), and ranking every row with a window sorts the whole batch: on 1.5M taxonomy rows it took
    ~8 s of a ~11 s merge. So the candidates are materialized as they are, and ranked only if a key repeats.
    The check looks for a repeated key hash: equal keys hash alike, so a repeated key is never missed (a hash
    collision merely takes the exact, slower path).
    """
    winners = quote_ident(_WINNERS)
    connection.execute(f"CREATE TEMP TABLE {winners} AS {candidates}", params)
    if not _any_repeated(connection, winners, key):
        return
    ranked = quote_ident(f"{_WINNERS}_ranked")
    connection.execute(
        f"""
        CREATE TEMP TABLE {ranked} AS
        SELECT {_list(columns)} FROM {winners}
        QUALIFY row_number() OVER (PARTITION BY {_list(key)} ORDER BY {", ".join(order)}) = 1
        """
    )
    connection.execute(f"DROP TABLE {winners}")
    connection.execute(f"ALTER TABLE {ranked} RENAME TO {winners}")


def _exists(connection: duckdb.DuckDBPyConnection, rows: str, params: list[Any] | None = None) -> bool:
    return bool(scalar(connection, f"SELECT EXISTS ({rows})", params))


# Rows of key hashes sorted at once by `_any_repeated` (8 bytes each): a bigger table is checked in as many
# passes over disjoint hash ranges, so a load's memory does not grow with the rows it checks.
REPEAT_CHECK_ROWS = 4_000_000


def _any_repeated(connection: duckdb.DuckDBPyConnection, table: str, key: Sequence[str]) -> bool:
    """Whether two rows of `table` may share a key: their key hashes, sorted, hold a repeat.

    Sorting the hashes in numpy takes a fraction of DuckDB's own GROUP BY or count(DISTINCT) on this machine
    (0.3 s against 1.2 s for 1.5M rows, most of it computing the hashes). Equal keys hash alike, so they
    fall in the same pass.
    """
    rows = int(scalar(connection, f"SELECT count(*) FROM {table}"))
    passes = max(1, -(-rows // REPEAT_CHECK_ROWS))
    hashed = f"SELECT hash({_list(key)}) AS h FROM {table}"
    for part in range(passes):
        sql = hashed if passes == 1 else f"SELECT h FROM ({hashed}) WHERE h % {passes} = {part}"
        hashes = np.asarray(connection.execute(sql).fetchnumpy()["h"])
        hashes.sort()  # in place: one array of 8 bytes a row, not two
        if hashes.size > 1 and (hashes[1:] == hashes[:-1]).any():
            return True
    return False


def _swap_in(  # noqa: PLR0917 - the target, its key and columns, and the bounds of the keys replaced
    connection: duckdb.DuckDBPyConnection,
    target: str,
    key: Sequence[str],
    columns: Sequence[str],
    within: str,
    bounds: list[Any],
) -> None:
    """Replace the target's rows for the winners' keys by the winners (delete-then-insert: no key index);
    `within` (on alias t) bounds the target's scan to the batch's key range (see _within_batch_range)."""
    winners = quote_ident(_WINNERS)
    connection.execute(
        f"DELETE FROM {target} AS t USING {winners} AS w WHERE {_same('t', 'w', key)} AND {within}", bounds
    )
    connection.execute(f"INSERT INTO {target} BY NAME SELECT {_list(columns)} FROM {winners}")


def _key(spec: TableSpec) -> list[str]:
    """Rows are unique by the primary key, or by every column when a table declares none."""
    return list(spec.primary_key) or list(spec.schema.names)


def _list(columns: Sequence[str], alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + quote_ident(c) for c in columns)


def _same(left: str, right: str, columns: Sequence[str]) -> str:
    """Null-safe equality on a column list: a null key part matches a null, so keys never duplicate."""
    return " AND ".join(
        f"{left}.{quote_ident(c)} IS NOT DISTINCT FROM {right}.{quote_ident(c)}" for c in columns
    )


def _asc(column: str) -> str:
    return f"{quote_ident(column)} ASC NULLS LAST"
