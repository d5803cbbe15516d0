"""Bad command lines, an unwritable data directory and a full disk: one clear line, a non-zero exit status,
and nothing written (or, for a disk that fills mid-run, everything written before left as it was)."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.cli import main
from flows.demo import _import_export, environment, sandbox_environment
from sandbox.server import SandboxServer
from sandbox.world import generate_world
from tests.reliability.conftest import FAST_RETRIES
from tests.reliability.figures import FIGURES
from tests.reliability.reconcile import contents, duplicates, reconcile, reconcile_content, record_figures
from transform.schemas import ALL_SPECS
from warehouse.lake import list_files

REPO = Path(__file__).resolve().parents[2]

# (arguments, extra environment, words the message must hold: what is wrong and how to fix it)
BAD_COMMAND_LINES = [
    (["backfill", "--from", "2026-13-01", "--to", "2026-12-31"], {}, ["not a date", "YYYY-MM-DD"]),
    (["backfill", "--from", "yesterday", "--to", "2026-12-31"], {}, ["not a date", "YYYY-MM-DD"]),
    (["backfill", "--from", "2026-03-01", "--to", "2026-02-01"], {}, ["before"]),
    (["backfill"], {}, ["date range"]),
    (["backfill", "--from", "2026-01-01", "--to", "2026-01-02", "--kit", "K"], {}, ["not both"]),
    (["sync", "--provider", "23andme"], {}, ["invalid choice", "biomesight", "gencove"]),
    (["backfill", "--provider", "nobody", "--from", "2026-01-01"], {}, ["invalid choice"]),
    (["sync"], {"KITSYNC_BIOMESIGHT_CLIENT_SECRET": ""}, ["KITSYNC_BIOMESIGHT_CLIENT_SECRET", "empty"]),
    (["sync"], {"KITSYNC_GENCOVE_API_KEY": " "}, ["KITSYNC_GENCOVE_API_KEY", "empty"]),
    (["sync"], {"KITSYNC_PSEUDONYM_KEY": "short"}, ["KITSYNC_PSEUDONYM_KEY", "16 bytes"]),
    (
        ["sync"],
        {"KITSYNC_BIOMESIGHT_BASE_URL": "app.biomesight.com"},
        ["KITSYNC_BIOMESIGHT_BASE_URL", "http"],
    ),
    (["sync"], {"KITSYNC_BATCH_SIZE": "0"}, ["KITSYNC_BATCH_SIZE"]),
    (["load"], {"KITSYNC_HTTP_TIMEOUT": "-1"}, ["KITSYNC_HTTP_TIMEOUT"]),
    (["track", "import", "/nonexistent/export.csv"], {}, ["export.csv"]),
    (["query", "SELECT 1"], {}, ["no published warehouse", "load"]),
]


@pytest.mark.parametrize(
    ("argv", "env", "words"), BAD_COMMAND_LINES, ids=[" ".join(a)[:40] for a, _, _ in BAD_COMMAND_LINES]
)
def test_bad_command_lines_end_in_one_line_naming_the_fix_and_write_nothing(
    prefect_api: str,  # Prefect set up its logging first, not on this test's captured stderr
    tmp_path: Path,
    *,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    words: list[str],
) -> None:
    data_dir = tmp_path / "data"
    with environment({"KITSYNC_DATA_DIR": str(data_dir), **env}):
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's own refusals
            status = exit_.code  # type: ignore[assignment]
    err = capsys.readouterr().err.strip().splitlines()

    assert status not in (0, None)
    errors = [line for line in err if line.startswith(f"kitsync {argv[0]}")]
    assert len(err) == len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    for word in words:
        assert word.lower() in errors[0].lower(), errors[0]
    assert not data_dir.exists()
    FIGURES.add("bad_inputs", what="command lines")


@dataclass
class Synced:
    server: SandboxServer
    data_dir: Path
    polls: list[datetime] = field(default_factory=list)  # the virtual times of its syncs

    def env(self) -> dict[str, str]:
        return {**sandbox_environment(self.server, self.data_dir), **FAST_RETRIES}

    def sync(self) -> None:
        from flows.biomesight import sync_biomesight
        from flows.gencove import sync_gencove

        self.polls.append(self.server.clock.now())
        with environment(self.env()):
            _import_export(self.server)
            assert asyncio.run(sync_biomesight())["state"] == "completed"
            assert asyncio.run(sync_gencove())["state"] == "completed"


@pytest.fixture(scope="module")
def synced(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """A world synced once, then a day older: the next sync has new statuses and results to write."""
    world = generate_world(seed=31, kits=40)
    with SandboxServer(world) as server:
        synced = Synced(server, tmp_path_factory.mktemp("disk") / "data")
        synced.sync()
        server.advance(timedelta(days=1))
        yield synced


def _command(env: dict[str, str], *, file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # in the child: files may not grow past the limit (EFBIG, as a full disk's ENOSPC)
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "sync"],
        cwd=REPO,
        env={**os.environ, **env},
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _our_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command's own message (Prefect's log lines, if any, come around it)."""
    lines = [line for line in done.stderr.splitlines() if line.startswith("kitsync sync:")]
    assert len(lines) == 1, (done.returncode, done.stdout[-1500:], done.stderr[-3000:])
    return lines[0]


def test_an_unwritable_data_directory_is_one_clear_line_and_writes_nothing(
    synced: Synced, tmp_path: Path
) -> None:
    """Root ignores permission bits, so the unwritable directory is a path through a regular file: the one
    refusal that holds for every user."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory's parent should be\n")
    data_dir = blocker / "data"
    done = _command({**synced.env(), "KITSYNC_DATA_DIR": str(data_dir)})

    assert done.returncode != 0
    line = _our_line(done)
    assert "cannot use" in line
    assert "KITSYNC_DATA_DIR" in line
    assert "Traceback" not in done.stderr
    assert blocker.read_text().startswith("a file")
    FIGURES.add("bad_inputs", what="unwritable data directory")


def test_a_disk_that_fills_mid_run_fails_clearly_and_keeps_the_previous_state(
    synced: Synced, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(synced.data_dir, data_dir, symlinks=True)
    warehouse = data_dir / "warehouse" / "kitsync.duckdb"
    before = contents(warehouse)
    lake_before = {name: {f.path for f in list_files(data_dir, name)} for name in ALL_SPECS}
    env = {**synced.env(), "KITSYNC_DATA_DIR": str(data_dir)}
    # Room for the lake's small parquet files, not for a new snapshot of the warehouse.
    limit = warehouse.stat().st_size // 2

    done = _command(env, file_size_limit=limit)

    assert done.returncode != 0
    line = _our_line(done)
    assert line.startswith("kitsync sync: "), done.stderr[-3000:]
    assert "KITSYNC_DATA_DIR" in line or "space" in line.lower() or "large" in line.lower(), line
    assert contents(warehouse) == before
    for name in ALL_SPECS:  # the lake only gained whole, readable files
        for lake_file in list_files(data_dir, name):
            if lake_file.path not in lake_before[name]:
                pq.read_table(data_dir / lake_file.path)

    # With room again, the next sync completes what the full disk stopped.
    with environment(env):
        from flows.biomesight import sync_biomesight
        from flows.gencove import sync_gencove

        assert asyncio.run(sync_biomesight())["state"] == "completed"
        assert asyncio.run(sync_gencove())["state"] == "completed"
    final = reconcile(warehouse, synced.server.world, synced.server.clock.now())
    content = reconcile_content(synced.server.world, warehouse, [*synced.polls, synced.server.clock.now()])
    record_figures(content, duplicates(warehouse))
    assert final.complete, final.summary()
    assert content.exact, content.summary()
    FIGURES.add("bad_inputs", what="full disk")
