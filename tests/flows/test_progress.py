"""`kitsync sync` shows rich progress bars on a terminal, and nothing of them anywhere else.

The command runs as its own process against the sandbox: once with its stdout on a pseudo-terminal (as in a
shell), once with it on a pipe (as under a worker, in CI or redirected to a file).
"""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.demo import _import_export, environment, sandbox_environment
from sandbox.server import SandboxServer
from sandbox.world import generate_world

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = "━"  # rich's bar


@pytest.fixture(scope="module")
def tracked(
    prefect_api: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SandboxServer, Path]]:
    """A sandbox world and a data directory that imported its export (what a first sync starts from)."""
    base = tmp_path_factory.mktemp("progress") / "base"
    with SandboxServer(generate_world(seed=41, kits=40)) as server:
        with environment(sandbox_environment(server, base)):
            assert _import_export(server)["state"] == "completed"
        yield server, base


def _sync_on_a_terminal(env: dict[str, str], provider: str = "biomesight") -> tuple[int, str]:
    """`kitsync sync --provider PROVIDER` with stdout and stderr on a pseudo-terminal; all it drew."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(  # noqa: S603 - our own command, a provider name from the test
        [sys.executable, "-m", "flows.cli", "sync", "--provider", provider],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    drawn = bytearray()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        drawn += chunk
    os.close(controller)
    return process.wait(timeout=60), ANSI.sub("", drawn.decode("utf-8", errors="replace"))


def _polled(summary: str) -> int:
    """Orders plus kits polled, as the run's own summary reports them."""
    counts = dict(re.findall(r"^\s+(orders polled|kits polled): (\d+)", summary, flags=re.MULTILINE))
    return sum(int(n) for n in counts.values())


def test_progress_is_drawn_on_a_terminal(tracked: tuple[SandboxServer, Path], tmp_path: Path) -> None:
    server, base = tracked
    data_dir = tmp_path / "data"
    shutil.copytree(base, data_dir, symlinks=True)
    env = {**os.environ, **sandbox_environment(server, data_dir), "COLUMNS": "160"}

    status, drawn = _sync_on_a_terminal(env)

    assert status == 0, drawn[-3000:]
    polled = _polled(drawn)
    assert polled > 0
    lines = [line for line in drawn.replace("\r", "\n").splitlines() if BAR in line]
    kits = [line for line in lines if line.startswith("sync-biomesight: kits polled")]
    # The last frame of the poll: every planned order and kit counted against its total, at a rate.
    assert any(f" {polled}/{polled} " in line and "/s" in line for line in kits), kits[-3:]
    assert any(line.startswith("sync-biomesight: results fetched") for line in lines)
    assert any(line.startswith("sync-biomesight: rows written") for line in lines)


def test_both_partners_syncing_at_once_each_count_on_their_own_lines(
    tracked: tuple[SandboxServer, Path], tmp_path: Path
) -> None:
    server, base = tracked
    data_dir = tmp_path / "data"
    shutil.copytree(base, data_dir, symlinks=True)
    env = {**os.environ, **sandbox_environment(server, data_dir), "COLUMNS": "160"}

    # Biomesight's first kit status is held 8 s: its polls are counted while Gencove's run is under way
    server.add_fault("biomesight.kit_status:slow:count=1,delay=8")
    try:
        status, drawn = _sync_on_a_terminal(env, provider="all")
    finally:
        server.clear_faults()

    assert status == 0, drawn[-3000:]
    lines = [line for line in drawn.replace("\r", "\n").splitlines() if BAR in line]
    for flow in ("sync-biomesight", "sync-gencove"):
        # this run's own summary: from its "<flow>: completed" line to the next run's
        summary = drawn.split(f"{flow}: completed", 1)[1].split("sync-", 1)[0]
        polled = _polled(summary)
        assert polled > 0
        kits = [line for line in lines if line.startswith(f"{flow}: kits polled")]
        # its own count (Gencove's total is not known ahead: "N/?"), not the two runs' counts summed
        assert any(f" {polled}/" in line for line in kits), (flow, polled, kits[-3:])


def test_nothing_is_drawn_when_the_output_is_not_a_terminal(
    tracked: tuple[SandboxServer, Path], tmp_path: Path
) -> None:
    server, base = tracked
    data_dir = tmp_path / "data"
    shutil.copytree(base, data_dir, symlinks=True)

    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "sync", "--provider", "biomesight"],
        cwd=REPO,
        env={**os.environ, **sandbox_environment(server, data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert _polled(done.stdout) > 0
    assert BAR not in done.stdout + done.stderr
    assert "sync-biomesight: kits polled" not in done.stdout + done.stderr
    assert "\x1b[" not in done.stdout
