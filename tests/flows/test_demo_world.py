"""The shared synced world is what the flows made of the sandbox: every tracked kit is in the warehouse."""

from __future__ import annotations

from tests.synced import SyncedWorld


def test_every_registered_biomesight_kit_and_visible_gencove_sample_is_loaded(
    synced_world: SyncedWorld,
) -> None:
    world = synced_world.world
    now = synced_world.server.clock.now()
    ours = {k.kit_id for k in world.kits.values() if k.account == "kitsync-sandbox"}
    registered = {
        k.kit_id
        for k in world.kits.values()
        if k.kit_id in ours and k.registered_at and k.registered_at <= now
    }
    loaded = {row[0] for row in synced_world.rows("SELECT kit_id FROM kits WHERE provider = 'biomesight'")}
    assert registered <= loaded
    samples = {
        s.sample_id
        for s in world.samples.values()
        if s.account == "sandbox-gencove-api-key" and s.created <= now
    }
    loaded_samples = {
        row[0] for row in synced_world.rows("SELECT kit_id FROM kits WHERE provider = 'gencove'")
    }
    assert samples == loaded_samples
