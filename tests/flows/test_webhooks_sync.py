"""Webhooks end to end: pushed to the real receiver over HTTP, landed, turned into events by the next sync.

Partners redeliver: an event delivered twice must count once, in the warehouse and in the requests the sync
makes because of it. Also checks the run's Prefect artifacts.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx

from flows.demo import environment
from flows.receiver import webhook_app, webhook_server_in_thread
from flows.settings import Settings
from sandbox.accounts import BIOMESIGHT_WEBHOOK_TOKEN, GENCOVE_PROJECT_IDS
from sandbox.gencove_views import current_status
from sandbox.webhooks import gencove_signature
from sandbox.wire import biomesight_time, gencove_time
from tests.flows.truth import our_samples, registered_kits, requests, sample_is_final
from tests.synced import SyncedWorld


def _artifact_markdown(api_url: str, key: str) -> str:
    """The newest artifact under `key`, read from the Prefect API over HTTP.

    (Prefect 3.8.8's own client sends `flow_runs: null` in this filter, which its server rejects with 422.)
    """
    body = {"artifacts": {"key": {"any_": [key]}}, "limit": 1, "sort": "CREATED_DESC"}
    found = httpx.post(f"{api_url}/artifacts/filter", json=body, timeout=30).raise_for_status().json()
    return str(found[0]["data"]) if found else ""


def test_events_delivered_twice_are_counted_once(prefect_api: str, tmp_path: Path) -> None:
    from flows.biomesight import sync_biomesight
    from flows.gencove import sync_gencove

    with SyncedWorld.start(tmp_path / "data", kits=80, rounds=1, webhooks=False) as synced:
        world, server = synced.world, synced.server
        now = server.clock.now()
        kit = next(k for k in registered_kits(world, now) if any(c.at > now for c in k.timeline))
        change = next(c for c in kit.timeline if c.at > now)
        sample = next(s for s in our_samples(world, now) if not sample_is_final(s, now))
        kit_event = {
            "kit_id": kit.kit_id,
            "status": change.status,
            "description": change.description,
            "date": biomesight_time(change.at),
        }
        gencove_event = json.dumps(
            [
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "analysis_complete_v2",
                    "timestamp": gencove_time(now),
                    "payload": {
                        "project": {"id": sample.project_id},
                        "samples": [
                            {
                                "id": sample.sample_id,
                                "client_id": sample.client_id,
                                "last_status": {"status": sample.timeline[-1].status},
                            }
                        ],
                    },
                }
            ]
        ).encode()
        with environment(synced.env), webhook_server_in_thread(webhook_app(Settings())) as url:
            answers = []
            for _ in range(2):
                answers.append(
                    httpx.post(
                        f"{url}/webhooks/biomesight",
                        json=kit_event,
                        headers={"Authorization": f"Bearer {BIOMESIGHT_WEBHOOK_TOKEN}"},
                    ).json()
                )
                answers.append(
                    httpx.post(
                        f"{url}/webhooks/gencove",
                        content=gencove_event,
                        headers={
                            "Content-Type": "application/json",
                            "Gencove-Signature": gencove_signature(gencove_event),
                        },
                    ).json()
                )
            assert answers == [
                {"accepted": 1, "duplicates": 0},
                {"accepted": 1, "duplicates": 0},
                {"accepted": 0, "duplicates": 1},
                {"accepted": 0, "duplicates": 1},
            ]
            assert sample.project_id in GENCOVE_PROJECT_IDS

            # Gencove first, before the clock moves: only the pushed sample is asked for. The push ran ahead
            # of the API (the sample is not final yet), so its details wait for a run where it is final.
            server.reset_request_counts()
            gencove_summary = asyncio.run(sync_gencove())
            assert requests(server.request_counts(), "gencove.sample") == 1
            assert gencove_summary["results_fetched"] == 0
            shown = current_status(sample, now)
            assert gencove_summary.get("deferred") == {f"sample: not final in its detail ({shown})": 1}

            server.set_time(change.at)
            with environment({"KITSYNC_REPORT_AFTER_SYNC": "true"}):  # the demo world turns it off
                biomesight_summary = asyncio.run(sync_biomesight())
            assert biomesight_summary["rows_written"]["webhook_events"] == 1
            assert biomesight_summary["report"]["status"] == "written"  # something changed: report refreshed
            assert Path(biomesight_summary["report"]["path"]).is_file()
            again = asyncio.run(sync_biomesight())
            assert "webhook_events" not in again["rows_written"]

        rows = synced.rows(
            "SELECT source FROM status_events WHERE entity = 'kit' AND entity_id = ? AND partner_status = ?",
            [kit.kit_id, change.status],
        )
        assert rows == [("webhook",)]  # pushed first, polled later: one event, attributed to the push
        markdown = _artifact_markdown(prefect_api, "sync-biomesight-summary")
        assert "# sync-biomesight — completed" in markdown
        assert "kits polled" in markdown
        assert Settings().biomesight_client_secret.get_secret_value() not in markdown
        assert "kits tracked" in _artifact_markdown(prefect_api, "cohort-report").lower()
