"""Taxonomy CSVs -> long rows (kit, rank, taxon, lineage, relative abundance), whatever dialect the lab used.

Biomesight does not publish its CSV's columns, so the file is read by its header. Three dialects are known:

- `taxonomy,abundance[,count]`: a Greengenes lineage per row (`k__Bacteria; p__Firmicutes; ...`), abundance in
  percent or as a fraction (told apart by the sum per rank). The row's rank is its deepest non-empty level:
  `...; g__Faecalibacterium; s__` is the genus. If the same (rank, lineage) comes twice, the larger abundance
  is kept: a parent's own row already includes its unnamed children.
- `tax_name,tax_rank,count,count_norm,taxon,parent`: one node per row with ids; lineage rebuilt from parents;
  abundance from count_norm (percent or fraction), or count / the rank's total when count_norm is empty.
- `taxon_id,rank,name,parent,count`: as above, abundance = count / the rank's total count.

Every dialect yields the same rows for the same sample: lineage in Greengenes form with a prefix for each
canonical rank (`k__` also for domain), species as "Genus species" in `taxon` and the bare epithet in the
lineage, ranks kingdom..species only (nodes at other ranks, e.g. strain or "no rank", only link parents).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import functools
import io
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from transform.result import TableRows, TransformResult, table_from_columns
from transform.values import ContractError, as_float, shown, storable

RANKS: Final = ("kingdom", "phylum", "class", "order", "family", "genus", "species")
RANK_INDEX: Final = {rank: i for i, rank in enumerate(RANKS)}
_PREFIX: Final = {
    "kingdom": "k",
    "phylum": "p",
    "class": "c",
    "order": "o",
    "family": "f",
    "genus": "g",
    "species": "s",
}
_RANK_ALIASES: Final = {
    **dict.fromkeys(("k", "kingdom", "d", "domain", "superkingdom", "realm"), "kingdom"),
    **{rank: rank for rank in RANKS},
    **{prefix: rank for rank, prefix in _PREFIX.items()},
    "phyla": "phylum",
    "classes": "class",
    "orders": "order",
    "families": "family",
    "genera": "genus",
}
DIALECTS: Final = {
    "greengenes": ("taxonomy", "abundance"),
    "node_norm": ("tax_name", "tax_rank", "count", "count_norm", "taxon", "parent"),
    "node_count": ("taxon_id", "rank", "name", "parent", "count"),
}
PERCENT_THRESHOLD: Final = 1.5  # a rank summing above this is in percent (fractions sum to at most ~1)
MAX_PARENT_DEPTH: Final = 64


class TaxonomyDecodeError(ValueError):
    """The results' `csv` field is not base64; the flows turn it into a quarantine row."""


def decode_base64_csv(text: str | bytes) -> bytes:
    """Decode the base64 `csv` field of a results response (line breaks tolerated, nothing else)."""
    if not isinstance(text, str | bytes | bytearray):
        raise TaxonomyDecodeError(f"the csv field is {type(text).__name__}, not base64 text")
    try:
        raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
        return base64.b64decode(b"".join(raw.split()), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as error:
        raise TaxonomyDecodeError(f"the csv field is not valid base64 ({error})") from None


def normalize_rank(rank: str) -> str | None:
    """The canonical rank name for a lab's spelling ("G", "genus", "Genus"); None for ranks we do not keep."""
    return _RANK_ALIASES.get(rank.strip().casefold())


@dataclass(frozen=True)
class Taxon:
    """One row of a kit's taxonomy."""

    rank: str
    taxon: str
    lineage: str
    relative_abundance: float
    read_count: int | None


def _species_name(genus: str, epithet: str) -> str:
    """'Genus species' from the lineage's parts (just the epithet when the genus is unnamed)."""
    return f"{genus} {epithet}" if genus else epithet


def _epithet(genus: str, species: str) -> str:
    """The lineage's `s__` part for a full species name ("Faecalibacterium prausnitzii" -> "prausnitzii")."""
    if genus and species.casefold().startswith(genus.casefold() + " "):
        return species[len(genus) + 1 :].strip()
    return species


def _describe(levels: dict[str, str]) -> tuple[str, str, str] | None:
    """(rank, taxon, lineage) from a rank -> name mapping; None when no level has a name."""
    named = [rank for rank in RANKS if levels.get(rank)]
    if not named:
        return None
    deepest = named[-1]
    names = {rank: levels.get(rank, "") for rank in RANKS[: RANK_INDEX[deepest] + 1]}
    taxon = names[deepest]
    if deepest == "species":
        # Greengenes writes the bare epithet, other labs the binomial (or GTDB's Genus_species): one form.
        names["species"] = _epithet(names["genus"], taxon.replace("_", " ").strip())
        taxon = _species_name(names["genus"], names["species"])
    lineage = "; ".join(f"{_PREFIX[rank]}__{name}" for rank, name in names.items())
    return deepest, taxon, lineage


def _greengenes_levels(lineage: str) -> dict[str, str]:
    """`k__Bacteria; p__Firmicutes; ...` (unprefixed: ranks by position) -> rank -> name."""
    parts = [part.strip() for part in lineage.replace("|", ";").split(";")]
    parts = [part for part in parts if part]
    levels: dict[str, str] = {}
    if parts and not any("__" in part for part in parts):
        return dict(zip(RANKS, parts, strict=False))
    for part in parts:
        prefix, _, name = part.partition("__")
        rank = _RANK_ALIASES.get(prefix.strip().casefold())
        if rank is not None and rank not in levels:
            levels[rank] = name.strip()
    return levels


@functools.lru_cache(maxsize=65_536)
def _describe_lineage(lineage: str) -> tuple[str, str, str] | None:
    """Cached: the same few thousand lineages recur in every kit, and parsing them dominates the transform."""
    return _describe(_greengenes_levels(lineage))


# --- reading: pyarrow's CSV reader, every cell a string --------------------------------------------------

_READ: Final = pacsv.ReadOptions(autogenerate_column_names=True, use_threads=False)
_PARSE: Final = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True)
# Every cell is read as text (numbers are checked below, with the row number a quarantine detail names).
_CONVERT: Final = pacsv.ConvertOptions(
    column_types={f"f{i}": pa.string() for i in range(256)}, strings_can_be_null=False
)


def _read_rows(content: bytes | str) -> tuple[list[str], list[pa.Array], tuple[int, int] | None]:
    """Header (trimmed, lower-case), the non-blank data rows as string columns, and the number (from 1) and
    width of the first data row that has more fields than the header, if any; ContractError if not a CSV.

    pyarrow's CSV reader does the reading; a file it refuses (rows of uneven width, which a lab's
    spreadsheet export does produce) is read again by the standard library's reader, which pads short rows.
    """
    data = _utf8(content)
    try:
        table = pacsv.read_csv(pa.py_buffer(data), _READ, _PARSE, _CONVERT)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _read_uneven(data)
    cells = [column.combine_chunks() for column in table.columns]
    blank = functools.reduce(pc.and_, [pc.equal(pc.utf8_trim_whitespace(column), "") for column in cells])
    kept = pc.indices_nonzero(pc.invert(blank))
    if not len(kept):
        raise ContractError("empty_file", "the taxonomy CSV holds only blank lines")
    first = kept[0].as_py()
    header = [str(column[first].as_py()).strip().casefold() for column in cells]
    return header, [column.take(kept[1:]) for column in cells], None


def _utf8(content: bytes | str) -> bytes:
    """The CSV as UTF-8 bytes without a byte-order mark; ContractError when it is empty or not text."""
    if isinstance(content, bytes | bytearray | memoryview):
        raw = bytes(content)
        if not raw.strip():
            raise ContractError(
                "empty_file", "the taxonomy CSV is empty; ask Biomesight to re-export the kit"
            )
        # Spreadsheet tools sometimes save UTF-16 with a byte-order mark; that is still readable text.
        utf16 = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        encoding = "utf-16" if utf16 else "utf-8-sig"
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as error:
            raise ContractError(
                "not_utf8",
                f"the taxonomy CSV is not {encoding.upper().removesuffix('-SIG')} text "
                f"(byte {error.start} is 0x{raw[error.start]:02x})",
            ) from None
        return text.encode() if utf16 else raw.removeprefix(codecs.BOM_UTF8)
    if isinstance(content, str):
        text = storable(content.removeprefix("\ufeff"))
        if not text.strip():
            raise ContractError(
                "empty_file", "the taxonomy CSV is empty; ask Biomesight to re-export the kit"
            )
        return text.encode()
    raise ContractError("not_csv", f"the taxonomy CSV is a {type(content).__name__}, not bytes")


def _read_uneven(data: bytes) -> tuple[list[str], list[pa.Array], tuple[int, int] | None]:
    """Rows of uneven width, read by the standard library: short rows are padded with empty cells; the
    number and width of the first row longer than the header are returned for the caller to report."""
    try:
        lines = [
            row
            for row in csv.reader(io.StringIO(data.decode(), newline=""))
            if any(cell.strip() for cell in row)
        ]
    except csv.Error as error:
        raise ContractError("malformed_csv", f"the taxonomy CSV cannot be read as CSV ({error})") from None
    if not lines:
        raise ContractError("empty_file", "the taxonomy CSV holds only blank lines")
    header, rows = [cell.strip().casefold() for cell in lines[0]], lines[1:]
    width = len(header)
    overlong = next(((n, len(row)) for n, row in enumerate(rows, start=1) if len(row) > width), None)
    padded = [[*row[:width], *[""] * (width - len(row))] for row in rows]
    columns = zip(*padded, strict=True) if padded else [[] for _ in header]
    return header, [pa.array(column, pa.string()) for column in columns], overlong


# --- parsing: vectorized over a kit's rows ---------------------------------------------------------------

_Problem = tuple[int, int, ContractError]  # (row index, check order within a row, error): the first is raised


def _first(bad: np.ndarray, order: int, error: Callable[[int], ContractError]) -> list[_Problem]:
    """The first row (0-based) where `bad` holds, with the error its 1-based row number gets."""
    hits = np.flatnonzero(bad)
    return [(int(hits[0]), order, error(int(hits[0]) + 1))] if len(hits) else []


def _raise_first(problems: list[_Problem]) -> None:
    """Raise what the first offending row shows first (rows in file order, checks in a row's order)."""
    if problems:
        raise min(problems, key=lambda problem: problem[:2])[2]


def _numbers(
    cells: pa.Array, column: str, order: int, *, required: bool
) -> tuple[np.ndarray, np.ndarray, list[_Problem]]:
    """Finite, non-negative numbers (NaN where blank), the blank mask, and the first bad row if any (a blank
    cell is one when the number is `required`).

    Arrow casts the common case; a column it refuses (Python's float also reads `1_000` or other digits)
    is read value by value with `as_float`, so both paths accept exactly the same numbers.
    """
    trimmed = pc.utf8_trim_whitespace(cells)
    blank = pc.equal(trimmed, "")
    blanks = blank.to_numpy(zero_copy_only=False)
    try:
        if any(text.strip() for text in cells.filter(blank).to_pylist()):
            raise pa.ArrowInvalid("Arrow trims a character Python keeps")
        values = pc.cast(pc.if_else(blank, None, trimmed), pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        values = np.array([_python_number(text) for text in cells.to_pylist()], dtype=np.float64)
    not_number = (~blanks | required) & ~np.isfinite(values)
    negative = ~blanks & (values < 0)
    problems = _first(
        not_number,
        order,
        lambda row: ContractError(
            "non_numeric_abundance", f"row {row}: {column} {shown(cells[row - 1].as_py())} is not a number"
        ),
    )
    problems += _first(
        negative,
        order,
        lambda row: ContractError(
            "non_numeric_abundance", f"row {row}: {column} {float(values[row - 1])} is negative"
        ),
    )
    return values, blanks, problems


def _python_number(text: str) -> float:
    """What `as_float` makes of one cell: NaN for blank or unreadable (the caller tells those apart)."""
    try:
        number = as_float(text)
    except ValueError:
        return math.nan
    return math.nan if number is None else number


def _counts(cells: pa.Array, column: str, order: int) -> tuple[pa.Array, list[_Problem]]:
    """Whole read counts (null where blank) and the first bad row if any."""
    values, blanks, problems = _numbers(cells, column, order, required=False)
    with np.errstate(invalid="ignore"):
        fractional = (
            ~blanks
            & np.isfinite(values)
            & (values >= 0)
            & ((values != np.floor(values)) | (values >= 2.0**63))
        )
    problems += _first(
        fractional,
        order,
        lambda row: ContractError(
            "non_numeric_abundance",
            f"row {row}: {column} {shown(cells[row - 1].as_py())} is not a whole read count",
        ),
    )
    usable = np.where(blanks | ~np.isfinite(values) | (values < 0) | fractional, 0.0, values)
    return pa.array(usable.astype(np.int64), mask=blanks), problems


def _dialect(header: list[str]) -> str:
    for name, columns in DIALECTS.items():
        if set(columns) <= set(header):
            return name
    supported = " | ".join(",".join(columns) for columns in DIALECTS.values())
    raise ContractError(
        "unknown_header",
        f"unknown taxonomy CSV header: columns seen {header[:20]}; supported dialects: {supported}",
    )


@dataclass
class _Rows:
    """A kit's taxa before deduplication: rank index per row (7 for rows that describe no taxon), ..."""

    ranks: np.ndarray
    described: list[tuple[str, str, str] | None]
    fractions: np.ndarray
    counts: pa.Array


def _to_fractions(values: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Percent or fraction, told apart by the largest per-rank sum."""
    totals = np.bincount(ranks, weights=values, minlength=len(RANKS) + 1)
    return values / (100.0 if totals.max(initial=0.0) > PERCENT_THRESHOLD else 1.0)


def _by_rank_total(counts: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    totals = np.bincount(ranks, weights=counts, minlength=len(RANKS) + 1)[ranks]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals != 0, counts / totals, 0.0)


def _parse_greengenes(header: list[str], cells: Callable[[str], pa.Array], rows: int) -> _Rows:
    lineages = cells("taxonomy").to_pylist()
    described = [_describe_lineage(lineage) for lineage in lineages]
    problems = _first(
        np.fromiter((d is None for d in described), dtype=bool, count=rows),
        0,
        lambda row: ContractError(
            "bad_lineage", f"row {row}: taxonomy {shown(lineages[row - 1])} names no taxon"
        ),
    )
    abundances, _, found = _numbers(cells("abundance"), "abundance", 1, required=True)
    problems += found
    count_column = next((c for c in ("count", "read_count", "reads") if c in header), None)
    counts = pa.nulls(rows, pa.int64())
    if count_column:
        counts, found = _counts(cells(count_column), count_column, 2)
        problems += found
    _raise_first(problems)
    ranks = np.fromiter((RANK_INDEX[d[0]] for d in described if d), dtype=np.intp, count=rows)
    return _Rows(ranks, described, _to_fractions(abundances, ranks), counts)


@functools.lru_cache(maxsize=65_536)
def _describe_names(names: tuple[str, ...]) -> tuple[str, str, str] | None:
    """Cached `_describe` of the names found at each canonical rank (the same lineages recur in every kit)."""
    return _describe(dict(zip(RANKS, names, strict=True)))


def _ancestry(first_of: np.ndarray, parent_of: np.ndarray, rank_of: np.ndarray) -> np.ndarray:
    """For each start row, the row naming it or its nearest ancestor at each canonical rank (-1: none).

    All kept rows climb their parent chains together, one level per step; a cycle or a chain deeper than
    MAX_PARENT_DEPTH stops the climb (a rank already filled keeps its nearest name).
    """
    levels = np.full((len(first_of), len(RANKS)), -1, dtype=np.intp)
    current, starts = first_of.copy(), np.arange(len(first_of))
    for _ in range(MAX_PARENT_DEPTH):
        live = current >= 0
        if not live.any():
            break
        rank = np.where(live, rank_of[current], -1)
        settable = live & (rank >= 0)
        rows, ranks, nodes = starts[settable], rank[settable], current[settable]
        unset = levels[rows, ranks] == -1
        levels[rows[unset], ranks[unset]] = nodes[unset]
        current = np.where(live, parent_of[current], -1)
    return levels


def _parse_nodes(header: list[str], cells: Callable[[str], pa.Array], rows: int, dialect: str) -> _Rows:
    id_col, rank_col, name_col = (
        ("taxon", "tax_rank", "tax_name") if dialect == "node_norm" else ("taxon_id", "rank", "name")
    )
    ids = pc.utf8_trim_whitespace(cells(id_col))
    problems = _first(
        pc.equal(ids, "").to_numpy(zero_copy_only=False),
        0,
        lambda row: ContractError(
            "bad_lineage", f"row {row}: {id_col} is empty, so its parents cannot be found"
        ),
    )
    counts, found = _counts(cells("count"), "count", 1)
    problems += found
    norms, norm_blank = np.full(rows, np.nan), np.ones(rows, dtype=bool)
    if "count_norm" in header:
        norms, norm_blank, found = _numbers(cells("count_norm"), "count_norm", 2, required=False)
        problems += found
    spellings = cells(rank_col)
    distinct = pc.unique(spellings)
    canonical = np.array(
        [RANK_INDEX.get(normalize_rank(s) or "", -1) for s in distinct.to_pylist()], dtype=np.intp
    )
    rank_of = canonical[pc.index_in(spellings, value_set=distinct).to_numpy(zero_copy_only=False)]
    names = pc.utf8_trim_whitespace(cells(name_col))
    kept = (rank_of >= 0) & pc.not_equal(names, "").to_numpy(zero_copy_only=False)
    count_blank = np.asarray(counts.is_null().to_numpy(zero_copy_only=False))
    problems += _first(
        kept & count_blank & norm_blank,
        3,
        lambda row: ContractError(
            "non_numeric_abundance", f"row {row}: neither count nor count_norm is given"
        ),
    )
    _raise_first(problems)
    if not kept.any():
        raise ContractError("no_rows", f"no row has a rank from {', '.join(RANKS)}")
    first_of = pc.index_in(ids, value_set=ids).to_numpy(zero_copy_only=False).astype(np.intp)
    parent_of = pc.index_in(pc.utf8_trim_whitespace(cells("parent")), value_set=ids)
    parent_of = parent_of.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    levels = _ancestry(first_of[kept], parent_of, rank_of)
    named = np.array([*names.to_pylist(), ""], dtype=object)  # index -1: no name at that rank
    described = [_describe_names(tuple(row)) for row in named[levels].tolist()]
    ranks = np.fromiter((RANK_INDEX[d[0]] if d else len(RANKS) for d in described), dtype=np.intp)
    kept_counts = counts.filter(pa.array(kept))
    if not norm_blank[kept].any():
        fractions = _to_fractions(norms[kept], ranks)
    elif not count_blank[kept].any():
        fractions = _by_rank_total(kept_counts.to_numpy(zero_copy_only=False).astype(np.float64), ranks)
    else:
        raise ContractError("non_numeric_abundance", "some rows have only count, others only count_norm")
    return _Rows(ranks, described, fractions, kept_counts)


_TAXA_SCHEMA: Final = pa.schema(
    [
        ("rank", pa.string()),
        ("taxon", pa.string()),
        ("lineage", pa.string()),
        ("relative_abundance", pa.float64()),
        ("read_count", pa.int64()),
    ]
)
_RANK_NAMES: Final = pa.array([*RANKS, ""])


def _best_sorted(rows: _Rows) -> pa.Table:
    """One row per (rank, lineage), the largest abundance (the first on a tie), sorted by rank and lineage:
    a parent's own row already includes its unnamed children."""
    described = [d or ("", "", "") for d in rows.described]
    lineages = pa.array([d[2] for d in described], pa.string())
    keys = pa.table(
        {
            "rank": pa.array(rows.ranks),
            "lineage": lineages,
            "abundance": pa.array(rows.fractions),
            "row": pa.array(np.arange(len(described))),
        }
    )
    order = pc.sort_indices(
        keys,
        [("rank", "ascending"), ("lineage", "ascending"), ("abundance", "descending"), ("row", "ascending")],
    )
    ranks, lineage = rows.ranks[order.to_numpy()], lineages.take(order)
    new = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        new[1:] = (ranks[1:] != ranks[:-1]) | pc.not_equal(lineage[1:], lineage[:-1]).to_numpy(
            zero_copy_only=False
        )
    new &= ranks < len(RANKS)  # rows that describe no taxon only counted towards their rank's total
    chosen = order.filter(pa.array(new))
    return pa.Table.from_arrays(
        [
            _RANK_NAMES.take(pa.array(ranks[new])),
            pa.array([d[1] for d in described], pa.string()).take(chosen),
            lineages.take(chosen),
            pa.array(rows.fractions).take(chosen),
            rows.counts.take(chosen),
        ],
        schema=_TAXA_SCHEMA,
    )


def _parse_table(content: bytes | str) -> pa.Table:
    """One kit's taxonomy CSV -> its taxa as columns, sorted by rank and lineage; ContractError if not."""
    header, columns, overlong = _read_rows(content)
    dialect = _dialect(header)
    rows = len(columns[0])
    if not rows:
        raise ContractError("no_rows", f"the taxonomy CSV has a header ({','.join(header)}) but no taxa")
    if overlong is not None:
        number, fields = overlong
        raise ContractError(
            "malformed_csv", f"row {number} has {fields} fields but the header has {len(header)}"
        )
    by_name = dict(zip(header, columns, strict=True))  # a column name given twice: the last one
    if dialect == "greengenes":
        parsed = _parse_greengenes(header, by_name.__getitem__, rows)
    else:
        parsed = _parse_nodes(header, by_name.__getitem__, rows, dialect)
    return _best_sorted(parsed)


def parse_taxonomy_csv(content: bytes | str) -> list[Taxon]:
    """One kit's taxonomy CSV -> its taxa, sorted by rank and lineage; ContractError if it cannot be read."""
    table = _parse_table(content)
    return [Taxon(*row) for row in zip(*(column.to_pylist() for column in table.columns), strict=True)]


def _taxonomy_rows(
    items: Iterable[tuple[str, bytes | str | TaxonomyDecodeError, object]],
    observed_at: datetime,
    provider: str,
) -> TransformResult:
    """Parse each kit's CSV (or report its decoding error); `payload` is what the quarantine fingerprints."""
    rows = TableRows(observed_at)
    kits: list[str] = []
    taxa: list[pa.Table] = []
    for kit_id, content, payload in items:
        try:
            if isinstance(content, TaxonomyDecodeError):
                raise ContractError("bad_base64", f"{content}; ask Biomesight to re-export the kit's CSV")
            table = _parse_table(content)
        except ContractError as rejected:
            rows.quarantine(
                provider=provider,
                entity="kit",
                entity_id=kit_id,
                stage="taxonomy",
                reason=rejected.reason,
                detail=rejected.detail,
                payload=payload,
                excerpt=True,
            )
            continue
        kits.append(kit_id)
        taxa.append(table)
    parsed = pa.concat_tables(taxa) if taxa else _TAXA_SCHEMA.empty_table()
    kit_ids = np.repeat(np.array(kits, dtype=object), [table.num_rows for table in taxa]) if taxa else []
    columns: dict[str, object] = {"kit_id": pa.array(kit_ids, pa.string())}
    columns.update({name: parsed.column(name).combine_chunks() for name in _TAXA_SCHEMA.names})
    result = rows.result()
    result.tables["taxonomy"] = table_from_columns(
        "taxonomy", columns, {"provider": provider, "observed_at": observed_at}
    )
    return result


def transform_biomesight_taxonomy(
    csv_by_kit: Mapping[str, bytes | str], *, observed_at: datetime, provider: str = "biomesight"
) -> TransformResult:
    """Decoded taxonomy CSV bytes per kit id -> taxonomy rows; a kit that cannot be read is quarantined."""
    return _taxonomy_rows(((kit, csv, csv) for kit, csv in csv_by_kit.items()), observed_at, provider)


def transform_biomesight_taxonomy_base64(
    base64_by_kit: Mapping[str, str | bytes], *, observed_at: datetime, provider: str = "biomesight"
) -> TransformResult:
    """Like `transform_biomesight_taxonomy`, for the raw base64 `csv` field: bad base64 becomes quarantine."""

    def decoded() -> Iterable[tuple[str, bytes | TaxonomyDecodeError, object]]:
        for kit_id, text in base64_by_kit.items():
            try:
                yield kit_id, decode_base64_csv(text), text
            except TaxonomyDecodeError as error:
                yield kit_id, error, text

    return _taxonomy_rows(decoded(), observed_at, provider)
