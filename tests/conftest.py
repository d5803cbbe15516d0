"""Session-wide fixtures: a Prefect API for flow runs, and one sandbox world synced by the real flows; and the
reliability suite's figures, summed over pytest-xdist workers and printed at the end of the run."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from sandbox.server import SandboxServer
from tests.reliability.figures import FIGURES
from tests.storage.s3 import S3Server, aws_environment, running_s3_server
from tests.synced import SyncedWorld

# Offline and quiet before Prefect is imported anywhere in the session.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

# Property tests draw the same examples on every run (CI and a laptop agree; a failure reproduces), keep no
# example database in the working tree, and are not timed (the machine is shared and noisy).
hypothesis_settings.register_profile("kitsync", derandomize=True, database=None, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "kitsync"))

_FIGURES_KEY = "kitsync_reliability_figures"


# The suite's longest files (minutes each: real Prefect servers, workers, a busy-machine demo, kill-and-repair
# runs), started first. `make test` runs with `--no-loadscope-reorder`: xdist would otherwise hand out files
# by their number of tests, which starts these one- and two-test files last, as the whole suite's tail on one
# core while the other idles (16 min instead of the sum over two cores).
LONGEST_FIRST = (
    "tests/flows/test_workers.py",
    "tests/flows/test_schedule.py",
    "tests/flows/test_first_run.py",
    "tests/reliability/test_crash.py",
    "tests/bench/test_bench_smoke.py",
    "tests/reliability/test_machines.py",
    "tests/report/test_report.py",
    "tests/warehouse/test_readme_queries.py",
    "tests/flows/test_dask.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: place for place, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable for the rest


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In a pytest-xdist worker: hand this worker's reliability figures to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and FIGURES.touched:
        workeroutput[_FIGURES_KEY] = FIGURES.as_dict()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """In the pytest-xdist controller: add up what each worker measured."""
    figures = getattr(node, "workeroutput", {}).get(_FIGURES_KEY)
    if figures:
        FIGURES.merge(figures)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the reliability figures whenever reliability tests ran (under `make test` too, without -s)."""
    if not FIGURES.touched:
        return
    terminalreporter.section("kitsync reliability figures")
    for line in FIGURES.lines():
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-compatible server (moto's server mode) for this test process, with the AWS variables that
    reach it exported, so clients built from the environment (as in production) find it."""
    with running_s3_server() as server, aws_environment(server):
        yield server


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A temporary Prefect server for the whole session (it takes ~20 s to start, so only once).

    Its URL is exported as PREFECT_API_URL too, so `kitsync` subprocesses started by tests use it instead of
    each starting a temporary server of their own.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        # Configure Prefect's logging now, while stdout/stderr are pytest's session-wide capture: configured
        # later inside a test using capsys, its console handler would keep writing to a closed stream.
        from prefect.logging.configuration import setup_logging

        setup_logging()
        url = str(PREFECT_API_URL.value())
        saved = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            if saved is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = saved


@pytest.fixture(scope="session")
def synced_world(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncedWorld]:
    """Seed 7, 300 Biomesight kits (and the Gencove samples that go with them), synced over three days with
    webhooks flowing. Read-only for tests: build your own with `SyncedWorld.start` to change anything."""
    with SyncedWorld.start(tmp_path_factory.mktemp("synced") / "data") as synced:
        yield synced


@pytest.fixture
def variance_sandbox() -> Iterator[SandboxServer]:
    """A small world (seed 5) served under the sandbox's variance profile (`sandbox serve --variance`): what
    the partner docs leave open, varied deterministically. For syncing one through the flows, see
    `SyncedWorld.start(..., variance=True)`."""
    from sandbox.variance import Variance, vary_world
    from sandbox.world import generate_world

    world = vary_world(generate_world(seed=5, kits=40, gencove_samples=120))
    with SandboxServer(world, variance=Variance.from_seed(5)) as server:
        yield server
