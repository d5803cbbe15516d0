"""The backfill flow against the sandbox: exactly its window's kits, resumable, and offline reprocessing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.backfill import BackfillError, plan_windows
from flows.demo import environment
from tests.flows.truth import our_samples, registered_kits, requests, results_visible, sample_is_final
from tests.synced import SyncedWorld


def _backfill(synced: SyncedWorld, **parameters: Any) -> dict[str, object]:
    """The flow with the form's choice of kits built from `start_date`/`end_date` or `kit_ids`."""
    from flows.backfill import DateRange, KitIds, backfill

    if "kit_ids" in parameters:
        kits: DateRange | KitIds = KitIds(kit_ids=parameters.pop("kit_ids"))
    else:
        kits = DateRange(start_date=parameters.pop("start_date"), end_date=parameters.pop("end_date"))
    with environment(synced.env):
        return asyncio.run(backfill(kits=kits, **parameters))


def test_windows_cover_the_range_once_and_bad_slices_are_refused() -> None:
    windows = plan_windows(start_date=date(2026, 1, 1), end_date=date(2026, 3, 5), kit_ids=[], window_days=30)
    assert [(w.first, w.last) for w in windows] == [
        (date(2026, 1, 1), date(2026, 1, 30)),
        (date(2026, 1, 31), date(2026, 3, 1)),
        (date(2026, 3, 2), date(2026, 3, 5)),
    ]
    with pytest.raises(BackfillError, match="before start_date"):
        plan_windows(start_date=date(2026, 2, 1), end_date=date(2026, 1, 1), kit_ids=[], window_days=30)
    with pytest.raises(BackfillError, match="date range"):
        plan_windows(start_date=None, end_date=None, kit_ids=[], window_days=30)
    with pytest.raises(BackfillError, match="not both"):
        plan_windows(start_date=date(2026, 1, 1), end_date=date(2026, 1, 2), kit_ids=["K"], window_days=30)


@pytest.fixture(scope="module")
def backfilled(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> SyncedWorld:
    """A world synced once; the tests below backfill parts of it (in the order they are written)."""
    with SyncedWorld.start(
        tmp_path_factory.mktemp("backfill") / "data", kits=120, rounds=1, webhooks=False
    ) as s:
        yield s  # type: ignore[misc]


def _window(synced: SyncedWorld) -> tuple[date, date]:
    """A purchase-date window holding a good share of the world's orders (the month before the clock)."""
    now = synced.server.clock.now()
    return (now - timedelta(days=60)).date(), (now - timedelta(days=20)).date()


def test_refetch_results_refetches_exactly_the_ready_kits_of_its_window(backfilled: SyncedWorld) -> None:
    world, server = backfilled.world, backfilled.server
    now = server.clock.now()
    first, last = _window(backfilled)
    in_window = [
        k
        for k in registered_kits(world, now)
        if first <= world.orders[k.order_id].purchase_date.date() <= last
    ]
    ready = [k for k in in_window if results_visible(k, now)]
    assert ready, "the window should hold kits with results"
    samples = [s for s in our_samples(world, now) if first <= s.created.date() <= last]
    final_samples = [s for s in samples if sample_is_final(s, now)]

    server.reset_request_counts()
    summary = _backfill(backfilled, start_date=first, end_date=last, refetch_results=True, window_days=15)
    counts = server.request_counts()
    assert summary["state"] == "completed"
    assert requests(counts, "biomesight.kit_status") == len(in_window)
    assert requests(counts, "biomesight.results") == 2 * len(ready)
    assert requests(counts, "gencove.sample") == len(final_samples)
    # every window and batch shares one Biomesight client, so one token (issue 14: one per batch before)
    assert requests(counts, "biomesight.token") == 1

    # The same backfill again: every window is recorded as done, so nothing is asked of the partners.
    server.reset_request_counts()
    again = _backfill(backfilled, start_date=first, end_date=last, refetch_results=True, window_days=15)
    assert (
        again["windows_skipped"]
        == again["windows"]
        == len(plan_windows(start_date=first, end_date=last, kit_ids=[], window_days=15))
    )
    assert sum(sum(by_status.values()) for by_status in server.request_counts().values()) == 0


def test_without_refetch_a_backfill_fetches_only_missing_results(backfilled: SyncedWorld) -> None:
    first, last = _window(backfilled)
    backfilled.server.reset_request_counts()
    summary = _backfill(backfilled, provider="biomesight", start_date=first, end_date=last, window_days=60)
    assert summary["state"] == "completed"
    assert requests(backfilled.server.request_counts(), "biomesight.results") == 0


def _land_raw_results(synced: SyncedWorld, kit_id: str, body: dict[str, object]) -> None:
    """A newer stored `results.json` response for one kit, landed as the sync lands raw responses."""
    from flows.biomesight import RESULTS_JSON
    from flows.landing import land_result
    from flows.settings import Settings
    from flows.tally import RunTally
    from transform.raw import RawResponse, transform_raw_responses

    raw = transform_raw_responses(
        [RawResponse("biomesight", RESULTS_JSON, kit_id, body)], observed_at=datetime.now(UTC)
    )
    with environment(synced.env):
        land_result(Settings(), raw, RunTally())


def test_reprocess_from_raw_rebuilds_results_without_calling_the_partners(backfilled: SyncedWorld) -> None:
    """Reprocessing transforms the stored raw responses again: a raw response changed since the last run (as a
    corrected transform would read it differently) shows up in the rebuilt tables, every other value stays,
    and every kit of the window has its result rows rewritten; no partner is asked."""
    from flows.biomesight import RESULTS_JSON
    from flows.runtime import data_paths
    from flows.settings import Settings
    from warehouse.raw import latest_raw_responses

    world, now = backfilled.world, backfilled.server.clock.now()
    first, last = _window(backfilled)
    ready = sorted(
        k.kit_id
        for k in registered_kits(world, now)
        if results_visible(k, now) and first <= world.orders[k.order_id].purchase_date.date() <= last
    )
    assert len(ready) > 1
    changed = ready[0]
    with environment(backfilled.env):
        lake = data_paths(Settings()).lake
    body = latest_raw_responses(lake, "biomesight", RESULTS_JSON, [changed])[changed]
    diversity = world.kits[changed].result.scores["Diversity"]  # type: ignore[union-attr]
    assert body["scores"]["Diversity"] == diversity
    body["scores"]["Diversity"] = diversity + 1.5
    _land_raw_results(backfilled, changed, body)

    taxonomy = "SELECT kit_id, rank, lineage, relative_abundance FROM taxonomy ORDER BY ALL"
    scores = "SELECT kit_id, score_key, value FROM scores ORDER BY ALL"
    before_taxonomy, before_scores = backfilled.rows(taxonomy), backfilled.rows(scores)
    backfilled.server.reset_request_counts()
    started = datetime.now(UTC)
    summary = _backfill(backfilled, start_date=first, end_date=last, reprocess_from_raw=True, window_days=60)

    assert summary["state"] == "completed"
    assert summary["results_fetched"] > 0
    assert backfilled.server.request_counts() == {}
    assert backfilled.rows(taxonomy) == before_taxonomy
    expected_scores = [
        (kit, key, diversity + 1.5 if (kit, key) == (changed, "diversity") else value)
        for kit, key, value in before_scores
    ]
    assert backfilled.rows(scores) == expected_scores
    # Every kit of the window had its result rows written again by this run, and no kit outside it.
    rewritten = {
        row[0]
        for row in backfilled.rows(
            "SELECT DISTINCT kit_id FROM taxonomy WHERE provider = 'biomesight' AND observed_at >= ?",
            [started],
        )
    }
    assert rewritten == set(ready)


def test_explicit_kit_ids_backfill_only_those_kits(backfilled: SyncedWorld) -> None:
    now = backfilled.server.clock.now()
    ready = sorted(k.kit_id for k in registered_kits(backfilled.world, now) if results_visible(k, now))[:3]
    backfilled.server.reset_request_counts()
    summary = _backfill(backfilled, provider="biomesight", kit_ids=ready, refetch_results=True)
    counts = backfilled.server.request_counts()
    assert summary["state"] == "completed"
    assert requests(counts, "biomesight.kit_status") == 3
    assert requests(counts, "biomesight.results") == 6


def test_a_killed_backfill_resumes_without_redoing_finished_windows(backfilled: SyncedWorld) -> None:
    first, last = _window(backfilled)
    windows = plan_windows(start_date=first, end_date=last, kit_ids=[], window_days=5)
    arguments = ["--provider", "biomesight", "--from", str(first), "--to", str(last), "--window-days", "5"]
    ledgers = backfilled.data_dir / "state" / "backfills"
    before = set(ledgers.glob("*.json")) if ledgers.exists() else set()
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "flows.cli", "backfill", "--refetch-results", *arguments],
        env={**os.environ, **backfilled.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    done: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        new = set(ledgers.glob("*.json")) - before if ledgers.exists() else set()
        if new:
            done = json.loads(next(iter(new)).read_text())["done"]
            if done:
                break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert done, "the backfill should have finished a window before it was killed"
    ledger = next(iter(set(ledgers.glob("*.json")) - before))
    finished = set(json.loads(ledger.read_text())["done"])
    assert finished < {w.label for w in windows}

    backfilled.server.reset_request_counts()
    summary = _backfill(
        backfilled,
        provider="biomesight",
        start_date=first,
        end_date=last,
        refetch_results=True,
        window_days=5,
    )
    assert summary["state"] == "completed"
    assert summary["windows_skipped"] == len(finished)
    world, now = backfilled.world, backfilled.server.clock.now()
    remaining = [w for w in windows if w.label not in finished]
    polled = [
        k
        for k in registered_kits(world, now)
        if any(w.first <= world.orders[k.order_id].purchase_date.date() <= w.last for w in remaining)  # type: ignore[operator]
    ]
    assert requests(backfilled.server.request_counts(), "biomesight.kit_status") == len(polled)
    assert set(json.loads(ledger.read_text())["done"]) == {w.label for w in windows}


def test_refetch_results_also_refetches_kits_that_lack_nothing(prefect_api: str, tmp_path: Path) -> None:
    """With PDFs fetched as well, a ready kit lacks nothing the planner tracks; `refetch_results` still asks
    for its JSON and CSV again (the planner's "what is missing" must not decide what a refetch covers)."""
    with (
        environment({"KITSYNC_FETCH_PDF": "true"}),
        SyncedWorld.start(tmp_path / "data", kits=60, rounds=0, webhooks=False) as synced,
    ):
        synced.sync()
        complete = [
            row[0]
            for row in synced.rows(
                "SELECT r.kit_id FROM results AS r "
                "WHERE r.kit_id IN (SELECT kit_id FROM taxonomy) "
                "AND r.kit_id IN (SELECT kit_id FROM report_pdfs) "
                "ORDER BY r.kit_id LIMIT 3"
            )
        ]
        assert len(complete) == 3
        synced.server.reset_request_counts()
        summary = _backfill(synced, provider="biomesight", kit_ids=complete, refetch_results=True)
        counts = synced.server.request_counts()
    assert summary["state"] == "completed"
    assert requests(counts, "biomesight.results") == 6  # JSON and CSV of each of the three kits
