"""Crash injection for the crash-safety tests: `KITSYNC_CRASH_AT=<point>:<n>` SIGKILLs the process the n-th
time it passes `<point>` (a name the lake, load and publish code mark with `crash_point` or `crash_hook`).

Killing a real sync at an exact step (mid parquet write, after a load's merge but before its commit...) is
what proves that a normal re-run repairs everything; timing a kill from outside cannot hit those steps
reliably. The environment is read once, when the process starts: unset, as it always is outside those tests,
a hot path holds no hook at all (`crash_hook` returns None) and `crash_point` returns at once.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable

CRASH_AT = "KITSYNC_CRASH_AT"
_SPEC = os.environ.get(CRASH_AT, "")
_POINT, _, _NTH = _SPEC.partition(":")
_passed: Counter[str] = Counter()


def crash_hook(name: str) -> Callable[[], None] | None:
    """The function that dies at `name`, or None when this process is not asked to crash there: a writer
    binds it once, at import or construction, and calls it only when it is not None."""
    if not _POINT or name != _POINT:
        return None
    return lambda: crash_point(name)


def crash_point(name: str) -> None:
    """Die here, without any cleanup (as on power loss or the OOM killer), if the environment asks for it."""
    if name != _POINT:
        return
    _passed[name] += 1
    if _passed[name] >= int(_NTH or 1):
        os.kill(os.getpid(), signal.SIGKILL)
