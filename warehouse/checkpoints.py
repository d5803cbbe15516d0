"""Which windows of a backfill are done, so a backfill re-run after a failure resumes where it stopped.

A backfill is identified by its parameters (the same form filled in again is the same backfill); its ledger is
one small JSON file at `{lake root}/state/backfills/{key}.json`, rewritten whole after each finished window.
It lives beside the lake (local disk or object storage), not in a machine's data directory, so a backfill
re-run on another worker resumes too. One backfill runs at a time per key (Prefect's concurrency on the
backfill deployment), so a plain overwrite is enough: no two writers race on one ledger.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from warehouse.files import LakeRoot, resolve_root

STATE_DIR = "state/backfills"


def backfill_key(parameters: dict[str, Any]) -> str:
    """A stable id of a backfill: a hash of its parameters in canonical JSON."""
    canonical = json.dumps(parameters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class BackfillLedger:
    """The finished windows of one backfill."""

    def __init__(self, root: str | os.PathLike[str] | LakeRoot, key: str) -> None:
        self.root = resolve_root(root)
        self.path = f"{STATE_DIR}/{key}.json"

    def done(self) -> set[str]:
        content = self.root.read(self.path)
        return set() if content is None else set(json.loads(content).get("done", []))

    def mark_done(self, window: str) -> None:
        done = sorted(self.done() | {window})
        self.root.put(self.path, json.dumps({"done": done}).encode())

    def reset(self) -> None:
        self.root.delete(self.path)
