"""A sandbox world synced by the real flows into a data directory: what end-to-end tests check against.

`synced_world` (tests/conftest.py) builds one per test session with `flows.demo.simulate`, the same job
`make demo` runs; tests that change a world (faults, backfills) build their own with `SyncedWorld.start`.
Expectations come from the sandbox's own `World` (its ground truth), never from numbers copied from a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from flows.demo import RoundReport, environment, sandbox_environment, simulate, webhooks_to_receiver
from flows.settings import Settings
from sandbox.model import World
from sandbox.server import SandboxServer
from sandbox.variance import Variance, vary_world
from sandbox.world import generate_world
from warehouse.duck import connect_readonly


@dataclass
class SyncedWorld:
    """A running sandbox, the data directory kitsync synced it into, and the environment pointing at both."""

    server: SandboxServer
    data_dir: Path
    env: dict[str, str]
    reports: list[RoundReport]

    @property
    def world(self) -> World:
        return self.server.world

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "warehouse" / "kitsync.duckdb"

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the published warehouse."""
        connection = connect_readonly(self.warehouse)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        return self.rows(sql, params)[0][0]

    def sync(self, rounds: int = 1, step: timedelta = timedelta(hours=12)) -> list[RoundReport]:
        """More rounds of import + both syncs (the clock moves between rounds, not before the first)."""
        with environment(self.env):
            reports = simulate(self.server, rounds=rounds, step=step)
        self.reports.extend(reports)
        return reports

    @classmethod
    @contextmanager
    def start(
        cls,
        data_dir: Path,
        *,
        seed: int = 7,
        kits: int = 300,
        rounds: int = 3,
        step: timedelta = timedelta(days=1),
        webhooks: bool = True,
        faults: list[str] | None = None,
        variance: bool = False,
        gencove_samples: int | None = None,
    ) -> Iterator[SyncedWorld]:
        """Generate a world, serve it, sync it `rounds` times (with webhooks flowing if asked). `variance`
        serves it under the sandbox's variance profile (`kitsync sandbox serve --variance`), from `seed`."""
        world = generate_world(seed=seed, kits=kits, gencove_samples=gencove_samples)
        profile = None
        if variance:
            profile = Variance.from_seed(seed)
            vary_world(world)
        with ExitStack() as stack:
            server = stack.enter_context(SandboxServer(world, faults=faults, variance=profile))
            env = sandbox_environment(server, data_dir)
            stack.enter_context(environment(env))
            if webhooks:
                stack.enter_context(webhooks_to_receiver(server, Settings()))
            reports = simulate(server, rounds=rounds, step=step) if rounds else []
            yield cls(server=server, data_dir=data_dir, env=env, reports=reports)
