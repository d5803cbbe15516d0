"""A variance world synced by the real flows reconciles exactly, by content, with the sandbox's ground truth.

The sandbox serves the world under its variance profile (sandbox/variance.py: pages capped below the asked
`limit`, reordered `next` links, timestamp spellings, unknown fields everywhere, both documented shapes,
`failed_qc` as text, empty client ids, metadata in the detail or not, a bulk order sharing one `modified`,
odd-case score keys, BOM/CRLF CSVs). Two rounds of import + both syncs run through Prefect; then every table
kitsync fills from a partner is compared row by row with what the sandbox's world says the partner showed at
each round's virtual time. Expected rows are built from the world (and, for spellings, from the `Variance`
that chose them), never from kitsync's code or numbers copied from a run.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.demo import environment
from sandbox.model import GencoveSample, Kit, StatusChange, status_at
from sandbox.variance import BULK_ORDER_SIZE, SCORE_SPELLINGS, Variance
from tests.flows.truth import FINAL_KIT_STATUSES, our_orders, our_samples, registered_kits
from tests.reliability.conftest import FAST_RETRIES
from tests.synced import SyncedWorld
from transform.gencove import METADATA_SAFE_FIELDS

SEED = 29
ROUNDS = 2
STEP = timedelta(days=4)
# Gencove's final statuses (partners/NOTES.md); Biomesight's final kit statuses are tests/flows/truth.py's;
# an order's "Error" is recoverable (fulfilment may resume), so only these end an order's polling.
SAMPLE_FINAL = frozenset({"succeeded", "failed", "failed qc", "failed_qc"})
ORDER_FINAL = frozenset({"Delivered", "Cancelled", "Lost"})
FAILED_QC = frozenset({"failed qc", "failed_qc"})


@pytest.fixture(scope="module")
def synced(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncedWorld]:
    """A variance world (seed 29) synced twice, four virtual days apart, without webhooks: every row then
    comes from polling, so what each round could see is exactly the world at that round's time."""
    data_dir = tmp_path_factory.mktemp("variance") / "data"
    with SyncedWorld.start(
        data_dir,
        seed=SEED,
        kits=80,
        gencove_samples=160,
        rounds=ROUNDS,
        step=STEP,
        webhooks=False,
        variance=True,
    ) as world:
        yield world


def round_times(synced: SyncedWorld) -> list[datetime]:
    end = synced.server.clock.now()
    return [end - STEP * (ROUNDS - 1 - n) for n in range(ROUNDS)]


def table(synced: SyncedWorld, sql: str) -> list[tuple[Any, ...]]:
    return synced.rows(sql)


def _wire_second(moment: datetime) -> datetime:
    """Biomesight's dates carry whole seconds (`2025-07-10T14:22:00Z`)."""
    return moment.replace(microsecond=0)


# --- Gencove ---------------------------------------------------------------------------------------------


def _status_moment(sample: GencoveSample, at: datetime) -> tuple[str, datetime]:
    change = status_at(sample.timeline, at)
    return (change.status, change.at) if change else ("kit_requested", sample.created)


def _is_final(sample: GencoveSample, at: datetime) -> bool:
    return _status_moment(sample, at)[0] in SAMPLE_FINAL


def _archive(sample: GencoveSample, at: datetime) -> tuple[str, datetime]:
    change = status_at(sample.archive_timeline, at)
    return (change.status, change.at) if change else ("available", sample.created)


def test_every_gencove_sample_is_synced_through_capped_pages(synced: SyncedWorld) -> None:
    at = synced.server.clock.now()
    expected = {s.sample_id for s in our_samples(synced.world, at)}
    variance = synced.server.state.variance
    assert variance is not None
    # the world is big enough that each project spans many capped pages, and holds the bulk order
    assert len(expected) > 5 * variance.caps["gencove.project_samples"] + BULK_ORDER_SIZE
    kits = {row[0] for row in table(synced, "SELECT kit_id FROM kits WHERE provider = 'gencove'")}
    assert kits == expected
    runs = table(
        synced, "SELECT flow, state, complete, incomplete_reason FROM sync_runs WHERE flow LIKE 'sync-%'"
    )
    assert len(runs) == 2 * ROUNDS
    assert all(row[1:] == ("completed", True, None) for row in runs), runs


def test_gencove_kits_match_the_world(synced: SyncedWorld) -> None:
    at = synced.server.clock.now()
    rows = table(
        synced,
        "SELECT kit_id, project_id, customer_key, physical_id, hidden, created_at, modified_at, failed_qc, "
        "archive_status, archive_status_at, metadata_json FROM kits WHERE provider = 'gencove'",
    )
    by_id = {row[0]: row for row in rows}
    keys_by_client: dict[str, set[str]] = defaultdict(set)
    for sample in our_samples(synced.world, at):
        row = by_id[sample.sample_id]
        status, _ = _status_moment(sample, at)
        archive_status, archive_at = _archive(sample, at)
        assert row[1:3] == (sample.project_id, row[2]), row
        # One key per platform customer: the id in the sample's metadata (where the kit-ordering guide puts
        # it), else client_id; a sample carrying neither stays keyless.
        customer_id = sample.metadata.get("customer_id") or sample.client_id
        assert (row[2] is None) == (not customer_id), (customer_id, row)
        if customer_id:
            keys_by_client[customer_id].add(row[2])
            assert customer_id not in row[2]
        assert row[3] is None  # physical_id "" is no id
        assert row[4] is sample.hidden
        assert row[5] == sample.created
        assert row[6] == sample.modified_at(at)
        assert row[7] == (list(sample.failed_qc) if status in FAILED_QC | {"failed"} else []), row
        assert (row[8], row[9]) == (archive_status, archive_at)
        if _is_final(sample, at):  # details read: metadata as sent, customer ids pseudonymized
            metadata = json.loads(row[10])
            # only the fields the data contract declares safe are kept; never the customer id itself
            assert metadata == {k: v for k, v in sample.metadata.items() if k in METADATA_SAFE_FIELDS}
            assert "customer_id" not in metadata
        else:
            assert row[10] is None
    # one pseudonym per customer id, and different customers never share one
    assert all(len(keys) == 1 for keys in keys_by_client.values())
    assert len({next(iter(k)) for k in keys_by_client.values()}) == len(keys_by_client)


def test_gencove_status_events_match_the_world(synced: SyncedWorld) -> None:
    """Final samples: their whole history (sample-statuses). Others: their status at each round's poll."""
    at = synced.server.clock.now()
    rounds = round_times(synced)
    held: dict[str, set[tuple[str, datetime]]] = defaultdict(set)
    for entity_id, status, date, stage in table(
        synced,
        "SELECT entity_id, partner_status, partner_date, stage FROM status_events WHERE provider = 'gencove'",
    ):
        held[entity_id].add((status, date))
        assert stage != "unknown", (entity_id, status)
    expected: dict[str, set[tuple[str, datetime]]] = {}
    for sample in our_samples(synced.world, at):
        seen = {_status_moment(sample, r) for r in rounds if sample.created <= r}
        if _is_final(sample, at):
            seen |= {(c.status, c.at) for c in sample.timeline if c.at <= at}
        expected[sample.sample_id] = seen
    assert dict(held) == expected


def test_gencove_results_match_the_world(synced: SyncedWorld) -> None:
    """Deliverables of every final sample, QC of every final sample that has any, trait scores and ancestry
    of every succeeded one: row for row."""
    at = synced.server.clock.now()
    final = [s for s in our_samples(synced.world, at) if _is_final(s, at)]
    succeeded = [s for s in final if _status_moment(s, at)[0] == "succeeded"]
    assert succeeded
    assert any(_status_moment(s, at)[0] in FAILED_QC for s in final)
    deliverables = set(
        table(
            synced,
            "SELECT kit_id, file_id, file_type, size_bytes, checksum_sha256 FROM deliverables "
            "WHERE provider = 'gencove'",
        )
    )
    assert deliverables == {
        (s.sample_id, f.file_id, f.file_type, f.size, f.checksum_sha256) for s in final for f in s.files
    }
    qc = set(
        table(
            synced,
            "SELECT kit_id, qc_key, qc_type, value_expected, value_measured, value_string, status "
            "FROM quality_controls WHERE provider = 'gencove'",
        )
    )
    assert qc == {
        (
            s.sample_id,
            item["quality_control_type"]["key"],
            item["quality_control_type"]["type"],
            item["quality_control"]["value_expected"],
            item["quality_control"]["value_measured"],
            item["quality_control"]["value_string"] or None,
            item["quality_control"]["status"],
        )
        for s in final
        for item in s.quality_controls
    }
    traits = {
        (row[0], row[1]): row[2:]
        for row in table(
            synced,
            "SELECT kit_id, trait_key, unit_key, value, percentile, risk, distribution_version, "
            "distribution_json FROM trait_scores WHERE provider = 'gencove'",
        )
    }
    expected_traits = {
        (s.sample_id, item["trait"]["key"]): (
            item["trait_unit"]["key"],
            item["trait_score"]["value"],
            item["trait_score"]["percentile"],
            item["risk"],
            item["trait_distribution"]["version"],
            item["trait_distribution"]["value"],
        )
        for s in succeeded
        for item in s.trait_scores
    }
    assert traits.keys() == expected_traits.keys()
    for key, row in traits.items():
        assert (*row[:5], json.loads(row[5])) == expected_traits[key], key
    ancestry = set(
        table(synced, "SELECT kit_id, population, fraction FROM ancestry WHERE provider = 'gencove'")
    )
    assert ancestry == {
        (s.sample_id, population, fraction)
        for s in succeeded
        for population, fraction in s.ancestry["ancestry"]["value"].items()
    }
    reports = {
        row[0]: (json.loads(row[1]), json.loads(row[2]))
        for row in table(synced, "SELECT kit_id, ancestry_json, metadata_json FROM ancestry_reports")
    }
    assert reports == {
        s.sample_id: (s.ancestry["ancestry"]["value"], s.ancestry["metadata"]["value"]) for s in succeeded
    }


# --- Biomesight ------------------------------------------------------------------------------------------


def _polled(
    timeline: list[StatusChange],
    rounds: list[datetime],
    tracked_from: datetime,
    final: frozenset[str],
    before: StatusChange | None = None,
) -> set[tuple[str, datetime]]:
    """What polling saw: the status at each round from the first one that tracked it, until one showed a
    final status (polling stops there)."""
    seen = set()
    for moment in rounds:
        if moment < tracked_from:
            continue
        change = status_at(timeline, moment) or before
        if change is None:
            continue
        seen.add((change.status, _wire_second(change.at)))
        if change.status in final:
            break
    return seen


def test_biomesight_status_events_match_the_world(synced: SyncedWorld) -> None:
    at = synced.server.clock.now()
    rounds = round_times(synced)
    held: dict[tuple[str, str], set[tuple[str, datetime]]] = defaultdict(set)
    for entity, entity_id, status, date in table(
        synced,
        "SELECT entity, entity_id, partner_status, partner_date FROM status_events "
        "WHERE provider = 'biomesight' AND source = 'poll'",
    ):
        held[(entity, entity_id)].add((status, date))
    expected: dict[tuple[str, str], set[tuple[str, datetime]]] = {}
    for order in our_orders(synced.world, at):
        pending = StatusChange("Pending", order.purchase_date)
        expected[("order", order.order_id)] = _polled(
            order.timeline, rounds, order.purchase_date, ORDER_FINAL, pending
        )
    for kit in registered_kits(synced.world, at):
        assert kit.registered_at is not None
        expected[("kit", kit.kit_id)] = _polled(kit.timeline, rounds, kit.registered_at, FINAL_KIT_STATUSES)
    assert dict(held) == {k: v for k, v in expected.items() if v}


def _ready(kit: Kit, at: datetime) -> bool:
    return kit.results_ready_at is not None and kit.results_ready_at <= at and kit.result is not None


def test_biomesight_results_match_the_world(synced: SyncedWorld) -> None:
    """Results, scores (the key as the variance spelled it, and one snake_case name per documented score),
    recommendations and taxonomy (whatever CSV dialect, BOM or line ending) of every ready kit."""
    at = synced.server.clock.now()
    variance = synced.server.state.variance
    assert isinstance(variance, Variance)
    ready = [k for k in registered_kits(synced.world, at) if _ready(k, at)]
    assert len(ready) >= 5
    results = set(table(synced, "SELECT kit_id, sample_id, export_date, pipeline_id FROM results"))
    assert results == {
        (k.kit_id, k.result.sample_id, _wire_second(k.result.export_date), k.result.pipeline_id)
        for k in ready
        if k.result
    }
    scores = set(table(synced, "SELECT kit_id, score_name, score_key, value FROM scores"))
    snake = {name: name.lower() for name in SCORE_SPELLINGS}  # gut_health, diversity, probiotic, ...
    assert scores == {
        (k.kit_id, variance.score_name(k.kit_id, name), snake.get(name, name), value)
        for k in ready
        if k.result
        for name, value in k.result.scores.items()
    }
    assert len({name for _, name, _, _ in scores}) > len(SCORE_SPELLINGS)  # odd case really was served
    recommendations = set(
        table(synced, "SELECT kit_id, category, action, position, item FROM recommendations")
    )
    assert recommendations == {
        (k.kit_id, category, action, position, item)
        for k in ready
        if k.result
        for category, verdicts in k.result.recommendations.items()
        for action, items in verdicts.items()
        for position, item in enumerate(items, start=1)
    }
    # Lineages are compared from the phylum down: the count dialects carry no kingdom row, and kitsync then
    # writes "k__; p__..." where the Greengenes dialect says "k__Bacteria; p__..." (known, see the report).
    taxonomy = {
        (row[0], row[1], _below_kingdom(row[2])): row[3:]
        for row in table(
            synced, "SELECT kit_id, rank, lineage, taxon, relative_abundance, read_count FROM taxonomy"
        )
    }
    expected = {}
    for kit in ready:
        assert kit.result is not None
        for row in kit.result.taxonomy:
            count = None if kit.result.csv_dialect == "greengenes" else row.count
            expected[(kit.kit_id, row.rank, _below_kingdom(row.lineage))] = (row.taxon, row.abundance, count)
    assert taxonomy.keys() == expected.keys()
    for key, (taxon, abundance, count) in taxonomy.items():
        want_taxon, want_abundance, want_count = expected[key]
        assert (taxon, count) == (want_taxon, want_count), key
        assert math.isclose(abundance, want_abundance, rel_tol=1e-6, abs_tol=1e-8), key


def _below_kingdom(lineage: str) -> str:
    return "; ".join(lineage.split("; ")[1:])


def test_nothing_is_asked_again_once_read(synced: SyncedWorld) -> None:
    """A third sync at the same virtual time: no sample's details are fetched again (a sample ordered with
    empty metadata once was, every run), and the warehouse does not change."""
    before = {
        name: sorted(table(synced, f"SELECT * EXCLUDE (observed_at) FROM {name}"), key=repr)  # noqa: S608
        for name in ("kits", "status_events", "deliverables", "quality_controls", "trait_scores", "scores")
    }
    synced.server.reset_request_counts()
    synced.sync()
    counts = synced.server.request_counts()
    assert sum(counts.get("gencove.sample", {}).values()) == 0, counts.get("gencove.sample")
    assert sum(counts.get("biomesight.results", {}).values()) == 0
    after = {
        name: sorted(table(synced, f"SELECT * EXCLUDE (observed_at) FROM {name}"), key=repr)  # noqa: S608
        for name in before
    }
    assert after == before


def test_a_run_that_could_not_list_everything_says_so(prefect_api: str, tmp_path: Path) -> None:
    """Gencove's listing answers 503 throughout one run: the run still completes (Biomesight is synced), but
    its summary and its sync_runs row say it is incomplete and why. Once the partner is back, the next run is
    complete and every sample is there."""
    with (
        environment(FAST_RETRIES),
        SyncedWorld.start(
            tmp_path / "data",
            seed=SEED + 1,
            kits=10,
            gencove_samples=40,
            rounds=0,
            webhooks=False,
            variance=True,
        ) as synced,
    ):
        synced.server.add_fault("gencove.project_samples:503")
        [report] = synced.sync()
        gencove = next(s for s in report.summaries if s.get("flow") == "sync-gencove")
        assert gencove["state"] == "completed"
        assert gencove["complete"] is False
        assert "project-samples" in gencove["incomplete_reason"]
        assert "ServerError" in gencove["incomplete_reason"]
        [(complete, reason)] = synced.rows(
            "SELECT complete, incomplete_reason FROM sync_runs WHERE flow = 'sync-gencove'"
        )
        assert (complete, reason) == (False, gencove["incomplete_reason"])
        biomesight = next(s for s in report.summaries if s.get("flow") == "sync-biomesight")
        assert biomesight["complete"] is True

        synced.server.clear_faults()
        [report] = synced.sync()
        gencove = next(s for s in report.summaries if s.get("flow") == "sync-gencove")
        assert gencove["complete"] is True
        at = synced.server.clock.now()
        kits = {row[0] for row in synced.rows("SELECT kit_id FROM kits WHERE provider = 'gencove'")}
        assert kits == {s.sample_id for s in our_samples(synced.world, at)}


def test_details_newer_than_the_listing_do_not_move_where_it_resumes(
    prefect_api: str, tmp_path: Path
) -> None:
    """Run 1 syncs everything. Four virtual days pass: samples move on, and Gencove pushes a webhook for each
    one that finishes (spelled by the variance profile, like every answer). Run 2's listing answers 503
    throughout, yet the pushed samples' details are fetched, with the newest `modified` of all. Run 3 (Gencove
    back, same virtual time) must still list every sample changed since run 1: resuming from the pushed
    samples' `modified` skipped those that changed earlier."""
    overlap = timedelta(minutes=60)  # KITSYNC_GENCOVE_CURSOR_OVERLAP_MINUTES' default
    with (
        environment(FAST_RETRIES),
        SyncedWorld.start(
            tmp_path / "data", seed=SEED + 2, kits=10, gencove_samples=200, rounds=1, variance=True
        ) as synced,
    ):
        before = synced.server.clock.now()
        synced.server.advance(timedelta(days=4))
        synced.server.wait_webhooks()
        at = synced.server.clock.now()
        samples = our_samples(synced.world, at)
        pushed = [s for s in samples if not _is_final(s, before) and _is_final(s, at)]
        assert pushed, "the world should finish some samples within four days"
        newest_pushed = max(s.modified_at(at) for s in pushed)
        skipped_before = [
            s for s in samples if s not in pushed and before < s.modified_at(at) < newest_pushed - overlap
        ]
        assert skipped_before, "some sample should change well before the last pushed one"

        synced.server.add_fault("gencove.project_samples:503")
        synced.sync()
        synced.server.clear_faults()
        synced.sync()

        latest = dict(
            synced.rows(
                "SELECT entity_id, arg_max(partner_status, partner_date) FROM status_events "
                "WHERE provider = 'gencove' GROUP BY entity_id"
            )
        )
        modified = dict(synced.rows("SELECT kit_id, modified_at FROM kits WHERE provider = 'gencove'"))
        stale = {
            s.sample_id
            for s in samples
            if latest.get(s.sample_id) != _status_moment(s, at)[0]
            or modified.get(s.sample_id) != s.modified_at(at)
        }
        assert not stale, (
            f"{len(stale)} of {len(skipped_before)} samples never listed again: {sorted(stale)[:3]}"
        )
