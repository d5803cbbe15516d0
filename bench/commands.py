"""How long each `kitsync` command takes from the shell: cold (a new empty HOME) and warm, without and with a
running Prefect server (PREFECT_API_URL). The README's "Command start-up times" table.

Each command runs as a user runs it: the console script in a subprocess, an environment with no PREFECT_*
variable (only PREFECT_API_URL where the column says so), the sandbox in its own process (`kitsync sandbox
serve`), one data directory synced once before anything is timed, so `sync` is an hourly run with little new
and `query` / `report` read a real warehouse. `demo` gets a data directory of its own (it clears it).

    .venv/bin/python bench/commands.py                       # this checkout's kitsync
    .venv/bin/python bench/commands.py --kitsync /other/checkout/.venv/bin/kitsync --repeats 3

`--kitsync` times another checkout's console script (its own venv's `prefect` runs the server), so the same
script measures code before and after a change side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import _harness as h
import httpx

COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "query": ["query", "SELECT provider, count(*) AS kits FROM kits GROUP BY provider"],
    "report": ["report", "--out", "{tmp}/report.html"],
    "sync": ["sync"],
    "demo": ["demo"],
}
_BANNER = re.compile(r"serving on (http://\S+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _base_environment(**extra: str) -> dict[str, str]:
    """A user's shell: no PREFECT_* or KITSYNC_* variable, then `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KITSYNC_"))}
    env.update(extra)
    return env


@contextlib.contextmanager
def _background(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(what: str, probe: object, log: Path, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()  # type: ignore[operator]
        if found:
            return str(found)
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}: {log.read_text(errors='replace')[-2000:]}")


@contextlib.contextmanager
def _sandbox(kitsync: str, work: Path, kits: int) -> Iterator[str]:
    log = work / "sandbox.log"
    args = [kitsync, "sandbox", "serve", "--port", "0", "--kits", str(kits)]
    with _background(args, _base_environment(HOME=str(work / "sandbox-home")), log):
        yield _wait("the sandbox", lambda: (m := _BANNER.search(log.read_text())) and m.group(1), log)


@contextlib.contextmanager
def _prefect_server(kitsync: str, work: Path) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = work / "prefect-server.log"
    env = _base_environment(
        PREFECT_HOME=str(work / "server-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1"
    )
    prefect = str(Path(kitsync).with_name("prefect"))
    with _background([prefect, "server", "start", "--port", str(port)], env, log):

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        _wait("the Prefect server", healthy, log)
        yield url


def _run(kitsync: str, command: str, env: dict[str, str], tmp: Path) -> float | str:
    """Seconds one command took, or why it failed."""
    args = [kitsync, *(part.format(tmp=tmp) for part in COMMANDS[command])]
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False, cwd=tmp)  # noqa: S603
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["?"]
        errors = [line for line in lines if "Error" in line] or lines
        return f"failed ({errors[-1].strip()[:100]})"
    return elapsed


def _cell(values: list[float | str]) -> str:
    failures = [v for v in values if isinstance(v, str)]
    times = [v for v in values if isinstance(v, float)]
    if not times:
        return failures[0]
    text = f"{statistics.median(times):.1f} s"
    if len(times) > 1:
        text += f" ({min(times):.1f}-{max(times):.1f})"
    if failures:
        text += f", {len(failures)} of {len(values)} {failures[0]}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kitsync", default=str(Path(sys.executable).with_name("kitsync")))
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell (demo: once per cell)")
    parser.add_argument("--kits", type=int, default=300, help="sandbox world size for sync/query/report")
    parser.add_argument("--commands", nargs="*", default=list(COMMANDS))
    args = parser.parse_args()
    print(f"# {h.machine()}; {args.kitsync}")
    with tempfile.TemporaryDirectory(prefix="kitsync-bench-commands-") as directory:
        work = Path(directory)
        with (
            _sandbox(args.kitsync, work, args.kits) as sandbox_url,
            _prefect_server(args.kitsync, work) as api_url,
        ):
            data = work / "data"
            kitsync_env = {
                "KITSYNC_DATA_DIR": str(data),
                "KITSYNC_BIOMESIGHT_BASE_URL": sandbox_url,
                "KITSYNC_GENCOVE_BASE_URL": sandbox_url,
                "KITSYNC_REPORT_AFTER_SYNC": "false",
            }
            warm_home = work / "warm-home"
            warm_home.mkdir()
            # Not timed: the first sync fills the warehouse and the warm home's Prefect database, given time
            # for Prefect's first start in this home (at Prefect's default 20 s it may time out when busy:
            # the cold column shows whether it does for the code measured).
            prime = _base_environment(
                HOME=str(warm_home), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="600", **kitsync_env
            )
            for _ in range(3):
                first = _run(args.kitsync, "sync", prime, work)
                if not isinstance(first, str):
                    break
                print(f"# the untimed first sync {first}", flush=True)
            else:
                raise SystemExit("the untimed first sync failed three times")
            columns = {
                "cold, no server": {},
                "warm, no server": {},
                "cold, PREFECT_API_URL": {"PREFECT_API_URL": api_url},
                "warm, PREFECT_API_URL": {"PREFECT_API_URL": api_url},
            }
            print("| command | " + " | ".join(columns) + " |")
            print("|---|" + "---|" * len(columns))
            for command in args.commands:
                cells = []
                for column, extra in columns.items():
                    values: list[float | str] = []
                    for _ in range(1 if command == "demo" else args.repeats):
                        if column.startswith("cold"):
                            home = Path(tempfile.mkdtemp(dir=work, prefix="cold-home-"))
                        else:
                            home = warm_home
                        env = _base_environment(HOME=str(home), **kitsync_env, **extra)
                        if command == "demo":
                            env["KITSYNC_DATA_DIR"] = str(work / "demo-data")
                        values.append(_run(args.kitsync, command, env, work))
                        if column.startswith("cold"):
                            shutil.rmtree(home, ignore_errors=True)
                    cells.append(_cell(values))
                print(f"| `kitsync {command}` | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
