"""Crash injection for the crash-safety tests: `KITSYNC_CRASH_AT=<point>:<n>` SIGKILLs the process the n-th
time it passes `<point>` (a name the lake, load and publish code mark with `crash_point`).

Killing a real sync at an exact step (mid parquet write, after a load's merge but before its commit...) is
what proves that a normal re-run repairs everything; timing a kill from outside cannot hit those steps
reliably. Unset, as it always is outside those tests, a point costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

CRASH_AT = "KITSYNC_CRASH_AT"
_passed: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Die here, without any cleanup (as on power loss or the OOM killer), if the environment asks for it."""
    spec = os.environ.get(CRASH_AT)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _passed[name] += 1
    if _passed[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
