"""Secrets and personal data: a full sync with recognizable secrets (and faults, so error paths run too), then
everything it wrote is searched: logs, Prefect artifacts and run logs, every file of the data directory,
every value of the lake and of the warehouse. Also: file modes, pseudonyms, and SQL that binds its values.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import hmac
import logging
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
import pyarrow.parquet as pq
import pytest

from flows.demo import environment
from sandbox.accounts import (
    BIOMESIGHT_CLIENT_SECRET,
    BIOMESIGHT_WEBHOOK_TOKEN,
    GENCOVE_API_KEY,
    GENCOVE_WEBHOOK_SECRET,
)
from tests.reliability.conftest import FAST_RETRIES
from tests.reliability.figures import FIGURES
from tests.synced import SyncedWorld
from tests.warehouse.test_no_pii import Needles
from transform.pseudonym import customer_key
from warehouse.duck import quote_ident

REPO = Path(__file__).resolve().parents[2]
PSEUDONYM_KEY = "pseudonym-key-RELIABILITY-7c1d9e"
FAULTS = [
    "biomesight.kit_status:expire_token:count=1",
    "biomesight.token:500:count=2",
    "biomesight.results:truncate:count=2",
    "gencove.sample:503:count=3",
    "gencove.ancestry:truncate:count=1",
]


@dataclass
class Written:
    synced: SyncedWorld
    secrets: dict[str, str]
    output: str  # every log record and everything printed while it ran
    window: tuple[datetime, datetime] = field(default=(datetime.min.replace(tzinfo=UTC),) * 2)  # wall clock

    def data_files(self) -> list[Path]:
        return sorted(p for p in self.synced.data_dir.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def written(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    handler = _Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        with environment({"KITSYNC_PSEUDONYM_KEY": PSEUDONYM_KEY, **FAST_RETRIES}):
            data_dir = tmp_path_factory.mktemp("secrets") / "data"
            began = datetime.now(UTC)
            with SyncedWorld.start(data_dir, seed=41, kits=40, rounds=2, faults=FAULTS) as synced:
                issued = list(synced.server.state.tokens._tokens)  # the bearer tokens it was given
                assert issued
                secrets = {
                    "Biomesight client secret": BIOMESIGHT_CLIENT_SECRET,
                    "Gencove API key": GENCOVE_API_KEY,
                    "Biomesight webhook token": BIOMESIGHT_WEBHOOK_TOKEN,
                    "Gencove webhook secret": GENCOVE_WEBHOOK_SECRET,
                    "pseudonym key": PSEUDONYM_KEY,
                    **{f"bearer token {n}": token for n, token in enumerate(issued)},
                }
                assert all(rule.injected for rule in synced.server.state.faults.rules())
                window = (began, datetime.now(UTC))
                yield Written(synced, secrets, handler.text(), window)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


class _Collect(logging.Handler):
    """Every record, formatted with its arguments and any exception text (what a log file would hold)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)


def _found(secrets: dict[str, str], text: str) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


def _lake_text(path: Path) -> str:
    table = pq.read_table(path)
    return "\n".join(str(v) for column in table.columns for v in column.to_pylist())


def _warehouse_text(path: Path) -> str:
    connection = duckdb.connect(str(path), read_only=True)
    try:
        tables = [row[0] for row in connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        parts = []
        for table in tables:
            rows = connection.execute(f"SELECT * FROM {quote_ident(table)}").fetchall()  # noqa: S608
            parts.append("\n".join(map(repr, rows)))
        return "\n".join(parts)
    finally:
        connection.close()


# Small pages, so that reading everything needs several (the API's default page is 200, oldest first). How
# many lines the runs log depends on PREFECT_LOGGING_LEVEL (`make test` sets WARNING: often none), so the
# paging test adds MARKERS lines of its own to the newest run, timestamped last: the last pages hold them.
PAGE = 5
MARKERS = 2 * PAGE + 1


@dataclass
class PrefectRecords:
    """Everything Prefect holds about the runs under test, read page by page until an empty page."""

    runs: list[Any]
    logs: list[Any]
    artifacts: list[Any]
    pages: dict[str, int]  # how many non-empty pages each kind took

    def text(self) -> str:
        parts = [f"{a.key} {a.description} {a.data}" for a in self.artifacts]
        parts += [log.message for log in self.logs]
        parts += [f"{r.name} {r.parameters} {r.state}" for r in self.runs]
        return "\n".join(parts)


async def _all_pages(read: Any, **filters: Any) -> tuple[list[Any], int]:
    """Every item `read(limit=, offset=, **filters)` returns, asking for the next page until one is empty."""
    items: list[Any] = []
    pages = 0
    while page := await read(limit=PAGE, offset=len(items), **filters):
        items += page
        pages += 1
    return items, pages


async def _prefect_records(window: tuple[datetime, datetime]) -> tuple[PrefectRecords, dict[str, Any]]:
    """The flow runs started while the fixture synced, and all their logs and artifacts; with what the server
    says independently of the paging (its artifact count, its oldest and newest log of those runs)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterStartTime,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort, LogSort
    from prefect.logging.handlers import APILogHandler

    await APILogHandler.aflush()  # logs still queued in this process reach the server first
    async with get_client() as client:
        started = FlowRunFilterStartTime(after_=window[0], before_=window[1])
        runs, run_pages = await _all_pages(
            client.read_flow_runs, flow_run_filter=FlowRunFilter(start_time=started), sort=FlowRunSort.ID_DESC
        )
        ids: list[UUID] = [run.id for run in runs]
        log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids))
        logs, log_pages = await _all_pages(
            client.read_logs, log_filter=log_filter, sort=LogSort.TIMESTAMP_ASC
        )
        artifact_filter = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
        artifacts, artifact_pages = await _all_pages(client.read_artifacts, artifact_filter=artifact_filter)
        server = {
            "artifacts": (
                await client.request(
                    "POST", "/artifacts/count", json={"artifacts": artifact_filter.model_dump(mode="json")}
                )
            ).json(),
            "oldest log": [
                log.id for log in await client.read_logs(log_filter, 1, sort=LogSort.TIMESTAMP_ASC)
            ],
            "newest log": [
                log.id for log in await client.read_logs(log_filter, 1, sort=LogSort.TIMESTAMP_DESC)
            ],
        }
    pages = {"runs": run_pages, "logs": log_pages, "artifacts": artifact_pages}
    return PrefectRecords(runs, logs, artifacts, pages), server


async def _add_markers(window: tuple[datetime, datetime]) -> set[str]:
    """MARKERS log lines of the newest run under test, newer than any of its own (their texts returned)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import LogCreate
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime
    from prefect.client.schemas.sorting import FlowRunSort

    async with get_client() as client:
        started = FlowRunFilterStartTime(after_=window[0], before_=window[1])
        [newest] = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=started), sort=FlowRunSort.START_TIME_DESC, limit=1
        )
        now = datetime.now(UTC)
        texts = [f"secret-scan marker {n} of {MARKERS}" for n in range(MARKERS)]
        await client.create_logs(
            [
                LogCreate(
                    name="tests.security", level=logging.INFO, message=t, timestamp=now, flow_run_id=newest.id
                )
                for t in texts
            ]
        )
    return set(texts)


def test_the_secret_scan_reads_every_log_and_artifact_of_the_runs_under_test(written: Written) -> None:
    """All pages, and only the runs under test: each sync recorded in sync_runs is among them; the server's
    own count of their artifacts, and its oldest and newest log of them, agree with what the pages held."""
    markers = asyncio.run(_add_markers(written.window))
    records, server = asyncio.run(_prefect_records(written.window))
    read_ids = {log.id for log in records.logs}
    synced_runs = {UUID(r[0]) for r in written.synced.rows("SELECT DISTINCT run_id FROM sync_runs")}

    assert synced_runs <= {run.id for run in records.runs}
    assert server["newest log"], "the runs under test left no log to search"
    assert len(read_ids) == len(records.logs)  # no log read twice (the order held still while paging)
    assert records.pages["logs"] > 1, (records.pages, len(records.logs))  # paging really happened
    assert markers <= {log.message for log in records.logs}  # the newest lines, on the last pages
    assert {*server["oldest log"], *server["newest log"]} <= read_ids
    assert len(records.artifacts) == server["artifacts"] > 0
    assert {log.flow_run_id for log in records.logs} <= {run.id for run in records.runs}


def test_no_secret_is_in_any_log_artifact_file_or_table(written: Written) -> None:
    places: dict[str, str] = {"logs and output": written.output}
    records, _ = asyncio.run(_prefect_records(written.window))
    places["Prefect artifacts, logs and runs"] = records.text()
    for path in written.data_files():
        relative = str(path.relative_to(written.synced.data_dir))
        places[relative] = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".parquet":
            places[f"{relative} (values)"] = _lake_text(path)
        elif path.suffix == ".duckdb":
            places[f"{relative} (values)"] = _warehouse_text(path)
    # The faults sent the clients down their error paths, whose messages were written too.
    assert written.synced.scalar("SELECT count(*) FROM quarantine WHERE reason = 'malformed_response'") > 0
    assert len(places["Prefect artifacts, logs and runs"]) > 1000

    leaks = {where: _found(written.secrets, text) for where, text in places.items()}
    assert {where: found for where, found in leaks.items() if found} == {}
    FIGURES.add("bad_inputs", len(written.secrets), what="secrets searched for")


def test_no_personal_data_reaches_the_lake_or_the_warehouse(written: Written) -> None:
    needles = Needles.of(written.synced.world.customers.values())
    leaks = {}
    for path in written.data_files():
        text = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".parquet":
            text += _lake_text(path)
        elif path.suffix == ".duckdb":
            text += _warehouse_text(path)
        found = needles.find(text)
        if found:
            leaks[str(path)] = sorted(found)[:3]
    assert not leaks


def test_every_file_and_directory_is_owner_only(written: Written) -> None:
    data_dir = written.synced.data_dir
    paths = [data_dir, *data_dir.rglob("*")]
    assert any(p.suffix == ".duckdb" for p in paths)
    assert any(p.suffix == ".parquet" for p in paths)
    open_to_others = {
        str(p.relative_to(data_dir)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in paths
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    }
    assert open_to_others == {}


def test_pseudonyms_do_not_collide_and_do_not_open_without_the_key() -> None:
    key = PSEUDONYM_KEY.encode()
    ids = [f"CUST-{n:06d}" for n in range(100_000)] + [f"cust_{n}" for n in range(20_000)]
    keys = {customer_key(customer_id, key) for customer_id in ids}
    assert len(keys) == len(ids)
    # Without the key, hashing every candidate id the obvious ways finds none of the pseudonyms.
    guesses = set()
    for customer_id in ids[:20_000]:
        raw = customer_id.encode()
        guesses.update(
            {
                hashlib.sha256(raw).hexdigest()[:32],
                hashlib.md5(raw).hexdigest(),  # noqa: S324 - an attacker's guess, not our hashing
                hmac.new(b"", raw, hashlib.sha256).hexdigest()[:32],
                hmac.new(b"sandbox-pseudonym-key", raw, hashlib.sha256).hexdigest()[:32],
            }
        )
    assert not keys & guesses
    other = {customer_key(customer_id, b"another-key-of-enough-bytes") for customer_id in ids[:20_000]}
    assert not keys & other


PRODUCT = ("extract", "transform", "warehouse", "flows", "report")
SQL_CALLS = {"execute", "sql", "query", "executemany"}
SAFE_FORMATTERS = {"quote_ident", "quote_literal"}
# Parameters that carry SQL fragments made of quoted identifiers by their callers (reviewed by hand: every
# call site passes quote_ident output or another such fragment).
FRAGMENT_PARAMETERS = {"warehouse/merge.py": frozenset({"table", "rows", "candidates", "side", "target"})}


def _names(node: ast.AST) -> set[str]:
    return {n.id if isinstance(n, ast.Name) else getattr(n, "attr", "") for n in ast.walk(node)}


def _unsafe_sql(tree: ast.AST, fragments: frozenset[str] = frozenset()) -> list[int]:
    """Lines where an f-string given to a SQL call formats something that does not come from quoting.

    Safe: a call to quote_ident/quote_literal or to a module function that quotes (such as a helper joining
    quoted column names), and a variable assigned from one of those (followed through tuple unpacking and
    through f-strings built of safe parts). Anything else, a value above all, is an offence."""
    safe_calls = set(SAFE_FORMATTERS)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and SAFE_FORMATTERS & _names(node):
            safe_calls.add(node.name)
    safe_names: set[str] = set(fragments)
    grew = True
    while grew:  # follow safe values through assignments until nothing new is learnt
        before = len(safe_names)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and (safe_calls | safe_names) & _names(node.value):
                for target in node.targets:
                    safe_names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        grew = len(safe_names) > before
    bad = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in SQL_CALLS:
            continue
        for part in (p for argument in node.args[:1] for p in ast.walk(argument)):
            if isinstance(part, ast.FormattedValue):
                value = part.value
                if (safe_calls | safe_names) & _names(value):
                    continue
                bad.append(node.lineno)
    return bad


def test_sql_never_formats_a_value_into_its_text() -> None:
    offenders = {}
    files = [p for package in PRODUCT for p in (REPO / package).rglob("*.py")]
    for path in files:
        relative = str(path.relative_to(REPO))
        lines = _unsafe_sql(
            ast.parse(path.read_text(), relative), FRAGMENT_PARAMETERS.get(relative, frozenset())
        )
        if lines:
            offenders[relative] = lines
    assert offenders == {}
    assert len(files) > 30
    # The check itself catches a value formatted into SQL.
    assert _unsafe_sql(
        ast.parse("def f(c, kit):\n    c.execute(f\"SELECT * FROM kits WHERE kit_id = '{kit}'\")")
    )
