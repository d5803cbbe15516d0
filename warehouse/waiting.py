"""Whether a load would find anything to do, answered without the writer lock or the writer's database.

A run catches its warehouse up with the lake before planning, because other workers (and webhook events just
turned into status events) land files this machine's warehouse has not loaded. Most hourly runs find nothing
waiting, and a load that finds nothing still takes the writer lock, opens the writer file, checks its
migrations and checkpoints (~75 ms at 3M rows). This asks only the published snapshot's ledger and the lake.

The published ledger is a safe stand-in for the writer's: when the writer holds a commit not yet published
(`needs_publish`: a crash between a load's commit and its publish, or loads with `publish=False`), the answer
is "yes" and the load that follows publishes it; otherwise the two files hold the same ledger.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

from transform.schemas import TableSpec
from warehouse.lake import LakeRoot
from warehouse.publish import WarehousePaths, needs_publish


def files_waiting(
    lake_root: str | os.PathLike[str] | LakeRoot,
    db_path: str | os.PathLike[str],
    specs: Mapping[str, TableSpec] | None = None,
    *,
    ignore: Collection[str] = (),
) -> bool:
    """Whether the lake holds a file of a table (not in `ignore`) that the published warehouse has not
    loaded, or the writer holds a commit not yet published, or there is no published warehouse yet.

    `ignore` names tables whose unloaded files alone do not call for a load (a run's own `sync_runs` rows:
    the next load that has something else to do loads them too). The lake side is the load's own plan
    (`has_unloaded_files`: the journal's tail, one request on object storage when nothing waits).
    """
    from warehouse.load import default_specs, has_unloaded_files

    specs = default_specs() if specs is None else specs
    if needs_publish(WarehousePaths.of(db_path)):  # also true when nothing was ever published
        return True
    return has_unloaded_files(lake_root, db_path, {n: s for n, s in specs.items() if n not in ignore})
