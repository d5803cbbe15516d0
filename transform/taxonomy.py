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
from typing import Any, Final

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


# --- reading ------------------------------------------------------------------------------------------------
#
# A sync hands the transform a batch of kits. Kits whose CSV is plain (no quotes, a header line, no blank
# rows, every row as wide as the header) are read together: one pyarrow CSV read per distinct header, each
# row prefixed with its kit's index, and every step after that vectorized over all their rows. Any other
# kit, and any kit the batch finds a problem in, is read on its own by the standard library's reader
# (pyarrow's reader costs more than the whole file for a single kit), where the first problem is named with
# its row.

_BATCH_READ: Final = pacsv.ReadOptions(autogenerate_column_names=True, use_threads=False)
# Every cell is read as text (numbers are checked below, per row).
_MAX_BATCH_COLUMNS: Final = 256  # the kit index column included
_BATCH_CONVERT: Final = pacsv.ConvertOptions(
    column_types={f"f{i}": pa.string() for i in range(_MAX_BATCH_COLUMNS)}, strings_can_be_null=False
)


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


def _read_one(data: bytes) -> tuple[list[str], list[pa.Array], tuple[int, int] | None]:
    """One kit's CSV: header (trimmed, lower-case), its non-blank data rows as string columns (short rows
    padded with empty cells), and the number (from 1) and width of the first row wider than the header."""
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


def _plain(data: bytes) -> tuple[bytes, bytes] | None:
    """(header line, body without trailing line breaks) of a CSV that can join a batch, else None."""
    if b'"' in data:
        return None
    if b"\r" in data:  # without quotes, every carriage return ends a line
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    head, _, body = data.partition(b"\n")
    body = body.rstrip(b"\n")
    return (head, body) if head.strip() and body else None


def _read_batch(members: list[tuple[int, bytes]], width: int) -> tuple[list[pa.Array], np.ndarray, set[int]]:
    """The bodies of kits sharing a header, read at once: data columns, kit index per row, and the kits
    with a row of another width or a blank row (the caller reads those on their own)."""
    uneven: set[int] = set()

    def invalid(row: Any) -> str:
        uneven.add(int(row.text.split(",", 1)[0]))
        return "skip"

    buffer = b"".join(b"%d,%s\n" % (index, body.replace(b"\n", b"\n%d," % index)) for index, body in members)
    if width >= _MAX_BATCH_COLUMNS:
        raise pa.ArrowInvalid(f"{width} columns: more than the batch reader types as text")
    options = pacsv.ParseOptions(ignore_empty_lines=True, invalid_row_handler=invalid)
    table = pacsv.read_csv(pa.py_buffer(buffer), _BATCH_READ, options, _BATCH_CONVERT)
    if table.num_columns != width + 1:  # every row was skipped
        return (
            [pa.array([], pa.string())] * width,
            np.zeros(0, dtype=np.intp),
            uneven | {i for i, _ in members},
        )
    columns = [column.combine_chunks() for column in table.columns]
    kits = pc.cast(columns[0], pa.int64()).to_numpy().astype(np.intp)
    blank = functools.reduce(pc.and_, [pc.equal(pc.utf8_trim_whitespace(c), "") for c in columns[1:]])
    blank_rows = blank.to_numpy(zero_copy_only=False)
    return columns[1:], kits, uneven | set(np.unique(kits[blank_rows]).tolist())


def _dialect(header: list[str]) -> str:
    for name, columns in DIALECTS.items():
        if set(columns) <= set(header):
            return name
    supported = " | ".join(",".join(columns) for columns in DIALECTS.values())
    raise ContractError(
        "unknown_header",
        f"unknown taxonomy CSV header: columns seen {header[:20]}; supported dialects: {supported}",
    )


# --- parsing: vectorized over the rows of one kit or of a batch of kits -------------------------------------

# Rows failing a check, the check's order within a row, and the error for a row number (from 1).
_Check = tuple[np.ndarray, int, Callable[[int], ContractError]]
# Kits failing a whole-kit check (a mask over kit indices), and the error.
_KitCheck = tuple[np.ndarray, ContractError]


@dataclass
class _Kits:
    """The rows being parsed: data columns by header name, and each row's kit (index into the batch)."""

    header: list[str]
    cells: dict[str, pa.Array]
    kits: np.ndarray
    count: int  # kit indices are below this
    keys: pa.Array | None = None  # each row's kit index as text (None: one kit), to keep node ids apart

    @property
    def rows(self) -> int:
        return len(self.kits)


def _raise_first(checks: list[_Check]) -> None:
    """Raise what the first offending row shows first (rows in file order, checks in a row's order)."""
    firsts = [(int(np.flatnonzero(bad)[0]), order, error) for bad, order, error in checks if bad.any()]
    if firsts:
        row, _, error = min(firsts, key=lambda first: first[:2])
        raise error(row + 1)


def _numbers(
    cells: pa.Array, column: str, order: int, *, required: bool
) -> tuple[np.ndarray, np.ndarray, list[_Check]]:
    """Numbers (NaN where blank or unreadable), the blank mask, and the checks: a number, not negative (a
    blank cell fails the first when `required`).

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
    with np.errstate(invalid="ignore"):
        not_number = (~blanks | required) & ~np.isfinite(values)
        negative = ~blanks & (values < 0)
    checks: list[_Check] = [
        (
            not_number,
            order,
            lambda row: ContractError(
                "non_numeric_abundance",
                f"row {row}: {column} {shown(cells[row - 1].as_py())} is not a number",
            ),
        ),
        (
            negative,
            order,
            lambda row: ContractError(
                "non_numeric_abundance", f"row {row}: {column} {float(values[row - 1])} is negative"
            ),
        ),
    ]
    return values, blanks, checks


def _python_number(text: str) -> float:
    """What `as_float` makes of one cell: NaN for blank or unreadable (the caller tells those apart)."""
    try:
        number = as_float(text)
    except ValueError:
        return math.nan
    return math.nan if number is None else number


def _counts(cells: pa.Array, column: str, order: int) -> tuple[pa.Array, list[_Check]]:
    """Whole read counts (null where blank; 0 where a check fails) and the checks."""
    values, blanks, checks = _numbers(cells, column, order, required=False)
    with np.errstate(invalid="ignore"):
        usable = ~blanks & np.isfinite(values) & (values >= 0)
        fractional = usable & ((values != np.floor(values)) | (values >= 2.0**63))
    checks.append(
        (
            fractional,
            order,
            lambda row: ContractError(
                "non_numeric_abundance",
                f"row {row}: {column} {shown(cells[row - 1].as_py())} is not a whole read count",
            ),
        )
    )
    whole = np.where(usable & ~fractional, values, 0.0).astype(np.int64)
    return pa.array(whole, mask=blanks), checks


@dataclass
class _Rows:
    """Parsed rows before deduplication: kit, rank index (7: the row describes no taxon), description."""

    kits: np.ndarray
    ranks: np.ndarray
    described: list[tuple[str, str, str] | None]
    fractions: np.ndarray
    counts: pa.Array


_NO_RANK: Final = len(RANKS)
_SLOTS: Final = len(RANKS) + 1  # per-kit totals: the canonical ranks, and rows that describe no taxon


def _rank_totals(values: np.ndarray, ranks: np.ndarray, rows: _Kits) -> np.ndarray:
    """Sum of `values` per kit and rank: shape (kits, rank slots)."""
    slots = rows.kits * _SLOTS + ranks
    return np.bincount(slots, weights=values, minlength=rows.count * _SLOTS).reshape(rows.count, _SLOTS)


def _to_fractions(values: np.ndarray, ranks: np.ndarray, rows: _Kits) -> np.ndarray:
    """Percent or fraction, told apart per kit by its largest per-rank sum."""
    largest = _rank_totals(values, ranks, rows).max(axis=1, initial=0.0)
    return values / np.where(largest > PERCENT_THRESHOLD, 100.0, 1.0)[rows.kits]


def _by_rank_total(counts: np.ndarray, ranks: np.ndarray, rows: _Kits) -> np.ndarray:
    totals = _rank_totals(counts, ranks, rows)[rows.kits, ranks]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals != 0, counts / totals, 0.0)


def _parse_greengenes(rows: _Kits) -> tuple[_Rows, list[_Check], list[_KitCheck]]:
    lineages = rows.cells["taxonomy"].to_pylist()
    described = [_describe_lineage(lineage) for lineage in lineages]
    ranks = np.fromiter((RANK_INDEX[d[0]] if d else _NO_RANK for d in described), np.intp, len(described))
    checks: list[_Check] = [
        (
            ranks == _NO_RANK,
            0,
            lambda row: ContractError(
                "bad_lineage", f"row {row}: taxonomy {shown(lineages[row - 1])} names no taxon"
            ),
        )
    ]
    abundances, _, found = _numbers(rows.cells["abundance"], "abundance", 1, required=True)
    checks += found
    count_column = next((c for c in ("count", "read_count", "reads") if c in rows.cells), None)
    counts = pa.nulls(rows.rows, pa.int64())
    if count_column:
        counts, found = _counts(rows.cells[count_column], count_column, 2)
        checks += found
    return _Rows(rows.kits, ranks, described, _to_fractions(abundances, ranks, rows), counts), checks, []


@functools.lru_cache(maxsize=65_536)
def _describe_names(names: tuple[str, ...]) -> tuple[str, str, str] | None:
    """Cached `_describe` of the names found at each canonical rank (the same lineages recur in every kit)."""
    return _describe(dict(zip(RANKS, names, strict=True)))


def _ancestry(first_of: np.ndarray, parent_of: np.ndarray, rank_of: np.ndarray) -> np.ndarray:
    """For each start row, the row naming it or its nearest ancestor at each canonical rank (-1: none).

    All rows climb their parent chains together, one level per step; a cycle or a chain deeper than
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
        at, ranks, nodes = starts[settable], rank[settable], current[settable]
        unset = levels[at, ranks] == -1
        levels[at[unset], ranks[unset]] = nodes[unset]
        current = np.where(live, parent_of[current], -1)
    return levels


def _node_keys(ids: pa.Array, rows: _Kits) -> pa.Array:
    """Node ids made unique across the kits of a batch."""
    return ids if rows.keys is None else pc.binary_join_element_wise(rows.keys, ids, "\x1f")


def _parse_nodes(rows: _Kits, dialect: str) -> tuple[_Rows, list[_Check], list[_KitCheck]]:
    id_col, rank_col, name_col = (
        ("taxon", "tax_rank", "tax_name") if dialect == "node_norm" else ("taxon_id", "rank", "name")
    )
    ids = pc.utf8_trim_whitespace(rows.cells[id_col])
    checks: list[_Check] = [
        (
            pc.equal(ids, "").to_numpy(zero_copy_only=False),
            0,
            lambda row: ContractError(
                "bad_lineage", f"row {row}: {id_col} is empty, so its parents cannot be found"
            ),
        )
    ]
    counts, found = _counts(rows.cells["count"], "count", 1)
    checks += found
    norms, norm_blank = np.full(rows.rows, np.nan), np.ones(rows.rows, dtype=bool)
    if "count_norm" in rows.cells:
        norms, norm_blank, found = _numbers(rows.cells["count_norm"], "count_norm", 2, required=False)
        checks += found
    spellings = rows.cells[rank_col]
    distinct = pc.unique(spellings)
    canonical = np.array(
        [RANK_INDEX.get(normalize_rank(s) or "", -1) for s in distinct.to_pylist()], dtype=np.intp
    )
    rank_of = canonical[pc.index_in(spellings, value_set=distinct).to_numpy(zero_copy_only=False)]
    names = pc.utf8_trim_whitespace(rows.cells[name_col])
    kept = (rank_of >= 0) & pc.not_equal(names, "").to_numpy(zero_copy_only=False)
    count_blank = counts.is_null().to_numpy(zero_copy_only=False)
    checks.append(
        (
            kept & count_blank & norm_blank,
            3,
            lambda row: ContractError(
                "non_numeric_abundance", f"row {row}: neither count nor count_norm is given"
            ),
        )
    )
    keys = _node_keys(ids, rows)
    first_of = pc.index_in(keys, value_set=keys).to_numpy(zero_copy_only=False).astype(np.intp)
    parent_keys = _node_keys(pc.utf8_trim_whitespace(rows.cells["parent"]), rows)
    parent_of = pc.index_in(parent_keys, value_set=keys).fill_null(-1).to_numpy(zero_copy_only=False)
    levels = _ancestry(first_of[kept], parent_of.astype(np.intp), rank_of)
    named = np.array([*names.to_pylist(), ""], dtype=object)  # index -1: no name at that rank
    described = [_describe_names(tuple(row)) for row in named[levels].tolist()]
    ranks = np.fromiter((RANK_INDEX[d[0]] if d else _NO_RANK for d in described), np.intp, len(described))
    kits = rows.kits[kept]
    kept_rows = _Kits(rows.header, {}, kits, rows.count)
    per_kit = functools.partial(np.bincount, kits, minlength=rows.count)
    no_norm, no_count = per_kit(norm_blank[kept]) > 0, per_kit(count_blank[kept]) > 0
    by_norm = _to_fractions(np.nan_to_num(norms[kept]), ranks, kept_rows)
    kept_counts = counts.filter(pa.array(kept))
    by_count = _by_rank_total(kept_counts.to_numpy(zero_copy_only=False).astype(np.float64), ranks, kept_rows)
    fractions = np.where(no_norm[kits], by_count, by_norm)
    kit_checks: list[_KitCheck] = [
        (per_kit() == 0, ContractError("no_rows", f"no row has a rank from {', '.join(RANKS)}")),
        (
            no_norm & no_count,
            ContractError("non_numeric_abundance", "some rows have only count, others only count_norm"),
        ),
    ]
    return _Rows(kits, ranks, described, fractions, kept_counts), checks, kit_checks


_TAXA_SCHEMA: Final = pa.schema(
    [
        ("kit", pa.int64()),
        ("rank", pa.string()),
        ("taxon", pa.string()),
        ("lineage", pa.string()),
        ("relative_abundance", pa.float64()),
        ("read_count", pa.int64()),
    ]
)
_RANK_NAMES: Final = pa.array([*RANKS, ""])


def _best_sorted(rows: _Rows) -> pa.Table:
    """Per kit, one row per (rank, lineage), the largest abundance (the first on a tie), sorted by kit, rank
    and lineage: a parent's own row already includes its unnamed children."""
    described = [d or ("", "", "") for d in rows.described]
    lineages = pa.array([d[2] for d in described], pa.string())
    keys = pa.table(
        {
            "kit": pa.array(rows.kits),
            "rank": pa.array(rows.ranks),
            "lineage": lineages,
            "abundance": pa.array(rows.fractions),
            "row": pa.array(np.arange(len(described))),
        }
    )
    order = pc.sort_indices(
        keys,
        [
            ("kit", "ascending"),
            ("rank", "ascending"),
            ("lineage", "ascending"),
            ("abundance", "descending"),
            ("row", "ascending"),
        ],
    )
    at = order.to_numpy()
    kits, ranks, lineage = rows.kits[at], rows.ranks[at], lineages.take(order)
    new = np.ones(len(at), dtype=bool)
    if len(at) > 1:
        same_lineage = pc.equal(lineage[1:], lineage[:-1]).to_numpy(zero_copy_only=False)
        new[1:] = (kits[1:] != kits[:-1]) | (ranks[1:] != ranks[:-1]) | ~same_lineage
    new &= ranks != _NO_RANK  # rows that describe no taxon only counted towards their rank's total
    chosen = pa.array(at[new])
    return pa.Table.from_arrays(
        [
            pa.array(kits[new], pa.int64()),
            _RANK_NAMES.take(pa.array(ranks[new])),
            pa.array([d[1] for d in described], pa.string()).take(chosen),
            lineages.take(chosen),
            pa.array(rows.fractions).take(chosen),
            rows.counts.take(chosen),
        ],
        schema=_TAXA_SCHEMA,
    )


def _parse(rows: _Kits, dialect: str) -> tuple[pa.Table, list[_Check], list[_KitCheck]]:
    if dialect == "greengenes":
        parsed, checks, kit_checks = _parse_greengenes(rows)
    else:
        parsed, checks, kit_checks = _parse_nodes(rows, dialect)
    return _best_sorted(parsed), checks, kit_checks


def _parse_one(data: bytes) -> pa.Table:
    """One kit's CSV (UTF-8) -> its taxa, sorted by rank and lineage; ContractError for the first problem."""
    header, columns, overlong = _read_one(data)
    dialect = _dialect(header)
    if not len(columns[0]):
        raise ContractError("no_rows", f"the taxonomy CSV has a header ({','.join(header)}) but no taxa")
    if overlong is not None:
        number, fields = overlong
        raise ContractError(
            "malformed_csv", f"row {number} has {fields} fields but the header has {len(header)}"
        )
    cells = dict(zip(header, columns, strict=True))  # a column name given twice: the last one
    table, checks, kit_checks = _parse(_Kits(header, cells, np.zeros(len(columns[0]), np.intp), 1), dialect)
    _raise_first(checks)
    for failed, error in kit_checks:
        if failed[0]:
            raise error
    return table


def _parse_batch(head: bytes, members: list[tuple[int, bytes]], count: int) -> tuple[pa.Table, set[int]]:
    """Kits sharing a header line -> their taxa, and the kits to read on their own (a problem was found)."""
    header = [cell.strip().casefold() for cell in head.decode().split(",")]
    everyone = {index for index, _ in members}
    try:
        dialect = _dialect(header)
        columns, kits, alone = _read_batch(members, len(header))
    except (ContractError, pa.ArrowException):  # each kit on its own says what is wrong with it
        return _TAXA_SCHEMA.empty_table(), everyone
    if not len(kits):
        return _TAXA_SCHEMA.empty_table(), everyone
    keys = pc.cast(pa.array(kits), pa.string())
    rows = _Kits(header, dict(zip(header, columns, strict=True)), kits, count, keys)
    table, checks, kit_checks = _parse(rows, dialect)
    for bad, _, _ in checks:
        alone.update(np.unique(kits[bad]).tolist())
    for failed, _ in kit_checks:
        alone.update(np.flatnonzero(failed).tolist())
    alone &= everyone
    if alone:
        table = table.filter(pc.invert(pc.is_in(table.column("kit"), pa.array(sorted(alone), pa.int64()))))
    return table, alone


def parse_taxonomy_csv(content: bytes | str) -> list[Taxon]:
    """One kit's taxonomy CSV -> its taxa, sorted by rank and lineage; ContractError if it cannot be read."""
    table = _parse_one(_utf8(content)).drop_columns(["kit"])
    return [Taxon(*row) for row in zip(*(column.to_pylist() for column in table.columns), strict=True)]


def _taxonomy_rows(
    items: Iterable[tuple[str, bytes | str | TaxonomyDecodeError, object]],
    observed_at: datetime,
    provider: str,
) -> TransformResult:
    """Parse each kit's CSV (or report its decoding error); `payload` is what the quarantine fingerprints."""
    kits = list(items)
    data: dict[int, bytes] = {}
    rejected: dict[int, ContractError] = {}
    batches: dict[bytes, list[tuple[int, bytes]]] = {}
    for index, (_, content, _) in enumerate(kits):
        try:
            if isinstance(content, TaxonomyDecodeError):
                raise ContractError("bad_base64", f"{content}; ask Biomesight to re-export the kit's CSV")
            data[index] = _utf8(content)
        except ContractError as error:
            rejected[index] = error
            continue
        plain = _plain(data[index])
        if plain is not None:
            batches.setdefault(plain[0], []).append((index, plain[1]))
    tables, batched = [], set()
    for head, members in batches.items():
        table, alone = _parse_batch(head, members, len(kits))
        tables.append(table)
        batched |= {index for index, _ in members} - alone
    for index in sorted(data.keys() - batched):
        try:
            table = _parse_one(data[index])
            kit = pa.array(np.full(table.num_rows, index), pa.int64())
            tables.append(table.set_column(0, _TAXA_SCHEMA.field("kit"), kit))
        except ContractError as error:
            rejected[index] = error
    rows = TableRows(observed_at)
    for index in sorted(rejected):
        kit_id, _, payload = kits[index]
        rows.quarantine(
            provider=provider,
            entity="kit",
            entity_id=kit_id,
            stage="taxonomy",
            reason=rejected[index].reason,
            detail=rejected[index].detail,
            payload=payload,
            excerpt=True,
        )
    parsed = pa.concat_tables(tables) if tables else _TAXA_SCHEMA.empty_table()
    parsed = parsed.take(pc.sort_indices(parsed, [("kit", "ascending")]))  # the kits' order, each sorted
    kit_ids = pa.array([kit_id for kit_id, _, _ in kits], pa.string())
    columns: dict[str, object] = {"kit_id": kit_ids.take(parsed.column("kit").combine_chunks())}
    columns.update({name: parsed.column(name).combine_chunks() for name in _TAXA_SCHEMA.names[1:]})
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
