"""What one running sandbox shares between its routes: the world, tokens, faults, traffic and webhooks."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from sandbox.faults import FaultPlan
from sandbox.gencove_listing import ProjectListing
from sandbox.model import GencoveFile, GencoveSample, World
from sandbox.tokens import TokenStore
from sandbox.traffic import Traffic
from sandbox.variance import Variance

if TYPE_CHECKING:
    from sandbox.webhooks import WebhookDispatcher


@dataclass
class SandboxState:
    """Shared state; `generation` moves whenever the API changes the world, so caches know to rebuild."""

    world: World
    tokens: TokenStore = field(default_factory=TokenStore)
    faults: FaultPlan = field(default_factory=FaultPlan)
    traffic: Traffic = field(default_factory=Traffic)
    webhooks: WebhookDispatcher | None = None
    generation: int = 0
    # Orders placed through the API are visible at once even if their purchase_date lies ahead of the clock.
    api_orders: set[str] = field(default_factory=set)
    listing: ProjectListing = field(default_factory=ProjectListing)
    variance: Variance | None = None  # `serve --variance`: spell answers the way the docs leave open
    _files: dict[str, tuple[GencoveSample, GencoveFile]] = field(default_factory=dict, repr=False)
    _files_key: tuple[int, int] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> datetime:
        """The virtual time every answer is computed at."""
        return self.world.clock.now()

    def world_changed(self) -> None:
        """Record a change made to the world, invalidating derived caches."""
        with self._lock:
            self.generation += 1

    def remember_files(self, sample: GencoveSample, files: list[GencoveFile]) -> None:
        """Index deliverables as `samples/{id}` hands them out, so a checksum lookup rarely needs a scan."""
        with self._lock:
            for deliverable in files:
                self._files[deliverable.file_id] = (sample, deliverable)

    def find_file(self, file_id: str) -> tuple[GencoveSample, GencoveFile] | None:
        """A deliverable by id; a miss scans every sample once per world generation (deliverables of a
        generated world are built on access, so the scan is the expensive path)."""
        with self._lock:
            found = self._files.get(file_id)
            key = (self.generation, len(self.world.samples))
            if found is not None or self._files_key == key:
                return found
            for sample in self.world.samples.values():
                for deliverable in sample.files:
                    self._files[deliverable.file_id] = (sample, deliverable)
            self._files_key = key
            return self._files.get(file_id)


STATE_KEY = web.AppKey("sandbox_state", SandboxState)


def state_of(request: web.Request) -> SandboxState:
    """The sandbox state of the app serving `request`."""
    return request.app[STATE_KEY]
