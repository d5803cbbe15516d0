"""Every fault the sandbox can inject, on every partner endpoint a sync calls, against the real flows.

For each fault kind a fresh small world is synced once with one rule per endpoint (both partners at once),
then once more with the faults gone, at the same virtual time. After the faulted run every kit the partners
show is loaded, quarantined with a reason, or still pending; after the clean run all of them are loaded; and
no table ever holds two rows for one primary key. Contents are reconciled row by row with the sandbox's ground
truth (tests/reliability/content.py): after the faulted run no row is wrong or invented (only missing, left
for the next run), after the clean run every table is exact. Each (endpoint, kind) cell counts as a scenario
only if its rule really fired.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from extract.pagination import MAX_PAGE_SIZE
from flows.demo import environment, sandbox_environment
from sandbox.accounts import GENCOVE_API_KEY, GENCOVE_PROJECT_IDS
from sandbox.changes import order_sample_kit
from sandbox.faults import DEFAULT_UNKNOWN_STATUS, ENDPOINTS
from sandbox.model import StatusChange
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from tests.flows.truth import our_samples, sample_is_final
from tests.reliability.conftest import FAST_RETRIES
from tests.reliability.figures import FIGURES
from tests.reliability.reconcile import ContentReport, Key, reconcile, reconcile_content, record_figures
from tests.synced import SyncedWorld

# What a sync asks of each partner (orders, kit registration, sample-kit and checksums are never called).
BIOMESIGHT_SYNC = (
    "biomesight.token",
    "biomesight.kit_status",
    "biomesight.order_status",
    "biomesight.results",
)
GENCOVE_SYNC = (
    "gencove.project_samples",
    "gencove.sample",
    "gencove.metadata",
    "gencove.sample_statuses",
    "gencove.quality_controls",
    "gencove.trait_scores",
    "gencove.ancestry",
)
SYNC_ENDPOINTS = BIOMESIGHT_SYNC + GENCOVE_SYNC
assert set(SYNC_ENDPOINTS) <= set(ENDPOINTS)


@dataclass(frozen=True)
class Kind:
    """One fault kind (with its parameters) and the endpoints it applies to."""

    label: str
    kind: str
    params: str = ""
    endpoints: tuple[str, ...] = SYNC_ENDPOINTS

    def specs(self, endpoint: str, rate: float) -> list[str]:
        """The first request to the endpoint surely, later ones at `rate` (a rate alone may never hit an
        endpoint a run calls twice, such as the token or a project listing)."""
        params = f",{self.params}" if self.params else ""
        tail = f":{self.params}" if self.params else ""
        return [f"{endpoint}:{self.kind}:count=1{params}", f"{endpoint}:{self.kind}:{rate}{tail}"]


@dataclass(frozen=True)
class Group:
    """Kinds injected together into one world. The first requests to an endpoint take the kinds' `count=1`
    rules one after another, so a group holds at most as many kinds as a request has attempts (3) plus one,
    which also means the first request of an endpoint fails for good and leaves work for the next run."""

    name: str
    kinds: tuple[Kind, ...]
    rate: float

    def rules(self) -> list[tuple[Kind, str, list[str]]]:
        return [(k, e, k.specs(e, self.rate)) for k in self.kinds for e in k.endpoints]


GROUPS = [
    Group(
        "throttled and failing",
        (
            Kind("429 without Retry-After", "429"),
            Kind("500", "500"),
            Kind("502", "502"),
            Kind("503 (Gencove: maintenance body)", "503"),
        ),
        rate=0.06,
    ),
    Group(
        "slow, dropped, cut short",
        (
            Kind("dropped connection", "drop"),
            Kind("429 with Retry-After", "429", "retry_after=1"),
            Kind("timeout", "slow", "delay=1.5"),
            Kind("truncated JSON", "truncate"),
        ),
        rate=0.04,
    ),
    Group(
        "bad content",
        (
            Kind("bad base64", "bad_base64", endpoints=("biomesight.results",)),
            Kind("broken CSV", "broken_csv", endpoints=("biomesight.results",)),
            # On the listing it would hide every sample of a page: see the changing-list test below.
            Kind(
                "unknown status",
                "unknown_status",
                endpoints=(
                    "biomesight.kit_status",
                    "biomesight.order_status",
                    "gencove.sample",
                    "gencove.sample_statuses",
                ),
            ),
            Kind(
                "token expired mid-run",
                "expire_token",
                endpoints=("biomesight.kit_status", "biomesight.order_status", "biomesight.results"),
            ),
        ),
        rate=0.15,
    ),
]


@pytest.fixture
def fast_retries() -> Iterator[None]:
    with environment(FAST_RETRIES):
        yield


def _states(reports: list[Any]) -> list[str]:
    return [summary.get("state", "?") for report in reports for summary in report.summaries]


def _said_by_a_fault(table: str, key: Key) -> bool:
    """A status an `unknown_status` rule made the partner send: kept verbatim by design, though no partner's
    ground truth holds it."""
    return table == "status_events" and key[3] in DEFAULT_UNKNOWN_STATUS.values()


def _content(synced: SyncedWorld, at: datetime) -> ContentReport:
    return reconcile_content(synced.world, synced.warehouse, [at]).without(_said_by_a_fault)


def _assert_nothing_wrong_yet(report: ContentReport, said_by_the_fault: frozenset[str] = frozenset()) -> None:
    """After a faulted run rows or values may be missing (left for the next run), never wrong or invented;
    columns in `said_by_the_fault` may hold what an injected fault made the partner say instead."""
    wrong = [m for t in report.tables.values() for m in t.wrong if m[1] not in said_by_the_fault]
    assert wrong == [], report.summary()
    assert report.count("unexpected") == 0, report.summary()


@pytest.mark.parametrize("group", GROUPS, ids=[g.name for g in GROUPS])
def test_a_faulted_sync_loses_nothing_and_the_next_one_completes(
    prefect_api: str, tmp_path: Path, fast_retries: None, group: Group
) -> None:
    with SyncedWorld.start(tmp_path / "data", seed=11, kits=50, rounds=0, webhooks=False) as synced:
        server = synced.server
        cells = [
            (kind, endpoint, [server.add_fault(s) for s in specs]) for kind, endpoint, specs in group.rules()
        ]

        faulted = synced.sync()
        at = server.clock.now()

        assert set(_states(faulted)) == {"completed"}, faulted
        silent = [
            f"{endpoint} {kind.label}"
            for kind, endpoint, rules in cells
            if not any(r.injected for r in rules)
        ]
        assert not silent, f"faults that never fired (those cells would prove nothing): {silent}"
        partial = reconcile(synced.warehouse, synced.world, at)
        assert not partial.duplicates, partial.summary()
        # Biomesight kits come from the platform's export: a fault cannot make kitsync forget one.
        assert not [key for key in partial.lost if key.startswith("biomesight/")], partial.summary()
        quarantine = synced.rows("SELECT reason, detail FROM quarantine")
        assert all(reason and detail for reason, detail in quarantine)
        _assert_nothing_wrong_yet(_content(synced, at))

        server.clear_faults()
        synced.sync()
        final = reconcile(synced.warehouse, synced.world, at)
        content = _content(synced, at)

        record_figures(content, final.duplicates)
        assert content.exact, content.summary()
        assert final.complete, final.summary()
        assert not final.duplicates, final.summary()
        assert final.loaded == final.expected > 0
        for kind, _, _ in cells:
            FIGURES.add("fault_scenarios", what=kind.label)


def _change_the_list_after_its_first_page(server: SandboxServer, project_id: str) -> dict[str, str]:
    """Once the first page of a project's listing is served, modify a sample that page held and insert a new
    one, as a partner does while a client pages (the sandbox's traffic counter is the hook: it sees each
    answered request). Returns the ids, filled in when it happened."""
    changed: dict[str, str] = {}
    traffic = server.state.traffic
    record = traffic.record

    def change(endpoint: str, status: int | str) -> None:
        record(endpoint, status)
        if endpoint != "gencove.project_samples" or str(status) != "200" or changed:
            return
        world = server.world
        with world.lock:
            now = server.clock.now()
            running = [
                s
                for s in our_samples(world, now)
                if s.project_id == project_id and not sample_is_final(s, now)
            ]
            oldest = min(running, key=lambda s: (s.modified_at(now), s.sample_id))
            oldest.timeline.append(StatusChange("failed", now, "changed while the client paged"))
            inserted = order_sample_kit(world, GENCOVE_API_KEY, NEW_SAMPLE | {"project_id": project_id}, now)
            server.state.world_changed()
        changed.update(modified=oldest.sample_id, inserted=inserted.sample_id)

    traffic.record = change  # type: ignore[method-assign]
    return changed


NEW_SAMPLE = {
    "recipient_address_name": "Paging Tester",
    "recipient_address_line1": "1 Keyset Lane",
    "recipient_address_city": "Leeds",
    "recipient_address_state_region": "West Yorkshire",
    "recipient_address_postal_code": "LS1 1AA",
    "recipient_address_country_code": "GB",
    "recipient_email": "paging@example.org",
    "recipient_phone": "+44 113 496 0000",
}


def test_a_listing_that_changes_between_pages_loses_nothing(
    prefect_api: str, tmp_path: Path, fast_retries: None
) -> None:
    """Project 1 holds more samples than one page; after its first page is served one of that page's samples
    changes status (jumping to the end of a list sorted by `modified`) and a sample is inserted. The first
    page itself comes back with an undocumented status on every sample. Offset paging would skip a sample
    here; the keyset listing must see both changes in the same run, and the next run must learn the real
    statuses the unknown one hid."""
    project = GENCOVE_PROJECT_IDS[0]
    world = generate_world(seed=11, kits=20, gencove_samples=480)
    assert len([s for s in our_samples(world, world.clock.now()) if s.project_id == project]) > MAX_PAGE_SIZE
    data_dir = tmp_path / "data"
    with SandboxServer(world) as server, environment(sandbox_environment(server, data_dir)):
        synced = SyncedWorld(
            server=server, data_dir=data_dir, env=sandbox_environment(server, data_dir), reports=[]
        )
        unknown = server.add_fault("gencove.project_samples:unknown_status:count=1")
        changed = _change_the_list_after_its_first_page(server, project)

        faulted = synced.sync()
        at = server.clock.now()

        assert set(_states(faulted)) == {"completed"}, faulted
        assert unknown.injected == 1
        assert set(changed) == {"modified", "inserted"}
        kits = {row[0] for row in synced.rows("SELECT kit_id FROM kits WHERE provider = 'gencove'")}
        assert changed["inserted"] in kits
        assert ("failed",) in synced.rows(
            "SELECT partner_status FROM status_events WHERE entity_id = ?", [changed["modified"]]
        )
        partial = reconcile(synced.warehouse, synced.world, at)
        assert not partial.lost, partial.summary()
        assert not partial.duplicates, partial.summary()
        # A list item shows `failed_qc` only with a failed status, which the unknown-status fault replaced.
        _assert_nothing_wrong_yet(_content(synced, at), said_by_the_fault=frozenset({"failed_qc"}))

        server.clear_faults()
        synced.sync()
        final = reconcile(synced.warehouse, synced.world, at)
        content = _content(synced, at)

        record_figures(content, final.duplicates)
        assert content.exact, content.summary()
        assert final.complete, final.summary()
        assert not final.duplicates, final.summary()
        FIGURES.add("fault_scenarios", what="unknown status")
        FIGURES.add("fault_scenarios", what="sample modified while paging")
        FIGURES.add("fault_scenarios", what="sample inserted while paging")


def test_retry_delays_come_from_the_environment(fast_retries: None) -> None:
    """The fault runs above rely on it: KITSYNC_RETRY_* reach the clients' backoff (they once did not)."""
    from flows.runtime import backoff
    from flows.settings import Settings

    policy = backoff(Settings())
    assert (policy.base, policy.cap) == (0.01, 0.05)
