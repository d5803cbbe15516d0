"""One run of a sync at a time per data directory, and how a run that cannot work ends.

A second run of the same sync steps aside with a clear message (a `skipped` summary); a partner that refused
our credentials or could not be reached ends the run Failed with one line naming what to fix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flows.logs import run_logger
from flows.outcomes import RunCannotWork
from flows.runtime import data_paths
from flows.settings import Settings
from warehouse.publish import RunInProgress, run_lock


@contextmanager
def sync_lock(settings: Settings, name: str) -> Iterator[None]:
    """One run of a sync at a time per data directory (RunInProgress for the second one)."""
    with run_lock(data_paths(settings).data_dir / "locks" / f"sync-{name}.lock", what=f"{name} sync"):
        yield


def cannot_work_state(error: RunCannotWork) -> Any:
    """The Failed state a flow returns when a partner cannot be used: Prefect shows its one line as the run's
    message (no traceback: nothing is broken in kitsync), and a caller of the flow gets `error` raised."""
    from prefect.states import Failed

    return Failed(message=str(error), data=error)


async def run_exclusively(
    settings: Settings, name: str, work: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run `work` holding the `name` sync's lock; if another run holds it, step aside with a clear message.

    A partner that refused our credentials or could not be reached ends the run Failed, as its state (see
    `cannot_work_state`)."""
    try:
        with sync_lock(settings, name):
            return await work()
    except RunInProgress as busy:
        run_logger().warning("%s", busy)
        return {"flow": name, "state": "skipped", "reason": str(busy)}
    except RunCannotWork as error:
        return cannot_work_state(error)  # type: ignore[no-any-return]
