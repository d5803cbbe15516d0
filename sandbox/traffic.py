"""Request counts per endpoint and status: how tests assert how many calls kitsync made, with what outcome."""

from __future__ import annotations

import threading
from collections import Counter


class Traffic:
    """Counts partner requests by endpoint name and response status (or "dropped")."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def record(self, endpoint: str, status: int | str) -> None:
        """Count one answered (or dropped) request."""
        with self._lock:
            self._counts[(endpoint, str(status))] += 1

    def counts(self) -> dict[str, dict[str, int]]:
        """`{endpoint: {status: n}}` for every endpoint that saw a request."""
        with self._lock:
            snapshot = dict(self._counts)
        nested: dict[str, dict[str, int]] = {}
        for (endpoint, status), n in sorted(snapshot.items()):
            nested.setdefault(endpoint, {})[status] = n
        return nested

    def total(self, endpoint: str | None = None) -> int:
        """Requests seen in all, or for one endpoint."""
        with self._lock:
            return sum(n for (name, _), n in self._counts.items() if endpoint in (None, name))

    def reset(self) -> None:
        """Start counting from zero (between phases of a test)."""
        with self._lock:
            self._counts.clear()
