"""Where batch tasks run: in the flow's own process (the default), or fanned out to a Dask cluster.

`KITSYNC_TASK_RUNNER` names the task runner: `default` (Prefect's in-process runner: a batch task is awaited
in the flow's event loop), `dask` (a local Dask cluster of worker processes, started for the run) or a Dask
scheduler's address (`tcp://host:port`, a cluster that outlives runs). The choice is applied in one place,
`with_task_runner`, to the flows `flows/entrypoints.py` exposes to deployments and the command line; the call
sites only say "run this batch" (`run_batch`). On Dask a batch task runs in another process: its arguments
and its result are pickled, and it writes its lake files itself (the lake must be reachable from every Dask
worker: the same disk, or object storage).
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from flows.settings import Settings

F = TypeVar("F")


def task_runner(settings: Settings) -> Any:
    """The Prefect task runner the settings name (None: the flow's default, in-process runner)."""
    choice = settings.task_runner
    if choice == "default":
        return None
    from prefect_dask import DaskTaskRunner

    if choice == "dask":
        # One single-threaded worker process per core: a batch task is CPU-bound between its requests.
        return DaskTaskRunner(cluster_kwargs={"processes": True, "threads_per_worker": 1})
    return DaskTaskRunner(address=choice)


def with_task_runner(flow: F, settings: Settings) -> F:
    """`flow` with the task runner the settings name (unchanged for the default runner)."""
    runner = task_runner(settings)
    return flow if runner is None else flow.with_options(task_runner=runner)  # type: ignore[attr-defined]


def batches_run_here() -> bool:
    """Whether `run_batch` runs batch tasks in this process and event loop (the default runner, or no flow
    run at all) rather than submitting them to another task runner (Dask)."""
    from prefect.context import FlowRunContext
    from prefect.task_runners import ThreadPoolTaskRunner

    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    return runner is None or isinstance(runner, ThreadPoolTaskRunner)


async def run_batch(task: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one batch task and return its result: awaited here under the in-process runner (as a plain call
    of the task), submitted to the flow's task runner otherwise (its result awaited in a thread, so the flow's
    event loop keeps other batches going). A failed task raises its exception either way."""
    if batches_run_here():
        return await task(*args, **kwargs)
    future = task.submit(*args, **kwargs)
    return await asyncio.to_thread(future.result)
