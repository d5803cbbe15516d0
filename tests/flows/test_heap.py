"""A flow process freezes its startup objects once, and still exits without extension-module leak reports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_startup_objects_are_frozen_once_and_released_at_exit() -> None:
    script = textwrap.dedent(
        """
        import gc
        import duckdb
        from flows.heap import freeze_startup_objects

        duckdb.connect().execute("SELECT 1").fetchall()
        assert gc.get_freeze_count() == 0
        freeze_startup_objects()
        frozen = gc.get_freeze_count()
        later = [[i] for i in range(10_000)]  # objects made after the first call stay collectable
        freeze_startup_objects()
        assert gc.get_freeze_count() == frozen > 10_000, (frozen, gc.get_freeze_count())
        print("ok", frozen)
        """
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")
    assert "leaked" not in done.stderr  # duckdb's nanobind reports frozen objects never released as leaks


def test_a_flow_run_freezes_the_process_startup_objects(prefect_api: str, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import gc, os
        os.environ["PREFECT_API_URL"] = {prefect_api!r}
        os.environ["KITSYNC_DATA_DIR"] = {str(tmp_path / "data")!r}
        os.environ["KITSYNC_REPORT_AFTER_SYNC"] = "false"
        import asyncio
        from flows.load import load_warehouse
        assert gc.get_freeze_count() == 0
        asyncio.run(load_warehouse())
        print("frozen", gc.get_freeze_count())
        """
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 10_000
    assert "leaked" not in done.stderr
