"""What the benchmark scripts share: the sandbox in its own process, one Prefect server, timing and tables.

Server and client share this machine's cores, so the sandbox always runs in a separate process (`kitsync
sandbox serve`): a sandbox on the benchmark's own event loop would bill its CPU to kitsync and hide the
client's cost. Prefect's temporary server costs seconds to start; it is started once per script (or reused
from PREFECT_API_URL) and warmed up with a trivial flow before anything is timed, so sync times exclude it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

# Quiet and offline before Prefect is imported anywhere.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import httpx

from flows import demo
from sandbox import accounts

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")
_BANNER = re.compile(r"serving on (http://\S+)")
BIOMESIGHT_CLIENT = (accounts.BIOMESIGHT_CLIENT_ID, accounts.BIOMESIGHT_CLIENT_SECRET)
GENCOVE_KEY = accounts.GENCOVE_API_KEY
GENCOVE_PROJECTS = accounts.GENCOVE_PROJECT_IDS


# --- the machine --------------------------------------------------------------------------------------------


def machine() -> str:
    """One line naming the machine: cores, CPU model, memory, Python (the README's figures quote it)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024**2:.0f} GiB"
    return f"{os.cpu_count()} cores, {model}, {memory} RAM, Python {platform.python_version()}"


def header(title: str, **facts: Any) -> None:
    print(f"# {title}")
    print(f"machine: {machine()}")
    for name, value in facts.items():
        print(f"{name.replace('_', ' ')}: {value}")
    print()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A markdown table (pastes straight into the README)."""
    text = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) if text else len(h) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in text:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(ratio: float, goal: float, *, at_most: bool = False) -> str:
    met = ratio <= goal if at_most else ratio >= goal
    return "met" if met else "NOT met"


# --- machine-readable figures (--json FILE) -----------------------------------------------------------------

FIGURE_KEYS = ("name", "kitsync", "baseline", "ratio", "goal", "met", "size")


@dataclass(frozen=True)
class Figure:
    """One measured goal: kitsync's figure, the baseline's, their ratio as the goal states it, and the size.

    `ratio` is what `goal` is compared with (`met` says whether it was): kits/s over the baseline's kits/s for
    a speed goal, seconds over the baseline's seconds for an "at most" cost goal; `size` is the world size the
    figure ran at (kits), so runs of different sizes are not compared by accident.
    """

    name: str
    kitsync: float | None
    baseline: float
    ratio: float
    goal: float | None
    met: bool | None
    size: int

    def as_json(self) -> dict[str, Any]:
        return {key: _plain(getattr(self, key)) for key in FIGURE_KEYS}


def figure(
    name: str,
    kitsync: float,
    baseline: float,
    *,
    goal: float,
    size: int,
    at_most: bool = False,
    ratio: float | None = None,
) -> Figure:
    """A Figure; its ratio is kitsync / baseline unless given (a spread, or the baseline over kitsync)."""
    if ratio is None:
        ratio = kitsync / baseline if baseline else math.inf
    met = ratio <= goal if at_most else ratio >= goal
    return Figure(name, float(kitsync), float(baseline), float(ratio), float(goal), bool(met), int(size))


def breakdown(name: str, seconds: float, whole: float, *, size: int) -> Figure:
    """A part of a baseline's time (e.g. one of dlt's steps): no kitsync figure and no goal, ratio = share."""
    return Figure(
        name, None, float(seconds), float(seconds / whole) if whole else math.inf, None, None, int(size)
    )


def _plain(value: Any) -> Any:
    """JSON has no infinity or NaN: those become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_figures(path: Path | None, figures: Sequence[Figure]) -> None:
    """Write the figures as a JSON list to `path` (when --json was given), and say so on stderr."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([f.as_json() for f in figures], indent=2) + "\n")
    print(f"figures written to {path}", file=sys.stderr)


def json_argument(parser: Any) -> None:
    parser.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="write the measured goals to FILE as JSON"
    )


@dataclass
class Timed:
    seconds: float
    value: Any = None


def timed(function: Callable[[], T]) -> Timed:
    started = time.perf_counter()
    value = function()
    return Timed(time.perf_counter() - started, value)


# --- the sandbox in its own process -------------------------------------------------------------------------


@dataclass
class Sandbox:
    """A running `kitsync sandbox serve` process and its admin API."""

    process: subprocess.Popen[bytes]
    base_url: str
    started_in: float

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.request(method, f"{self.base_url}/_sandbox/{path}", timeout=600, **kwargs)
        response.raise_for_status()
        return response

    def request_counts(self) -> dict[str, dict[str, int]]:
        return self.admin("GET", "requests").json()

    def reset_request_counts(self) -> None:
        self.admin("DELETE", "requests")

    def requests_total(self, prefix: str = "") -> int:
        return sum(
            n
            for endpoint, by_status in self.request_counts().items()
            if endpoint.startswith(prefix)
            for n in by_status.values()
        )

    def export_csv(self, path: Path) -> Path:
        path.write_bytes(self.admin("GET", "export.csv").content)
        return path

    def advance(self, hours: float) -> str:
        return self.admin("POST", "clock", json={"advance_hours": hours}).json()["now"]

    def add_latency(self, milliseconds: float) -> None:
        """Every partner endpoint answers `milliseconds` late: the sandbox's `slow` fault on `*` at rate 1
        (token, status, results and every Gencove endpoint; not the sandbox's own admin API)."""
        rule = {"endpoint": "*", "kind": "slow", "rate": 1.0, "params": {"delay": milliseconds / 1000}}
        self.admin("POST", "faults", json=rule)

    def cpu_seconds(self) -> float:
        """User + system CPU the sandbox process has used so far (from /proc: the server's own cost)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def sandbox(kits: int, *, seed: int = 7, gencove_samples: int | None = None) -> Iterator[Sandbox]:
    """Serve a generated world from a child process on a free port until the block ends."""
    command = [sys.executable, "-m", "flows.cli", "sandbox", "serve", "--port", "0"]
    command += ["--kits", str(kits), "--seed", str(seed)]
    if gencove_samples is not None:
        command += ["--gencove-samples", str(gencove_samples)]
    with tempfile.TemporaryDirectory(prefix="kitsync-bench-sandbox-") as directory:
        log = Path(directory) / "sandbox.log"
        started = time.perf_counter()
        with log.open("wb") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO)  # noqa: S603
        try:
            base_url = _wait_for_banner(process, log, timeout=900)
            yield Sandbox(process, base_url, time.perf_counter() - started)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_banner(process: subprocess.Popen[bytes], log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _BANNER.search(log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise TimeoutError(f"the sandbox did not start within {timeout:.0f} s")


# --- kitsync in this process --------------------------------------------------------------------------------


environment = demo.environment  # set KITSYNC_* for the duration (flows read settings at run time)


def kitsync_environment(box: Sandbox, data_dir: Path, **settings: Any) -> dict[str, str]:
    """KITSYNC_* variables pointing kitsync at the sandbox and a data directory (plus tuning overrides)."""
    env = {
        "KITSYNC_DATA_DIR": str(data_dir),
        "KITSYNC_BIOMESIGHT_BASE_URL": box.base_url,
        "KITSYNC_GENCOVE_BASE_URL": box.base_url,
    }
    env.update({f"KITSYNC_{name.upper()}": str(value) for name, value in settings.items()})
    return env


@contextlib.contextmanager
def prefect_session() -> Iterator[float]:
    """A Prefect API for the script: PREFECT_API_URL when set, else a temporary server started once.

    Yields the seconds it took to be ready (startup plus a warm-up flow), which no timed figure includes.
    """
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            from prefect.testing.utilities import prefect_test_harness

            stack.enter_context(prefect_test_harness(server_startup_timeout=180))
        _warm_up()
        yield time.perf_counter() - started


def _warm_up() -> None:
    from prefect import flow, task

    @task
    async def nothing() -> int:
        return 1

    @flow(name="bench-warm-up")
    async def warm_up() -> int:
        return await nothing()

    asyncio.run(warm_up())


@dataclass
class SyncTimes:
    """A full first sync, phase by phase (seconds), and what it loaded.

    The two partners sync at once (as `kitsync sync` runs them): `biomesight` and `gencove` are each flow's
    own wall time, `partners` the wall time of both together (the longer of the two, plus whatever one
    made the other wait for, e.g. the warehouse load's lock).
    """

    track_import: float
    biomesight: float
    gencove: float
    partners: float
    summaries: list[dict[str, Any]]

    @property
    def total(self) -> float:
        return self.track_import + self.partners


def first_sync(box: Sandbox, data_dir: Path, **settings: Any) -> SyncTimes:
    """Import the platform export, then sync Biomesight and Gencove at once into an empty data directory."""
    from flows.biomesight import sync_biomesight
    from flows.gencove import sync_gencove
    from flows.track import track_import

    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    export = box.export_csv(data_dir.parent / f"{data_dir.name}-export.csv")

    async def clocked(sync: Callable[[], Any]) -> Timed:
        started = time.perf_counter()
        value = await sync()
        return Timed(time.perf_counter() - started, value)

    async def both() -> list[Timed]:
        return list(await asyncio.gather(clocked(sync_biomesight), clocked(sync_gencove)))

    with environment(kitsync_environment(box, data_dir, **settings)):
        imported = timed(lambda: asyncio.run(track_import(str(export))))
        partners = timed(lambda: asyncio.run(both()))
    biomesight, gencove = partners.value
    summaries = [imported.value, biomesight.value, gencove.value]
    for summary in summaries:
        if summary.get("state") != "completed":
            raise RuntimeError(f"a sync did not complete: {summary}")
    return SyncTimes(imported.seconds, biomesight.seconds, gencove.seconds, partners.seconds, summaries)


def warehouse_counts(data_dir: Path, tables: Sequence[str]) -> dict[str, int]:
    """Rows per table in the published warehouse."""
    from warehouse.duck import connect_readonly

    connection = connect_readonly(data_dir / "warehouse" / "kitsync.duckdb")
    try:
        return {
            name: int(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])  # noqa: S608
            for name in tables
        }
    finally:
        connection.close()


@contextlib.contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    """Profile the block with pyinstrument when `path` is given: text for `.txt`, HTML otherwise."""
    if path is None:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        text = path.suffix == ".txt"
        path.write_text(profiler.output_text(color=False, show_all=False) if text else profiler.output_html())


def arguments(description: str, default_kits: int) -> Any:
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--kits", type=int, default=default_kits, help=f"world size (default {default_kits})")
    parser.add_argument("--seed", type=int, default=7, help="sandbox world seed")
    parser.add_argument(
        "--profile", type=Path, default=None, help="pyinstrument profile file (.txt text, else HTML)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="KITSYNC_BATCH_SIZE (default: kitsync's)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="KITSYNC_CONCURRENCY (default: kitsync's)"
    )
    json_argument(parser)
    return parser


# Real partners answer in 50-300 ms; with that latency the client's CPU should no longer be the limit, so
# kitsync should keep as many requests in flight as a bare loop at the same limit does.
LATENCY_GOAL = 0.9


def latency_argument(parser: Any) -> None:
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="latency mode: every partner endpoint answers N ms late (the sandbox's slow fault); kitsync "
        f"against the bare loop at kitsync's concurrency limit (goal >= {LATENCY_GOAL} x its kits/s)",
    )


def concurrency(settings: dict[str, str]) -> int:
    """The in-flight limit kitsync runs with: the tuning's, else kitsync's default setting."""
    from flows.settings import Settings

    return int(settings.get("concurrency") or Settings().concurrency)


def tuning(args: Any) -> dict[str, str]:
    """kitsync settings for a benchmark: the tuning asked for, and no cohort report after each sync.

    The report (matplotlib charts from the warehouse) is a product of its own, not part of syncing data into
    the lake and DuckDB; with it on, every sync that changed data also renders it.
    """
    settings = {"report_after_sync": "false"}
    if args.batch_size:
        settings["batch_size"] = str(args.batch_size)
    if args.concurrency:
        settings["concurrency"] = str(args.concurrency)
    return settings


def module_at(rev: str, path: str, name: str) -> ModuleType:
    """The repository's file `path` as it was at git `rev`, imported as module `name`: the baseline a bench
    compares today's code with (the code it replaced), run side by side in the same process."""
    source = subprocess.run(  # noqa: S603
        ["git", "show", f"{rev}:{path}"],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    target = Path(tempfile.mkdtemp(prefix=f"kitsync-bench-{name}-")) / f"{name}.py"
    target.write_text(source)
    spec = importlib.util.spec_from_file_location(name, target)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path} at {rev} from {target}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module
