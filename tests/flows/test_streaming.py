"""A sync keeps the partner busy: work it learns of mid-run starts while the rest goes on.

Orderings come from the sandbox itself: every partner request consults its fault plan as it arrives (the
`drop` check) and is counted by its traffic counter as it is answered, so the log below is the order the
partner saw, not a clock reading. Where a listing page must be slow enough for other work to get going, the
sandbox's `slow` fault holds it; nothing here asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from flows.cli import main
from flows.demo import _import_export, environment, sandbox_environment
from sandbox.accounts import GENCOVE_PROJECT_IDS
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from tests.flows.truth import our_samples, registered_kits, requests, results_visible, sample_is_final

ASKED, ANSWERED = "asked", "answered"


class RequestLog:
    """(ASKED | ANSWERED, endpoint) for every partner request, in the order the sandbox saw them."""

    def __init__(self, server: SandboxServer) -> None:
        self.events: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        plan, traffic = server.state.faults, server.state.traffic
        take, record = plan.take, traffic.record

        def taking(endpoint: str, kind: str) -> Any:
            if kind == "drop":  # the first fault checked for each request, as it arrives
                self._add(ASKED, endpoint)
            return take(endpoint, kind)

        def recording(endpoint: str, status: int | str) -> None:
            self._add(ANSWERED, endpoint)
            record(endpoint, status)

        plan.take = taking  # type: ignore[method-assign]
        traffic.record = recording  # type: ignore[method-assign]

    def _add(self, what: str, endpoint: str) -> None:
        with self._lock:
            self.events.append((what, endpoint))

    def at(self, what: str, endpoint: str) -> list[int]:
        """Positions in the log of `endpoint`'s requests asked (or answered)."""
        return [i for i, event in enumerate(self.events) if event == (what, endpoint)]


def _sync_gencove(server: SandboxServer, data_dir: Path, **settings: str) -> dict[str, Any]:
    from flows.gencove import sync_gencove

    env = sandbox_environment(server, data_dir)
    env.update({f"KITSYNC_{name.upper()}": value for name, value in settings.items()})
    with environment(env):
        return asyncio.run(sync_gencove(project_ids=[GENCOVE_PROJECT_IDS[0]]))


def test_details_of_listed_final_samples_are_asked_before_the_listing_ends(
    prefect_api: str, tmp_path: Path
) -> None:
    # ~600 samples in the first project: three keyset pages of 200, each held 2 s by the sandbox
    world = generate_world(seed=11, kits=20, gencove_samples=1000)
    with SandboxServer(world, faults=["gencove.project_samples:slow:delay=2"]) as server:
        log = RequestLog(server)
        now = server.clock.now()
        summary = _sync_gencove(server, tmp_path / "data", batch_size="50")
        counts = server.request_counts()

    assert summary["state"] == "completed", summary
    pages, details = log.at(ASKED, "gencove.project_samples"), log.at(ASKED, "gencove.sample")
    assert len(pages) >= 3
    # a details batch started as soon as 50 final samples were listed, while later pages were still to come
    assert details[0] < pages[-1]
    final = {
        s.sample_id
        for s in our_samples(world, now)
        if s.project_id == GENCOVE_PROJECT_IDS[0] and sample_is_final(s, now)
    }
    assert requests(counts, "gencove.sample") == len(final)  # each final sample's details, once


def test_customer_reads_of_a_listing_page_do_not_hold_back_the_next_page(
    prefect_api: str, tmp_path: Path
) -> None:
    # Batches larger than the project: no details batch runs until the listing ends, so the metadata reads
    # during the listing are the customer reads of in-flight samples listed without a client id (the first
    # sync reads each once), each held 3 s by the sandbox.
    world = generate_world(seed=11, kits=20, gencove_samples=1000)
    now = world.clock.now()
    unkeyed = [
        s
        for s in our_samples(world, now)
        if s.project_id == GENCOVE_PROJECT_IDS[0] and not s.client_id and not sample_is_final(s, now)
    ]
    slow = f"gencove.metadata:slow:count={len(unkeyed)},delay=3"
    with SandboxServer(world, faults=[slow]) as server:
        log = RequestLog(server)
        summary = _sync_gencove(server, tmp_path / "data", batch_size="5000")

    assert summary["state"] == "completed", summary
    pages = log.at(ASKED, "gencove.project_samples")
    customer_reads = log.at(ANSWERED, "gencove.metadata")[: len(unkeyed)]
    assert len(pages) >= 3
    assert len(customer_reads) == len(unkeyed) > 10
    assert customer_reads[-1] < log.at(ASKED, "gencove.sample")[0]  # all read during the listing
    # every page was asked before the first customer read came back
    assert pages[-1] < customer_reads[0]


def test_results_of_ready_kits_are_asked_while_polling_goes_on(prefect_api: str, tmp_path: Path) -> None:
    from flows.biomesight import sync_biomesight

    world = generate_world(seed=13, kits=150)
    with SandboxServer(world) as server:
        env = sandbox_environment(server, tmp_path / "data")
        env["KITSYNC_BATCH_SIZE"] = "20"
        now = server.clock.now()
        with environment(env):
            assert _import_export(server)["state"] == "completed"
            log = RequestLog(server)
            summary = asyncio.run(sync_biomesight())
        counts = server.request_counts()

    assert summary["state"] == "completed", summary
    polls = sorted(log.at(ASKED, "biomesight.kit_status") + log.at(ASKED, "biomesight.order_status"))
    results = log.at(ASKED, "biomesight.results")
    # the first results batch (20 ready kits) went ahead of the poll batches still waiting
    assert results[0] < polls[-1]
    ready = {k.kit_id for k in registered_kits(world, now) if results_visible(k, now)}
    assert len(ready) > 20
    assert requests(counts, "biomesight.results") == 2 * len(ready)  # JSON and CSV, once each


def test_kitsync_sync_runs_both_partners_at_once(prefect_api: str, tmp_path: Path) -> None:
    world = generate_world(seed=17, kits=60)
    data_dir = tmp_path / "data"
    # Biomesight's first kit status is held 8 s: one partner after the other, Gencove would not be asked
    # anything until Biomesight's last answer.
    with (
        SandboxServer(world, faults=["biomesight.kit_status:slow:count=1,delay=8"]) as server,
        environment(sandbox_environment(server, data_dir)),
    ):
        assert _import_export(server)["state"] == "completed"
        log = RequestLog(server)
        assert main(["sync"]) == 0
        counts = server.request_counts()
    biomesight_answers = [
        i for i, (what, e) in enumerate(log.events) if what == ANSWERED and "biomesight." in e
    ]
    gencove_asks = [i for i, (what, e) in enumerate(log.events) if what == ASKED and "gencove." in e]
    assert gencove_asks[0] < biomesight_answers[-1]
    # and each partner's sync still asked for everything once (the sandbox's ground truth)
    now = server.clock.now()
    ready = {k.kit_id for k in registered_kits(world, now) if results_visible(k, now)}
    assert requests(counts, "biomesight.results") == 2 * len(ready)
    final = {s.sample_id for s in our_samples(world, now) if sample_is_final(s, now)}
    assert requests(counts, "gencove.sample") == len(final)
