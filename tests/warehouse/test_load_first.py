"""A first load (an empty table) goes straight from the lake into the table and is checked there: a batch
that is not its own merge result (a repeated key, an older observation of a kit, a missing observed_at) must
still end exactly as the staged merge would leave it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tests.warehouse.tables import (
    STATUS_EVENTS,
    TAXA,
    Row,
    at,
    db_of,
    expected,
    load_lake,
    rows_table,
    table_rows,
)
from transform.schemas import TableSpec
from warehouse import lake

DAY = date(2026, 11, 22)


def land(root: Path, spec: TableSpec, rows: list[Row]) -> None:
    lake.write_table(root, spec, rows_table(spec, rows), ingest_date=DAY)


def taxon(kit_id: str, name: str, hour: int, abundance: float = 0.5) -> Row:
    return {
        "provider": "gencove",
        "kit_id": kit_id,
        "taxon": name,
        "abundance": abundance,
        "observed_at": at(hour),
    }


def event(kit_id: str, hour: int, status: str = "shipped") -> Row:
    return {
        "provider": "biomesight",
        "kit_id": kit_id,
        "status": status,
        "source": "poll",
        "observed_at": at(hour),
    }


def test_a_first_load_that_is_its_own_merge_result_is_kept_as_landed(tmp_path: Path) -> None:
    taxa = [taxon(f"k{n}", name, 1) for n in range(3) for name in ("Bacteroides", "Prevotella")]
    events = [event(f"k{n}", 1) for n in range(3)]
    land(tmp_path, TAXA, taxa)
    land(tmp_path, STATUS_EVENTS, events)
    load_lake(tmp_path)
    assert table_rows(db_of(tmp_path), "taxa") == expected(TAXA, taxa)
    assert table_rows(db_of(tmp_path), "status_events") == expected(STATUS_EVENTS, events)


def test_a_first_load_with_older_observations_and_repeated_keys_equals_the_merge(tmp_path: Path) -> None:
    # k1's taxonomy was fetched twice (the newer replaces the older as a whole); k2's newest observation
    # holds one taxon twice with different values (a tie the merge breaks by value).
    taxa_old = [taxon("k1", "Bacteroides", 1), taxon("k1", "Prevotella", 1)]
    taxa_new = [
        taxon("k1", "Akkermansia", 2),
        taxon("k2", "Bacteroides", 2, 0.25),
        taxon("k2", "Bacteroides", 2, 0.75),
    ]
    # An event seen by a poll and, earlier, by a backfill: history keeps the first sighting.
    events = [event("k1", 3), event("k1", 2), event("k2", 1, "received")]
    for rows in (taxa_old, taxa_new):
        land(tmp_path, TAXA, rows)
    land(tmp_path, STATUS_EVENTS, events[:1])
    land(tmp_path, STATUS_EVENTS, events[1:])

    load_lake(tmp_path)

    taxa = table_rows(db_of(tmp_path), "taxa")
    assert taxa == expected(TAXA, taxa_old + taxa_new)
    assert {row["taxon"] for row in taxa if row["kit_id"] == "k1"} == {"Akkermansia"}
    assert table_rows(db_of(tmp_path), "status_events") == expected(STATUS_EVENTS, events)
    assert len(table_rows(db_of(tmp_path), "status_events")) == 2
