"""Readers beside loads, and one load at a time: real processes, as DuckDB locks files per process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from tests.warehouse.tables import STATUS_EVENTS, at, db_of, load_lake, rows_table, table_rows
from warehouse import lake
from warehouse.load import LoadReport
from warehouse.publish import WarehouseBusy

REPO = Path(__file__).resolve().parents[2]

# Reads the published warehouse over and over, each time on a fresh connection, and checks that every
# snapshot is consistent: the event count equals the rows the ledger says were loaded (every event has its
# own key), and never goes down. Prints "ready" after the first read, then the counts it saw.
READER = """
import os, sys
from warehouse.duck import connect_readonly
db, stop = sys.argv[1], sys.argv[2]
seen = []
finished = False
while not finished:
    finished = os.path.exists(stop)  # the read after the stop sign opens the last snapshot
    connection = connect_readonly(db)
    try:
        [(events, ledger)] = connection.execute(
            "SELECT (SELECT count(*) FROM status_events),"
            " (SELECT coalesce(sum(row_count), 0) FROM loaded_files WHERE table_name = 'status_events')"
        ).fetchall()
    finally:
        connection.close()
    if events != ledger:
        sys.exit(f"inconsistent snapshot: {events} events, ledger says {ledger}")
    if seen and events < seen[-1]:
        sys.exit(f"went back in time: {seen[-1]} then {events}")
    if not seen:
        print("ready", flush=True)
    seen.append(events)
print(" ".join(map(str, sorted(set(seen)))), flush=True)
"""

HOLDER = """
import sys
from pathlib import Path
from warehouse.publish import writer_lock
with writer_lock(Path(sys.argv[1]), timeout=10):
    print("locked", flush=True)
    sys.stdin.read()
"""


def python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def land_events(root: Path, batch: int, size: int) -> None:
    rows = [
        {
            "provider": "biomesight",
            "kit_id": f"b{batch}-k{n}",
            "status": "shipped",
            "source": "poll",
            "observed_at": at(1),
        }
        for n in range(size)
    ]
    lake.write_table(root, STATUS_EVENTS, rows_table(STATUS_EVENTS, rows), ingest_date=date(2026, 11, 22))


def test_readers_see_only_whole_loads_while_loads_run(tmp_path: Path) -> None:
    land_events(tmp_path, 0, 10)
    load_lake(tmp_path)
    stop = tmp_path / "stop"
    reader = python(READER, str(db_of(tmp_path)), str(stop))
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "ready"
        sizes = [20_000 + batch for batch in range(1, 6)]
        for batch, size in enumerate(sizes, start=1):
            land_events(tmp_path, batch, size)
            load_lake(tmp_path)
        stop.touch()
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()

    assert reader.returncode == 0, err
    counts = [int(n) for n in out.split()]
    total = 10 + sum(sizes)
    assert counts[-1] == total
    assert set(counts) <= {10 + sum(sizes[:k]) for k in range(len(sizes) + 1)}  # only ever a whole load
    assert len(table_rows(db_of(tmp_path), "status_events")) == total


def test_a_second_load_waits_for_the_lock_then_gives_up_or_proceeds(tmp_path: Path) -> None:
    land_events(tmp_path, 1, 3)
    holder = python(HOLDER, str(db_of(tmp_path).parent / ".lock"))
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"

        started = time.monotonic()
        with pytest.raises(WarehouseBusy, match="another load"):
            load_lake(tmp_path, lock_timeout=0.3)
        assert time.monotonic() - started >= 0.3

        reports: list[LoadReport] = []
        waiting = threading.Thread(target=lambda: reports.append(load_lake(tmp_path, lock_timeout=30)))
        waiting.start()
        time.sleep(0.3)
        assert reports == []  # still waiting for the holder
        holder.communicate("", timeout=10)  # closing stdin releases the lock
        waiting.join(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    assert len(reports) == 1
    assert reports[0].files_merged == 1
