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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

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


def _number(value: str, *, row: int, column: str) -> float:
    try:
        number = as_float(value)
    except ValueError:
        number = math.nan
    if number is None or math.isnan(number):
        raise ContractError("non_numeric_abundance", f"row {row}: {column} {shown(value)} is not a number")
    if number < 0:
        raise ContractError("non_numeric_abundance", f"row {row}: {column} {number} is negative")
    return number


def _count(value: str, *, row: int, column: str) -> int | None:
    if not value.strip():
        return None
    number = _number(value, row=row, column=column)
    if not number.is_integer() or number >= 2**63:
        raise ContractError(
            "non_numeric_abundance", f"row {row}: {column} {shown(value)} is not a whole read count"
        )
    return int(number)


def _read_rows(content: bytes | str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header (trimmed, lower-case) and numbered non-blank data rows; ContractError for what is not a CSV."""
    if isinstance(content, bytes | bytearray | memoryview):
        raw = bytes(content)
        if not raw.strip():
            raise ContractError(
                "empty_file", "the taxonomy CSV is empty; ask Biomesight to re-export the kit"
            )
        # Spreadsheet tools sometimes save UTF-16 with a byte-order mark; that is still readable text.
        encoding = "utf-16" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as error:
            raise ContractError(
                "not_utf8",
                f"the taxonomy CSV is not {encoding.upper().removesuffix('-SIG')} text "
                f"(byte {error.start} is 0x{raw[error.start]:02x})",
            ) from None
    elif isinstance(content, str):
        text = storable(content.removeprefix("\ufeff"))
        if not text.strip():
            raise ContractError(
                "empty_file", "the taxonomy CSV is empty; ask Biomesight to re-export the kit"
            )
    else:
        raise ContractError("not_csv", f"the taxonomy CSV is a {type(content).__name__}, not bytes")
    try:
        lines = [
            row for row in csv.reader(io.StringIO(text, newline="")) if any(cell.strip() for cell in row)
        ]
    except csv.Error as error:
        raise ContractError("malformed_csv", f"the taxonomy CSV cannot be read as CSV ({error})") from None
    if not lines:
        raise ContractError("empty_file", "the taxonomy CSV holds only blank lines")
    header = [cell.strip().casefold() for cell in lines[0]]
    return header, list(enumerate(lines[1:], start=1))


def _dialect(header: list[str]) -> str:
    for name, columns in DIALECTS.items():
        if set(columns) <= set(header):
            return name
    supported = " | ".join(",".join(columns) for columns in DIALECTS.values())
    raise ContractError(
        "unknown_header",
        f"unknown taxonomy CSV header: columns seen {header[:20]}; supported dialects: {supported}",
    )


def _records(header: list[str], rows: list[tuple[int, list[str]]]) -> list[tuple[int, dict[str, str]]]:
    if not rows:
        raise ContractError("no_rows", f"the taxonomy CSV has a header ({','.join(header)}) but no taxa")
    records = []
    for number, cells in rows:
        if len(cells) > len(header):
            raise ContractError(
                "malformed_csv", f"row {number} has {len(cells)} fields but the header has {len(header)}"
            )
        records.append((number, dict(zip(header, [*cells, *[""] * (len(header) - len(cells))], strict=True))))
    return records


def _to_fractions(values: list[float], ranks: list[str]) -> list[float]:
    """Percent or fraction, told apart by the largest per-rank sum."""
    totals: dict[str, float] = {}
    for value, rank in zip(values, ranks, strict=True):
        totals[rank] = totals.get(rank, 0.0) + value
    scale = 100.0 if max(totals.values(), default=0.0) > PERCENT_THRESHOLD else 1.0
    return [value / scale for value in values]


def _by_rank_total(counts: list[float], ranks: list[str]) -> list[float]:
    totals: dict[str, float] = {}
    for count, rank in zip(counts, ranks, strict=True):
        totals[rank] = totals.get(rank, 0.0) + count
    return [count / totals[rank] if totals[rank] else 0.0 for count, rank in zip(counts, ranks, strict=True)]


def _parse_greengenes(records: list[tuple[int, dict[str, str]]]) -> list[Taxon]:
    described, abundances, counts = [], [], []
    count_column = next((c for c in ("count", "read_count", "reads") if c in records[0][1]), None)
    for number, record in records:
        description = _describe_lineage(record["taxonomy"])
        if description is None:
            raise ContractError(
                "bad_lineage", f"row {number}: taxonomy {shown(record['taxonomy'])} names no taxon"
            )
        described.append(description)
        abundances.append(_number(record["abundance"], row=number, column="abundance"))
        counts.append(_count(record[count_column], row=number, column=count_column) if count_column else None)
    fractions = _to_fractions(abundances, [rank for rank, _, _ in described])
    return [
        Taxon(rank, taxon, lineage, fraction, count)
        for (rank, taxon, lineage), fraction, count in zip(described, fractions, counts, strict=True)
    ]


def _lineages(
    nodes: dict[str, tuple[str | None, str, str]],
) -> dict[str, dict[str, str]]:
    """Node id -> rank -> name of itself and its ancestors at canonical ranks."""
    levels: dict[str, dict[str, str]] = {}
    for node_id in nodes:
        chain: dict[str, str] = {}
        current, seen = node_id, set()
        while current in nodes and current not in seen and len(seen) < MAX_PARENT_DEPTH:
            seen.add(current)
            rank, name, parent = nodes[current]
            if rank is not None and rank not in chain:
                chain[rank] = name
            current = parent
        levels[node_id] = chain
    return levels


def _parse_nodes(records: list[tuple[int, dict[str, str]]], dialect: str) -> list[Taxon]:
    id_col, rank_col, name_col = (
        ("taxon", "tax_rank", "tax_name") if dialect == "node_norm" else ("taxon_id", "rank", "name")
    )
    nodes: dict[str, tuple[str | None, str, str]] = {}
    kept: list[tuple[str, int | None, float | None]] = []  # node id, count, count_norm of canonical-rank rows
    for number, record in records:
        node_id = record[id_col].strip()
        if not node_id:
            raise ContractError(
                "bad_lineage", f"row {number}: {id_col} is empty, so its parents cannot be found"
            )
        rank = normalize_rank(record[rank_col])
        name = record[name_col].strip()
        nodes.setdefault(node_id, (rank, name, record["parent"].strip()))
        count = _count(record["count"], row=number, column="count")
        norm = record.get("count_norm", "")
        norm_value = _number(norm, row=number, column="count_norm") if norm.strip() else None
        if rank is not None and name:
            if count is None and norm_value is None:
                raise ContractError(
                    "non_numeric_abundance", f"row {number}: neither count nor count_norm is given"
                )
            kept.append((node_id, count, norm_value))
    if not kept:
        raise ContractError("no_rows", f"no row has a rank from {', '.join(RANKS)}")
    levels = _lineages(nodes)
    described = [_describe(levels[node_id]) for node_id, _, _ in kept]
    ranks = [d[0] if d else "" for d in described]
    if all(norm is not None for _, _, norm in kept):
        fractions = _to_fractions([norm or 0.0 for _, _, norm in kept], ranks)
    elif all(count is not None for _, count, _ in kept):
        fractions = _by_rank_total([float(count or 0) for _, count, _ in kept], ranks)
    else:
        raise ContractError("non_numeric_abundance", "some rows have only count, others only count_norm")
    return [
        Taxon(d[0], d[1], d[2], fraction, count)
        for d, fraction, (_, count, _) in zip(described, fractions, kept, strict=True)
        if d is not None
    ]


def parse_taxonomy_csv(content: bytes | str) -> list[Taxon]:
    """One kit's taxonomy CSV -> its taxa, sorted by rank and lineage; ContractError if it cannot be read."""
    header, rows = _read_rows(content)
    dialect = _dialect(header)
    records = _records(header, rows)
    taxa = _parse_greengenes(records) if dialect == "greengenes" else _parse_nodes(records, dialect)
    best: dict[tuple[str, str], Taxon] = {}
    for taxon in taxa:
        key = (taxon.rank, taxon.lineage)
        if key not in best or taxon.relative_abundance > best[key].relative_abundance:
            best[key] = taxon
    return sorted(best.values(), key=lambda t: (RANK_INDEX[t.rank], t.lineage))


def _taxonomy_rows(
    items: Iterable[tuple[str, bytes | str | TaxonomyDecodeError, object]],
    observed_at: datetime,
    provider: str,
) -> TransformResult:
    """Parse each kit's CSV (or report its decoding error); `payload` is what the quarantine fingerprints."""
    rows = TableRows(observed_at)
    columns: dict[str, list[object]] = {
        c: [] for c in ("kit_id", "rank", "taxon", "lineage", "relative_abundance", "read_count")
    }
    for kit_id, content, payload in items:
        try:
            if isinstance(content, TaxonomyDecodeError):
                raise ContractError("bad_base64", f"{content}; ask Biomesight to re-export the kit's CSV")
            taxa = parse_taxonomy_csv(content)
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
        for taxon in taxa:
            columns["kit_id"].append(kit_id)
            columns["rank"].append(taxon.rank)
            columns["taxon"].append(taxon.taxon)
            columns["lineage"].append(taxon.lineage)
            columns["relative_abundance"].append(taxon.relative_abundance)
            columns["read_count"].append(taxon.read_count)
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
