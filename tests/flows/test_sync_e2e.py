"""The real sync flows against the sandbox over HTTP: what a first sync loads, what later syncs ask for again.

Request counts come from the sandbox's own traffic counter; expectations from its ground truth (tests/flows/
truth.py), so "final kits are not polled again" is checked as a number of HTTP requests.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tests.flows.truth import (
    kit_is_final,
    order_is_final,
    our_orders,
    our_samples,
    registered_kits,
    requests,
    results_visible,
    sample_is_final,
)
from tests.synced import SyncedWorld
from transform.schemas import TABLES
from warehouse.lake import list_files
from warehouse.load import load
from warehouse.state import biomesight_plan


def _contents(synced: SyncedWorld) -> dict[str, list[tuple[Any, ...]]]:
    """Every warehouse table's rows, without observation times (a re-observation is not a change)."""
    contents = {}
    for name, spec in TABLES.items():
        if name == "sync_runs":
            continue
        columns = ", ".join(f'"{c}"' for c in spec.schema.names if c != spec.observed_at)
        contents[name] = synced.rows(f'SELECT {columns} FROM "{name}" ORDER BY ALL')  # noqa: S608 - names from specs
    return contents


def _reference_files(synced: SyncedWorld) -> set[str]:
    return {
        f.path for table in ("status_map", "lifecycle_stages") for f in list_files(synced.data_dir, table)
    }


def _polled_rows(synced: SyncedWorld) -> dict[str, int]:
    """Lake rows that Biomesight polls landed (status events and raw bodies): an unchanged poll adds none."""
    files = {
        table: [f for f in list_files(synced.data_dir, table) if "provider=biomesight" in f.path]
        for table in ("status_events", "raw_responses")
    }
    return {
        "status_events": sum(
            pq.read_table(synced.data_dir / f.path, columns=["source"])
            .column("source")
            .to_pylist()
            .count("poll")
            for f in files["status_events"]
        ),
        "raw_responses": sum(
            pq.read_metadata(synced.data_dir / f.path).num_rows for f in files["raw_responses"]
        ),
    }


def test_first_sync_loads_what_is_ready_and_later_syncs_ask_only_for_what_can_change(
    prefect_api: str, tmp_path: Path
) -> None:
    with SyncedWorld.start(tmp_path / "data", kits=150, rounds=0, webhooks=False) as synced:
        world, server = synced.world, synced.server
        t1 = server.clock.now()

        synced.sync()
        first = server.request_counts()
        kits_t1 = registered_kits(world, t1)
        ready_t1 = {k.kit_id for k in kits_t1 if results_visible(k, t1)}
        assert requests(first, "biomesight.kit_status") == len(kits_t1)
        assert requests(first, "biomesight.order_status") == len(our_orders(world, t1))
        assert requests(first, "biomesight.results") == 2 * len(ready_t1)  # JSON and CSV, once each
        assert {r[0] for r in synced.rows("SELECT kit_id FROM results")} == ready_t1
        assert {r[0] for r in synced.rows("SELECT DISTINCT kit_id FROM taxonomy")} == ready_t1
        final_t1 = {s.sample_id for s in our_samples(world, t1) if sample_is_final(s, t1)}
        assert requests(first, "gencove.sample") == len(final_t1)
        # Metadata: with each final sample's details, and once for each in-flight one listed with no client_id
        # (the kit-ordering guide's samples carry the customer id only there).
        unkeyed_t1 = {s.sample_id for s in our_samples(world, t1) if not s.client_id} - final_t1
        assert requests(first, "gencove.metadata") == len(final_t1) + len(unkeyed_t1) > len(final_t1)
        loaded = {r[0] for r in synced.rows("SELECT kit_id FROM kits WHERE provider = 'gencove'")}
        assert loaded == {s.sample_id for s in our_samples(world, t1)}
        with_files = {s.sample_id for s in our_samples(world, t1) if sample_is_final(s, t1) and s.files}
        assert {r[0] for r in synced.rows("SELECT DISTINCT kit_id FROM deliverables")} == with_files

        # A day later: only what was not final is polled, only what became ready is fetched.
        t2 = server.advance(timedelta(days=1))
        server.reset_request_counts()
        synced.sync()
        second = server.request_counts()
        kits_t2 = registered_kits(world, t2)
        expected_polls = [k for k in kits_t2 if not kit_is_final(k, t1)]
        assert requests(second, "biomesight.kit_status") == len(expected_polls) < len(kits_t2)
        orders_t2 = our_orders(world, t2)
        assert requests(second, "biomesight.order_status") == len(
            [o for o in orders_t2 if not order_is_final(o, t1)]
        )
        ready_t2 = {k.kit_id for k in kits_t2 if results_visible(k, t2)}
        assert requests(second, "biomesight.results") == 2 * len(ready_t2 - ready_t1)
        assert {r[0] for r in synced.rows("SELECT kit_id FROM results")} == ready_t2
        final_t2 = {s.sample_id for s in our_samples(world, t2) if sample_is_final(s, t2)}
        assert requests(second, "gencove.sample") == len(final_t2 - final_t1)
        new_t2 = {s.sample_id for s in our_samples(world, t2) if not s.client_id} - {
            s.sample_id for s in our_samples(world, t1)
        }
        assert requests(second, "gencove.metadata") == len(final_t2 - final_t1) + len(new_t2 - final_t2)

        # The same run again at the same virtual time: the same polls, nothing fetched, nothing changed.
        before = _contents(synced)
        reference_files = _reference_files(synced)
        landed = _polled_rows(synced)
        assert all(landed.values())
        server.reset_request_counts()
        synced.sync()
        third = server.request_counts()
        assert requests(third, "biomesight.kit_status") == len(
            [k for k in kits_t2 if not kit_is_final(k, t2)]
        )
        assert requests(third, "biomesight.results") == 0
        assert requests(third, "gencove.sample") == 0
        assert requests(third, "gencove.metadata") == 0
        assert _contents(synced) == before
        assert _reference_files(synced) == reference_files  # the vocabulary is loaded: not written again
        # Unchanged statuses are not landed again (they would only be dropped as duplicates at the load).
        assert _polled_rows(synced) == landed
        # Every ready kit's results are loaded; PDFs were not asked for, so the plan finds nothing to fetch,
        # and would find every ready kit's PDF missing if they were.
        plan = biomesight_plan(synced.warehouse)
        assert (plan.kits_missing_results, plan.kits_missing_taxonomy, plan.kits_missing_pdf) == ([], [], [])
        assert sorted(biomesight_plan(synced.warehouse, with_pdf=True).kits_missing_pdf) == sorted(ready_t2)
        # The third Biomesight run changed nothing, so it skipped its final load and publish: its row
        # waits in the lake (whether Gencove's run, at the same time, loaded it depends on which ended first)
        # until the next load, which publishes every run's row.
        load(synced.data_dir, synced.warehouse, lock_timeout=60)
        runs = synced.rows("SELECT flow, state FROM sync_runs WHERE flow LIKE 'sync-%'")
        assert len(runs) == 6
        assert {state for _, state in runs} == {"completed"}


def test_a_second_sync_started_while_one_runs_steps_aside(prefect_api: str, tmp_path: Path) -> None:
    import asyncio

    from flows.biomesight import sync_biomesight
    from flows.locks import sync_lock
    from flows.settings import Settings

    with SyncedWorld.start(tmp_path / "data", kits=40, rounds=0, webhooks=False) as synced:
        from flows.demo import environment

        with environment(synced.env):
            with sync_lock(Settings(), "biomesight"):  # what a run in progress holds
                summary = asyncio.run(sync_biomesight())
            assert summary["state"] == "skipped"
            assert "another biomesight sync is running" in summary["reason"]
            assert requests(synced.server.request_counts(), "biomesight.kit_status") == 0
            summary = asyncio.run(sync_biomesight())
        assert summary["state"] == "completed"


def test_a_run_loads_as_it_goes_and_ends_where_one_final_load_would(prefect_api: str, tmp_path: Path) -> None:
    """With a small KITSYNC_LOAD_EVERY_ROWS a first sync loads many times (no load holds the whole run's rows,
    so memory stays flat), and the warehouse it leaves equals that of a run with a single final load."""
    from flows.demo import environment

    contents = []
    loads = []
    for name, every in (("chunked", "100"), ("whole", "100000000")):
        with (
            SyncedWorld.start(tmp_path / name, kits=60, rounds=0, webhooks=False) as synced,
            environment({"KITSYNC_LOAD_EVERY_ROWS": every, "KITSYNC_BATCH_SIZE": "10"}),
        ):
            reports = synced.sync()
            loads.append(max(s.get("warehouse_loads", 0) for s in reports[0].summaries))
            contents.append(_contents(synced))
    assert loads[0] >= loads[1] + 4
    assert contents[0] == contents[1]


def test_a_kit_left_in_an_undocumented_status_is_reported_by_every_run(
    prefect_api: str, tmp_path: Path
) -> None:
    """Unchanged statuses are not landed again, but one kitsync cannot map is still counted each run (the run
    summary is where someone notices a status Biomesight added), not only in the run that first saw it."""
    limbo = "biomesight.kit_status:unknown_status:1.0:status=Lab Limbo"
    with SyncedWorld.start(tmp_path / "data", kits=40, rounds=0, webhooks=False, faults=[limbo]) as synced:
        counts = []
        for _ in range(2):
            synced.server.reset_request_counts()
            (round_,) = synced.sync()
            polled = requests(synced.server.request_counts(), "biomesight.kit_status")
            (summary,) = [s for s in round_.summaries if s["flow"] == "sync-biomesight"]
            counts.append((summary["unknown_statuses"].get("biomesight:Lab Limbo"), polled))
        (first, first_polled), (second, second_polled) = counts
        assert first == first_polled > 0
        assert second == second_polled == first_polled  # still in limbo, so still polled and still reported
        landed = synced.rows("SELECT count(*) FROM status_events WHERE partner_status = 'Lab Limbo'")
        assert landed == [(first_polled,)]  # landed once, in the run that first saw it
