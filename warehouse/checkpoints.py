"""Which windows of a backfill are done, so a backfill re-run after a failure resumes where it stopped.

A backfill is identified by its parameters (the same form filled in again is the same backfill); its ledger is
one small JSON file under `{data_dir}/state/backfills/`, rewritten atomically after each finished window.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from warehouse.duck import OWNER_ONLY_FILE, ensure_private_dir


def backfill_key(parameters: dict[str, Any]) -> str:
    """A stable id of a backfill: a hash of its parameters in canonical JSON."""
    canonical = json.dumps(parameters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class BackfillLedger:
    """The finished windows of one backfill."""

    def __init__(self, data_dir: Path, key: str) -> None:
        self.path = Path(data_dir) / "state" / "backfills" / f"{key}.json"

    def done(self) -> set[str]:
        if not self.path.exists():
            return set()
        return set(json.loads(self.path.read_text()).get("done", []))

    def mark_done(self, window: str) -> None:
        self._write(sorted(self.done() | {window}))

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)

    def _write(self, done: list[str]) -> None:
        ensure_private_dir(self.path.parent)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY_FILE)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"done": done}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
