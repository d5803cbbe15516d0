"""What a command pays for Prefect, and what it says about it.

Commands that run no flow (`--help`, `query`, `report`, `sandbox serve`) never import Prefect (2-3 s, more
on a busy machine); a command about to start Prefect's temporary server tells a person at a terminal, once,
how to keep a server running instead; `kitsync serve` refuses the temporary server, which has no scheduler.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.cli import LOCAL_PREFECT_API, temporary_server_hint
from tests.synced import SyncedWorld

KITSYNC = [sys.executable, "-X", "importtime", "-m", "flows.cli"]
# `-X importtime` writes "import time: self | cumulative | module" for each module, nested ones indented.
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", re.MULTILINE)


def _environment(home: Path, **extra: str) -> dict[str, str]:
    """No PREFECT_* variable (the session's test server exports PREFECT_API_URL), a home of its own."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KITSYNC_"))}
    return {**kept, "HOME": str(home), **extra}


def _imported(stderr: str) -> set[str]:
    return set(_IMPORTED.findall(stderr))


def _prefect_modules(stderr: str) -> set[str]:
    return {m for m in _imported(stderr) if m == "prefect" or m.startswith("prefect.")}


@pytest.fixture
def data_dir(synced_world: SyncedWorld, tmp_path: Path) -> Path:
    """A data directory holding a copy of the session's synced warehouse."""
    data = tmp_path / "data"
    (data / "warehouse").mkdir(parents=True)
    shutil.copy2(synced_world.warehouse, data / "warehouse" / "kitsync.duckdb")
    return data


def test_the_import_check_sees_prefect_where_a_flow_is_imported(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import flows.load"],
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "prefect" in _prefect_modules(done.stderr)


@pytest.mark.parametrize(
    "arguments",
    [
        ["--help"],
        ["query", "SELECT provider, count(*) AS kits FROM kits GROUP BY provider"],
        ["report", "--out", "{tmp}/report.html"],
        ["sandbox", "serve", "--help"],
    ],
    ids=["help", "query", "report", "sandbox-serve-help"],
)
def test_commands_that_run_no_flow_never_import_prefect(
    arguments: list[str], data_dir: Path, tmp_path: Path
) -> None:
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [*KITSYNC, *(a.format(tmp=tmp_path) for a in arguments)],
        env=_environment(tmp_path, KITSYNC_DATA_DIR=str(data_dir)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()  # it did its work (the answer, the report line, the help)
    assert "duckdb" in _imported(done.stderr) or arguments[-1] == "--help"
    assert _prefect_modules(done.stderr) == set()


def test_the_sandbox_serves_without_importing_prefect(tmp_path: Path) -> None:
    log = tmp_path / "sandbox.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [*KITSYNC, "sandbox", "serve", "--port", "0", "--kits", "10"],
            env=_environment(tmp_path),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "serving on http://" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        assert "serving on http://" in log.read_text()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    imported = _imported(log.read_text())
    assert "sandbox.server" in imported
    assert _prefect_modules(log.read_text()) == set()


def test_serve_refuses_prefects_temporary_server_naming_what_to_set(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "serve"],
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "prefect server start" in lines[0]
    assert f"PREFECT_API_URL={LOCAL_PREFECT_API}" in lines[0]


def test_the_temporary_server_hint_is_for_a_person_at_a_terminal_without_a_server() -> None:
    hint = temporary_server_hint(interactive=True, api_url=None)
    assert hint is not None
    assert "\n" not in hint
    assert "prefect server start" in hint
    assert f"prefect config set PREFECT_API_URL={LOCAL_PREFECT_API}" in hint
    assert temporary_server_hint(interactive=False, api_url=None) is None
    assert temporary_server_hint(interactive=True, api_url=LOCAL_PREFECT_API) is None
