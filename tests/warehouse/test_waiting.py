"""`files_waiting`: whether a load would find anything to do, asked of the published ledger and the lake,
for both warehouse kinds. The oracle is the load: when `files_waiting` says no, a load merges nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.warehouse.tables import KIT_STATE, SPECS, STATUS_EVENTS
from tests.warehouse.test_load import event, kit, land
from warehouse.load import load
from warehouse.waiting import files_waiting

KINDS = {"embedded": "kitsync.duckdb", "ducklake": "kitsync.ducklake"}


def _load(root: Path, db: Path, **options: object) -> int:
    """Files the load merged (the oracle)."""
    return load(root, db, SPECS, views_dir=root / "no-views", **options).files_merged  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_files_wait_until_loaded_and_ignored_tables_call_for_no_load(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "warehouse" / KINDS[kind]
    land(tmp_path, KIT_STATE, [kit("K1", 1)])
    assert files_waiting(tmp_path, db, SPECS)  # nothing published yet
    assert _load(tmp_path, db) == 1
    assert not files_waiting(tmp_path, db, SPECS)
    assert _load(tmp_path, db) == 0  # the oracle agrees

    # A file of an ignored table alone (a run's own record) calls for no load; any other file does.
    land(tmp_path, STATUS_EVENTS, [event("K1", 2)])
    assert files_waiting(tmp_path, db, SPECS)
    assert not files_waiting(tmp_path, db, SPECS, ignore=[STATUS_EVENTS.name])
    assert _load(tmp_path, db) == 1
    assert not files_waiting(tmp_path, db, SPECS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_load_committed_but_not_published_waits(tmp_path: Path, kind: str) -> None:
    """The published ledger stands in for the writer's only while the two agree: a load with publish=False
    (or a crash before the publish) leaves the writer ahead, and the next load must publish it."""
    db = tmp_path / "warehouse" / KINDS[kind]
    land(tmp_path, KIT_STATE, [kit("K1", 1)])
    _load(tmp_path, db)
    land(tmp_path, KIT_STATE, [kit("K2", 1)])
    assert _load(tmp_path, db, publish=False) == 1
    assert files_waiting(tmp_path, db, SPECS)  # nothing new in the lake, but analysts lack K2
    report = load(tmp_path, db, SPECS, views_dir=tmp_path / "no-views")
    assert report.published
    assert not files_waiting(tmp_path, db, SPECS)
