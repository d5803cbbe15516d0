"""Taxonomy CSVs in three dialects -> identical long rows; every unreadable file -> one quarantine row."""

from __future__ import annotations

import base64
import csv
import io
from collections import defaultdict
from datetime import datetime

import pytest

from transform.schemas import TABLES
from transform.taxonomy import (
    RANKS,
    TaxonomyDecodeError,
    decode_base64_csv,
    normalize_rank,
    parse_taxonomy_csv,
    transform_biomesight_taxonomy,
    transform_biomesight_taxonomy_base64,
)

# One sample: species-level read counts with their full lineage (kingdom .. genus, species epithet).
SPECIES = [
    (
        ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales", "Ruminococcaceae", "Faecalibacterium"),
        "prausnitzii",
        500,
    ),
    (
        ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales", "Lachnospiraceae", "Roseburia"),
        "intestinalis",
        120,
    ),
    (
        ("Bacteria", "Bacteroidetes", "Bacteroidia", "Bacteroidales", "Bacteroidaceae", "Bacteroides"),
        "fragilis",
        300,
    ),
    (
        ("Bacteria", "Bacteroidetes", "Bacteroidia", "Bacteroidales", "Bacteroidaceae", "Bacteroides"),
        "vulgatus",
        80,
    ),
]
PREFIX = "kpcofgs"
TOTAL = sum(count for _, _, count in SPECIES)


def _nodes() -> list[tuple[tuple[str, ...], int]]:
    """Every taxon of the sample as (path of names from kingdom, reads), summed over its species."""
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    for lineage, epithet, count in SPECIES:
        path = (*lineage, epithet)
        for depth in range(1, len(path) + 1):
            counts[path[:depth]] += count
    return sorted(counts.items())


def _csv(header: list[str], rows: list[list[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def greengenes_csv(*, percent: bool, with_count: bool) -> bytes:
    rows = []
    for path, count in _nodes():
        lineage = "; ".join(f"{PREFIX[i]}__{name}" for i, name in enumerate(path))
        abundance = 100 * count / TOTAL if percent else count / TOTAL
        rows.append([lineage, abundance, count] if with_count else [lineage, abundance])
    return _csv(["taxonomy", "abundance", "count"] if with_count else ["taxonomy", "abundance"], rows)


def node_norm_csv() -> bytes:
    """tax_name,tax_rank,count,count_norm,taxon,parent with Kraken-style rank codes and a root node."""
    ids = {path: str(100 + i) for i, (path, _) in enumerate(_nodes())}
    rows: list[list[object]] = [["root", "R", TOTAL, 1.0, "1", ""]]
    for path, count in _nodes():
        name = f"{path[-2]} {path[-1]}" if len(path) == 7 else path[-1]
        parent = ids[path[:-1]] if len(path) > 1 else "1"
        rows.append([name, PREFIX[len(path) - 1].upper(), count, count / TOTAL, ids[path], parent])
    return _csv(["tax_name", "tax_rank", "count", "count_norm", "taxon", "parent"], rows)


def node_count_csv() -> bytes:
    """taxon_id,rank,name,parent,count with full rank names, a strain below one species, rows shuffled."""
    ids = {path: f"t{i}" for i, (path, _) in enumerate(_nodes())}
    rows: list[list[object]] = []
    for path, count in reversed(_nodes()):
        name = f"{path[-2]} {path[-1]}" if len(path) == 7 else path[-1]
        rows.append([ids[path], RANKS[len(path) - 1].capitalize(), name, ids.get(path[:-1], ""), count])
    first_species = next(path for path, _ in _nodes() if len(path) == 7)
    rows.append(["strain-1", "strain", "F. prausnitzii A2-165", ids[first_species], 400])
    return _csv(["taxon_id", "rank", "name", "parent", "count"], rows)


def _comparable(csv_bytes: bytes) -> list[tuple[str, str, str, int | None]]:
    return [(t.rank, t.taxon, t.lineage, t.read_count) for t in parse_taxonomy_csv(csv_bytes)]


def test_dialects_parse_to_identical_rows() -> None:
    reference = parse_taxonomy_csv(greengenes_csv(percent=True, with_count=True))
    assert len(reference) == len(_nodes())
    for other in (node_norm_csv(), node_count_csv(), greengenes_csv(percent=False, with_count=True)):
        taxa = parse_taxonomy_csv(other)
        assert [(t.rank, t.taxon, t.lineage, t.read_count) for t in taxa] == [
            (t.rank, t.taxon, t.lineage, t.read_count) for t in reference
        ]
        assert [t.relative_abundance for t in taxa] == pytest.approx(
            [t.relative_abundance for t in reference]
        )


def test_rows_match_the_sample() -> None:
    taxa = {(t.rank, t.taxon): t for t in parse_taxonomy_csv(node_count_csv())}
    lineage, epithet, count = SPECIES[0]
    species = taxa[("species", f"{lineage[-1]} {epithet}")]
    assert species.lineage == "; ".join(f"{PREFIX[i]}__{n}" for i, n in enumerate((*lineage, epithet)))
    assert species.read_count == count
    assert species.relative_abundance == pytest.approx(count / TOTAL)
    assert ("strain", "F. prausnitzii A2-165") not in taxa


@pytest.mark.parametrize(
    "content", [greengenes_csv(percent=True, with_count=False), node_norm_csv(), node_count_csv()]
)
def test_fractions_sum_to_one_per_rank(content: bytes) -> None:
    sums: dict[str, float] = defaultdict(float)
    for taxon in parse_taxonomy_csv(content):
        sums[taxon.rank] += taxon.relative_abundance
    assert set(sums) == set(RANKS)
    assert all(total == pytest.approx(1.0) for total in sums.values())


def test_empty_deeper_levels_put_the_row_at_the_level_above() -> None:
    content = (
        b"taxonomy,abundance\n"
        b"k__Bacteria; p__Firmicutes; c__; o__; f__; g__; s__,0.6\n"
        b"k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Ruminococcaceae; "
        b"g__Faecalibacterium; s__,0.25\n"
        b"k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Ruminococcaceae; "
        b"g__Faecalibacterium; s__prausnitzii,0.2\n"
    )
    taxa = {t.rank: t for t in parse_taxonomy_csv(content)}
    assert (taxa["phylum"].taxon, taxa["phylum"].lineage) == ("Firmicutes", "k__Bacteria; p__Firmicutes")
    assert taxa["genus"].taxon == "Faecalibacterium"
    assert taxa["genus"].lineage.endswith("g__Faecalibacterium")
    assert taxa["species"].taxon == "Faecalibacterium prausnitzii"


def test_duplicate_lineage_keeps_the_parent_row() -> None:
    content = (
        b"taxonomy,abundance\n"
        b"k__B; p__F; c__C; o__O; f__Fa; g__G,0.4\n"
        b"k__B; p__F; c__C; o__O; f__Fa; g__G; s__,0.1\n"
    )
    [genus] = parse_taxonomy_csv(content)
    assert (genus.rank, genus.relative_abundance) == ("genus", 0.4)


def test_gtdb_style_species_and_domain_prefix() -> None:
    content = (
        b"taxonomy,abundance\nd__Bacteria; p__Firmicutes; c__C; o__O; f__F; g__Blautia; s__Blautia_obeum,1\n"
    )
    [taxon] = parse_taxonomy_csv(content)
    assert taxon.taxon == "Blautia obeum"
    assert taxon.lineage == "k__Bacteria; p__Firmicutes; c__C; o__O; f__F; g__Blautia; s__obeum"


@pytest.mark.parametrize(
    ("spelling", "rank"),
    [
        ("G", "genus"),
        ("genus", "genus"),
        ("Genus", "genus"),
        ("superkingdom", "kingdom"),
        ("D", "kingdom"),
        ("S", "species"),
        ("no rank", None),
        ("S1", None),
    ],
)
def test_rank_names_are_normalized(spelling: str, rank: str | None) -> None:
    assert normalize_rank(spelling) == rank


def test_transform_builds_the_declared_table(observed_at: datetime) -> None:
    result = transform_biomesight_taxonomy(
        {"BS1-A": node_count_csv(), "BS1-B": node_norm_csv()}, observed_at=observed_at
    )
    table = result.table("taxonomy")
    assert table.schema == TABLES["taxonomy"].schema
    assert table.num_rows == 2 * len(_nodes())
    assert set(table.column("kit_id").to_pylist()) == {"BS1-A", "BS1-B"}
    assert set(table.column("observed_at").to_pylist()) == {observed_at}
    assert result.quarantine.num_rows == 0


def test_utf8_bom_and_utf16_are_read() -> None:
    text = greengenes_csv(percent=True, with_count=False).decode()
    expected = _comparable(text.encode())
    assert _comparable(b"\xef\xbb\xbf" + text.encode()) == expected
    assert _comparable(text.encode("utf-16")) == expected


QUARANTINE_CASES = [
    (b"", "empty_file", "empty"),
    (b"  \n\n", "empty_file", "empty"),
    (b"taxonomy,abundance\n", "no_rows", "no taxa"),
    (b"taxonomy,abundance\n\n\n", "no_rows", "no taxa"),
    (b"name,value\nFirmicutes,0.5\n", "unknown_header", "taxon_id,rank,name,parent,count"),
    (b"taxonomy,abundance\nk__Bacteria,\xff\xfe\n", "not_utf8", "UTF-8"),
    (b"taxonomy,abundance\nk__Bacteria,1\nk__Bacteria; p__F,lots\n", "non_numeric_abundance", "row 2"),
    (b"taxonomy,abundance\nk__Bacteria,-1\n", "non_numeric_abundance", "negative"),
    (b"taxon_id,rank,name,parent,count\n1,genus,Blautia,,many\n", "non_numeric_abundance", "row 1"),
    (b"taxonomy,abundance\nk__Bacteria,1,extra\n", "malformed_csv", "row 1"),
    (b"taxonomy,abundance\n;;,1\n", "bad_lineage", "row 1"),
    (b"taxon_id,rank,name,parent,count\n1,strain,X,,5\n", "no_rows", "rank"),
]


@pytest.mark.parametrize(("content", "reason", "hint"), QUARANTINE_CASES)
def test_unreadable_csv_is_one_quarantine_row(
    content: bytes, reason: str, hint: str, observed_at: datetime
) -> None:
    result = transform_biomesight_taxonomy(
        {"BS1-BAD": content, "BS1-OK": node_count_csv()}, observed_at=observed_at
    )
    [row] = result.quarantine.to_pylist()
    assert (row["entity_id"], row["reason"]) == ("BS1-BAD", reason)
    assert hint in row["detail"]
    assert set(result.table("taxonomy").column("kit_id").to_pylist()) == {"BS1-OK"}


def test_unknown_header_names_what_it_saw() -> None:
    result = transform_biomesight_taxonomy(
        {"K": b"Name,Value\nx,1\n"}, observed_at=datetime.now().astimezone()
    )
    detail = result.quarantine.column("detail")[0].as_py()
    assert "'name', 'value'" in detail
    assert "taxonomy,abundance" in detail


def test_base64_decoding(observed_at: datetime) -> None:
    content = node_count_csv()
    encoded = base64.b64encode(content).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert decode_base64_csv(wrapped) == content
    with pytest.raises(TaxonomyDecodeError):
        decode_base64_csv("not*base64!")
    with pytest.raises(TaxonomyDecodeError):
        decode_base64_csv("dGF4b25vbXk=é")
    result = transform_biomesight_taxonomy_base64({"BS1-A": wrapped, "BS1-B": "%%%"}, observed_at=observed_at)
    assert result.table("taxonomy").num_rows == len(_nodes())
    [row] = result.quarantine.to_pylist()
    assert (row["entity_id"], row["reason"]) == ("BS1-B", "bad_base64")


def test_a_batch_gives_each_kit_what_it_gives_alone(observed_at: datetime) -> None:
    """Kits sharing a header are read and parsed together; no kit's rows may depend on the others'."""
    node_count = node_count_csv()
    csvs = {
        "GG-PERCENT": greengenes_csv(percent=True, with_count=True),
        "GG-FRACTION": greengenes_csv(percent=False, with_count=True),
        "NORM": node_norm_csv(),
        "COUNT": node_count,
        # the same node ids with other names: ids are only unique within a kit
        "COUNT-RENAMED": node_count.replace(b"Roseburia", b"Blautia").replace(b"Firmicutes", b"Bacillota"),
        "COUNT-LF": node_count.replace(b"\r\n", b"\n"),
        "GG-BLANK-ROW": greengenes_csv(percent=True, with_count=True).replace(b"\n", b"\n,,\n", 1),
        # a row without its count: padded when read on its own
        "GG-SHORT-ROW": greengenes_csv(percent=True, with_count=True).replace(b",500\r\n", b"\r\n", 1),
        "GG-WIDE": b"taxonomy,abundance" + b",x" * 300 + b"\nk__Bacteria,1" + b"," * 300 + b"\n",
        "GG-NEGATIVE": greengenes_csv(percent=True, with_count=True).replace(b",500\r\n", b",-500\r\n", 1),
        "COUNT-NO-ROWS": b"taxon_id,rank,name,parent,count\n1,strain,X,,5\n",
    }
    batch = transform_biomesight_taxonomy(csvs, observed_at=observed_at)
    assert batch.quarantine.column("entity_id").to_pylist() == ["GG-NEGATIVE", "COUNT-NO-ROWS"]
    rows = batch.table("taxonomy").to_pylist()
    assert [row["kit_id"] for row in rows] == sorted(
        (row["kit_id"] for row in rows), key=list(csvs).index
    )  # kits in the order given
    for kit_id, content in csvs.items():
        alone = transform_biomesight_taxonomy({kit_id: content}, observed_at=observed_at)
        assert [r for r in rows if r["kit_id"] == kit_id] == alone.table("taxonomy").to_pylist(), kit_id
        assert (
            batch.quarantine.filter(
                [entity == kit_id for entity in batch.quarantine.column("entity_id").to_pylist()]
            )
            .drop_columns(["observed_at"])
            .to_pylist()
            == alone.quarantine.drop_columns(["observed_at"]).to_pylist()
        )
    renamed = {r["taxon"] for r in rows if r["kit_id"] == "COUNT-RENAMED"}
    assert "Blautia" in renamed
    assert "Roseburia" not in renamed
