"""Credentials from Prefect Secret blocks: a run loads them when it starts, in place of the environment's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flows.demo import environment
from sandbox.accounts import GENCOVE_API_KEY
from tests.flows.truth import our_samples, requests
from tests.synced import SyncedWorld


def test_a_secret_block_overrides_the_environment(prefect_api: str, tmp_path: Path) -> None:
    from prefect.blocks.system import Secret

    from flows.gencove import sync_gencove
    from flows.outcomes import RunCannotWork

    Secret(value=GENCOVE_API_KEY).save("kitsync-test-gencove-key", overwrite=True)
    with SyncedWorld.start(tmp_path / "data", kits=30, rounds=0, webhooks=False) as synced:
        wrong = {**synced.env, "KITSYNC_GENCOVE_API_KEY": "a-key-gencove-does-not-know"}
        with environment(wrong), pytest.raises(RunCannotWork, match="KITSYNC_GENCOVE_API_KEY"):
            asyncio.run(sync_gencove())  # the environment's key is refused: the run fails, naming it
        assert requests(synced.server.request_counts(), "gencove.sample") == 0

        with environment({**wrong, "KITSYNC_GENCOVE_API_KEY_BLOCK": "kitsync-test-gencove-key"}):
            summary = asyncio.run(sync_gencove())
        assert summary["state"] == "completed"
        assert summary["kits_polled"] == len(our_samples(synced.world, synced.server.clock.now()))
        assert "quarantined" not in summary or not summary["quarantined"]
