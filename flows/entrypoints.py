"""The flows that deployments (prefect.yaml) and the command line run, each on the task runner the
settings name (`KITSYNC_TASK_RUNNER`, see flows/fanout.py).

The choice is read when this module is imported: for a deployment's run that is when the run starts (the
worker, or `kitsync serve`, loads the entry point in the run's own process), so a run gets its own
environment's.
"""

from __future__ import annotations

from flows import backfill as _backfill
from flows import biomesight as _biomesight
from flows import gencove as _gencove
from flows.fanout import with_task_runner
from flows.settings import Settings

_settings = Settings()

sync_gencove = with_task_runner(_gencove.sync_gencove, _settings)
sync_biomesight = with_task_runner(_biomesight.sync_biomesight, _settings)
backfill = with_task_runner(_backfill.backfill, _settings)
