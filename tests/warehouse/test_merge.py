"""Merge modes through real loads: hand-built cases, then random observations split into random loads."""

from __future__ import annotations

import random
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.tables import (
    KIT_STATE,
    SPECS,
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


def kit(kit_id: str, hour: int, **values: Any) -> Row:
    return (
        {"provider": "biomesight", "kit_id": kit_id, "status": None, "lab": None, "score": None}
        | values
        | {"observed_at": at(hour)}
    )


def test_current_takes_each_columns_newest_non_null_value(tmp_path: Path) -> None:
    first = [kit("k1", 1, status="shipped", lab="berlin", score=0.5), kit("k2", 1, status="shipped")]
    # A webhook saw only the status; a poll an hour later saw the lab change but not the status.
    second = [kit("k1", 3, status="received"), kit("k1", 4, lab="vienna")]
    # A backfill brings an older observation late: it overwrites nothing newer, but fills k2's lab.
    late = [kit("k1", 2, status="delivered", lab="oslo", score=0.9), kit("k2", 2, lab="oslo")]

    for rows in (first, second, late):
        land(tmp_path, KIT_STATE, rows)
        load_lake(tmp_path)

    assert table_rows(db_of(tmp_path), "kit_state") == [
        kit("k1", 4, status="received", lab="vienna", score=0.9),
        kit("k2", 2, status="shipped", lab="oslo"),
    ]


def test_history_keeps_the_first_sighting_of_each_key(tmp_path: Path) -> None:
    def event(status: str, hour: int, source: str) -> Row:
        return {
            "provider": "gencove",
            "kit_id": "s1",
            "status": status,
            "source": source,
            "observed_at": at(hour),
        }

    land(tmp_path, STATUS_EVENTS, [event("received", 5, "poll"), event("received", 6, "poll")])
    load_lake(tmp_path)
    land(tmp_path, STATUS_EVENTS, [event("received", 7, "webhook"), event("processing", 7, "poll")])
    load_lake(tmp_path)
    assert table_rows(db_of(tmp_path), "status_events") == [
        event("processing", 7, "poll"),
        event("received", 5, "poll"),
    ]

    # A backfill that saw the kit received earlier than any poll did replaces the later sighting.
    land(tmp_path, STATUS_EVENTS, [event("received", 3, "backfill")])
    load_lake(tmp_path)
    assert table_rows(db_of(tmp_path), "status_events") == [
        event("processing", 7, "poll"),
        event("received", 3, "backfill"),
    ]


def test_replace_swaps_a_groups_rows_for_its_newest_observation(tmp_path: Path) -> None:
    def taxon(kit_id: str, name: str, abundance: float, hour: int) -> Row:
        return {
            "provider": "biomesight",
            "kit_id": kit_id,
            "taxon": name,
            "abundance": abundance,
            "observed_at": at(hour),
        }

    land(
        tmp_path,
        TAXA,
        [
            taxon("k1", "Bacteroides", 0.6, 1),
            taxon("k1", "Prevotella", 0.4, 1),
            taxon("k2", "Akkermansia", 1.0, 1),
        ],
    )
    load_lake(tmp_path)
    # k1 is re-processed: one taxon fewer. The batch also carries a stale k2 result, older than what is held.
    land(tmp_path, TAXA, [taxon("k1", "Bacteroides", 1.0, 5), taxon("k2", "Escherichia", 1.0, 0)])
    load_lake(tmp_path)
    assert table_rows(db_of(tmp_path), "taxa") == [
        taxon("k1", "Bacteroides", 1.0, 5),
        taxon("k2", "Akkermansia", 1.0, 1),
    ]

    # The rest of k1's hour-5 result arrives in a later file: same observation, so it joins, not replaces.
    land(tmp_path, TAXA, [taxon("k1", "Faecalibacterium", 0.2, 5)])
    load_lake(tmp_path)
    assert table_rows(db_of(tmp_path), "taxa") == [
        taxon("k1", "Bacteroides", 1.0, 5),
        taxon("k1", "Faecalibacterium", 0.2, 5),
        taxon("k2", "Akkermansia", 1.0, 1),
    ]


def random_observations(rng: random.Random, spec: TableSpec, count: int) -> list[Row]:
    rows = []
    for _ in range(count):
        row: Row = {"provider": rng.choice(["biomesight", "gencove"]), "kit_id": f"k{rng.randrange(4)}"}
        row["observed_at"] = at(0) + timedelta(minutes=rng.randrange(40))
        if spec is KIT_STATE:
            row |= {
                "status": rng.choice([None, "shipped", "received"]),
                "lab": rng.choice([None, None, "berlin", "oslo"]),
                "score": rng.choice([None, 0.25, 0.5]),
            }
        elif spec is STATUS_EVENTS:
            row |= {
                "status": rng.choice(["shipped", "received", "failed"]),
                "source": rng.choice(["poll", "webhook"]),
            }
        else:
            row |= {"taxon": rng.choice(["A", "B", "C"]), "abundance": rng.choice([None, 0.1, 0.9])}
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_split_into_loads_equals_one_load_of_everything(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    observations = {name: random_observations(rng, spec, 60) for name, spec in SPECS.items()}
    incremental, rebuilt = tmp_path / "incremental", tmp_path / "rebuilt"

    for round_number in range(4):
        for name, spec in SPECS.items():
            share = observations[name][round_number::4]
            for chunk in (share[: len(share) // 2], share[len(share) // 2 :]):
                lake.write_table(
                    incremental, spec, rows_table(spec, chunk), ingest_date=DAY + timedelta(round_number)
                )
        load_lake(incremental)
    shutil.copytree(incremental / "lake", rebuilt / "lake")
    load_lake(rebuilt)

    for name, spec in SPECS.items():
        want = expected(spec, observations[name])
        assert table_rows(db_of(incremental), name) == want
        assert table_rows(db_of(rebuilt), name) == want
