"""The `kitsync` command line: the sandbox, the demo, syncs, loads, backfills, queries and the servers.

Every command that does work runs the same Prefect flow a deployment runs, so the shell and the scheduler
behave alike. Input errors (a bad date, an unknown provider, a missing credential) end in one line that names
the fix and a non-zero exit status, before anything is written.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

Command = Callable[[argparse.Namespace], int]
PROVIDERS = ("all", "biomesight", "gencove")
RUN_COMMANDS = frozenset({"demo", "sync", "load", "backfill", "track"})  # those that run a flow to its end

# Offline and quiet by default: Prefect's telemetry off unless the user turned it on.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Without PREFECT_API_URL, Prefect starts a temporary server for the run and gives it 20 s to answer. Its
# first start in a new home creates and migrates its database: ~20 s on 2 quiet cores, a minute or more on a
# busy machine, so a new user's first command died with "Timed out while attempting to connect to ephemeral
# Prefect API server". A slow start is not a failure: wait up to 4 minutes (set before Prefect is imported,
# which reads it once; the user's own value wins). tests/flows/test_first_run.py runs that first command.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "240")


class UsageError(Exception):
    """Input the command cannot act on; the message says what to do instead."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a refused command line as one line (argparse adds its usage block before the error)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def _settings() -> Any:
    """Settings from the environment, or a UsageError naming the variable to fix."""
    from pydantic import ValidationError

    from flows.settings import Settings

    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"KITSYNC_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
        )
        raise UsageError(f"invalid configuration: {problems}") from None


def _print_summary(summary: dict[str, Any]) -> None:
    state = summary.get("state", "?")
    print(f"{summary.get('flow', 'run')}: {state}")
    if state == "skipped":
        print(f"  {summary.get('reason', '')}")
        return
    for key in ("orders_polled", "kits_polled", "status_changes", "results_fetched", "requests_failed"):
        if summary.get(key):
            print(f"  {key.replace('_', ' ')}: {summary[key]}")
    for section in ("rows_written", "quarantined", "unknown_statuses", "deferred"):
        values = summary.get(section) or {}
        if values:
            print(f"  {section.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    if "error" in summary:
        print(f"  error: {summary['error']}")
    if "warehouse" in summary:
        print(f"  warehouse: {summary['warehouse']}")


# --- handlers -----------------------------------------------------------------------------------------------


def _sandbox_serve(args: argparse.Namespace) -> int:
    from sandbox.server import run_from_args

    run_from_args(args)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from flows.demo import run_demo

    _hint_at_temporary_server()
    return run_demo(seed=args.seed, kits=args.kits, rounds=args.rounds, step_hours=args.step_hours)


def _data_dir(settings: Any) -> None:
    """A data directory that cannot exist (a file in its path, a read-only mount) is refused before a run."""
    path = settings.data_dir.absolute()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise UsageError(
            f"cannot use {path} as the data directory ({error.strerror}); "
            "set KITSYNC_DATA_DIR or --data-dir to a writable directory"
        ) from None


def _sync(args: argparse.Namespace) -> int:
    _data_dir(_settings())
    _hint_at_temporary_server()
    from flows.outcomes import RunCannotWork

    runs: list[Callable[[], Any]] = []
    if args.provider in ("all", "biomesight"):
        from flows.entrypoints import sync_biomesight

        runs.append(lambda: sync_biomesight(load=not args.no_load, fetch_pdf=args.fetch_pdf or None))
    if args.provider in ("all", "gencove"):
        from flows.entrypoints import sync_gencove

        runs.append(lambda: sync_gencove(project_ids=args.project or None, load=not args.no_load))
    from flows.progress import shown_on_terminal

    async def both() -> list[Any]:
        # The partners are independent (each its own lock, request limit and client; the warehouse load
        # has its own lock): both sync at once, and a first sync takes as long as the slower one, not the
        # sum. One partner that cannot be used does not stop the other.
        return await asyncio.gather(*(run() for run in runs), return_exceptions=True)

    with shown_on_terminal():
        outcomes = asyncio.run(both())
    failed = False
    unexpected = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, RunCannotWork)]
    for outcome in outcomes:
        if isinstance(outcome, RunCannotWork):
            # This partner cannot be used now; the other one is independent of it, so it still synced.
            print(f"kitsync {args.command}: {outcome}", file=sys.stderr)
            failed = True
        elif not isinstance(outcome, BaseException):
            _print_summary(outcome)
            failed |= outcome.get("state") == "failed"
    if unexpected:
        raise unexpected[0]  # a bug or Ctrl-C: after the other partner's outcome was said
    return 1 if failed else 0


def _load(args: argparse.Namespace) -> int:
    _data_dir(_settings())
    from flows.load import load_warehouse

    _hint_at_temporary_server()
    summary = asyncio.run(load_warehouse(compact=args.compact))
    _print_summary(summary)
    print(f"  files loaded: {summary.get('files_loaded', 0)}, rows loaded: {summary.get('rows_loaded', 0)}")
    return 0


def _backfill(args: argparse.Namespace) -> int:
    _settings()
    from flows.backfill import BackfillError, DateRange, KitIds, plan_windows

    try:  # check the slice before Prefect starts, so a bad one writes nothing
        plan_windows(
            start_date=args.start, end_date=args.end, kit_ids=args.kit or [], window_days=args.window_days
        )
    except BackfillError as error:
        raise UsageError(str(error)) from None
    _hint_at_temporary_server()
    from flows.entrypoints import backfill

    kits = (
        KitIds(kit_ids=args.kit)
        if args.kit
        else DateRange(start_date=args.start, end_date=args.end, date_field=args.by)
    )
    from flows.progress import shown_on_terminal

    with shown_on_terminal():
        summary = asyncio.run(
            backfill(
                kits=kits,
                provider=args.provider,
                refetch_results=args.refetch_results,
                reprocess_from_raw=args.reprocess_from_raw,
                window_days=args.window_days,
                start_over=args.start_over,
            )
        )
    _print_summary(summary)
    return 1 if summary.get("state") == "failed" else 0


def _query(args: argparse.Namespace) -> int:
    import duckdb

    from flows.output import render
    from flows.runtime import data_paths
    from warehouse.duck import query

    settings = _settings()
    path = data_paths(settings).warehouse
    try:
        table = query(path, args.sql)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    except duckdb.Error as error:
        message = str(error).splitlines()[0]
        raise UsageError(f"the query failed: {message} (the warehouse is read-only: SELECT only)") from None
    sys.stdout.write(render(table, args.format, max_rows=args.max_rows if args.format == "table" else None))
    return 0


def _track_import(args: argparse.Namespace) -> int:
    _settings()
    from flows.track import track_import
    from warehouse.exports import ExportFormatError, check_export

    try:
        check_export(args.file)
    except ExportFormatError as error:
        raise UsageError(str(error)) from None
    _hint_at_temporary_server()
    summary = asyncio.run(track_import(str(Path(args.file).absolute())))
    _print_summary(summary)
    return 0


def _webhooks_serve(args: argparse.Namespace) -> int:
    from extract.webhooks import serve_webhooks
    from flows.receiver import webhook_app
    from flows.runtime import run_settings

    _settings()
    settings = asyncio.run(run_settings())  # secrets may live in Prefect Secret blocks
    host = args.host or settings.webhook_host
    port = args.port if args.port is not None else settings.webhook_port
    print(f"kitsync webhook receiver on http://{host}:{port}/webhooks/biomesight and /webhooks/gencove")
    serve_webhooks(host, port, webhook_app(settings))
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = _settings()
    if _prefect_api_url() is None:
        # Prefect's temporary server runs no scheduler service: the deployments would register and never fire.
        raise UsageError(
            "schedules need a Prefect server, whose scheduler creates the runs (Prefect's temporary server "
            f"has none): start one with `prefect server start` and set PREFECT_API_URL={LOCAL_PREFECT_API}"
        )
    from flows.deployments import serve_all

    serve_all(settings)
    return 0


def _setup(args: argparse.Namespace) -> int:
    """Create the Prefect objects the deployments rely on: each partner's global concurrency limit."""
    settings = _settings()
    _hint_at_temporary_server()
    from flows.limits import create_partner_limits

    for limit in asyncio.run(create_partner_limits(settings)):
        print(f"{limit.name}: {limit.budget} {limit.partner} requests in flight across all workers")
    return 0


# --- Prefect's server ---------------------------------------------------------------------------------------

LOCAL_PREFECT_API = "http://127.0.0.1:4200/api"
TEMPORARY_SERVER_HINT = (
    "kitsync: no PREFECT_API_URL, so Prefect starts a temporary server for this command (5-20 s each time, "
    "no UI to follow the run). Keep one running instead: `prefect server start`, then "
    f"`prefect config set PREFECT_API_URL={LOCAL_PREFECT_API}` (README: Running on a schedule)"
)


def _prefect_api_url() -> str | None:
    """The Prefect API the flows will use (environment or Prefect profile), None for its temporary server."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def temporary_server_hint(interactive: bool, api_url: str | None) -> str | None:
    """The one line a person at a terminal gets when a command is about to start Prefect's temporary server;
    none under a scheduler, in a pipe or in CI (where it would only repeat in every log)."""
    return TEMPORARY_SERVER_HINT if interactive and api_url is None else None


def _hint_at_temporary_server() -> None:
    if not sys.stderr.isatty():  # decided before importing Prefect's settings
        return
    hint = temporary_server_hint(True, _prefect_api_url())
    if hint:
        print(hint, file=sys.stderr)


# --- the parser ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; sub-commands import their modules lazily so `--help` stays fast."""
    parser = _Parser(prog="kitsync", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="where the lake and warehouse live (KITSYNC_DATA_DIR)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_sandbox_commands(commands)
    _add_job_commands(commands)
    _add_data_commands(commands)
    _add_server_commands(commands)
    try:
        from report.cli import add_report_command
    except ImportError:  # the report package is optional at this layer
        pass
    else:
        add_report_command(commands, default_data_dir=lambda: _settings().data_dir)
    return parser


Subparsers = Any  # argparse's _SubParsersAction, which it does not export


def _add_sandbox_commands(commands: Subparsers) -> None:
    sandbox = commands.add_parser("sandbox", help="local simulators of the partner APIs")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    serve = sandbox_commands.add_parser("serve", help="serve both partner APIs on 127.0.0.1")
    from sandbox.server import add_arguments

    add_arguments(serve)
    serve.set_defaults(handler=_sandbox_serve)

    demo = commands.add_parser("demo", help="run the main job against an in-process sandbox")
    demo.add_argument("--seed", type=int, default=7, help="sandbox world seed")
    demo.add_argument("--kits", type=int, default=300, help="sandbox world size (Biomesight kits)")
    demo.add_argument("--rounds", type=int, default=4, help="sync rounds to run")
    demo.add_argument("--step-hours", type=float, default=12.0, help="virtual hours between rounds")
    demo.set_defaults(handler=_demo)


def _add_job_commands(commands: Subparsers) -> None:

    sync = commands.add_parser("sync", help="sync partner statuses and results, then load the warehouse")
    sync.add_argument("--provider", choices=PROVIDERS, default="all")
    sync.add_argument("--project", action="append", help="Gencove project id (repeatable; default: settings)")
    sync.add_argument("--fetch-pdf", action="store_true", help="also fetch Biomesight PDF reports")
    sync.add_argument("--no-load", action="store_true", help="write the lake but do not load DuckDB")
    sync.set_defaults(handler=_sync)

    load = commands.add_parser("load", help="load what is new in the lake into DuckDB")
    load.add_argument("--compact", action="store_true", help="first merge small files of closed partitions")
    load.set_defaults(handler=_load)

    backfill = commands.add_parser("backfill", help="re-sync a date range or explicit kits, in windows")
    backfill.add_argument("--provider", choices=PROVIDERS, default="all")
    backfill.add_argument("--from", dest="start", type=_date, help="first day (YYYY-MM-DD)")
    backfill.add_argument("--to", dest="end", type=_date, help="last day (YYYY-MM-DD)")
    backfill.add_argument("--by", choices=("purchase_date", "sample_date"), default="purchase_date")
    backfill.add_argument("--kit", action="append", help="kit or sample id (repeatable) instead of dates")
    backfill.add_argument("--refetch-results", action="store_true", help="fetch results again even if loaded")
    backfill.add_argument(
        "--reprocess-from-raw", action="store_true", help="re-transform stored responses, no partner calls"
    )
    backfill.add_argument("--window-days", type=int, default=30)
    backfill.add_argument("--start-over", action="store_true", help="redo windows an earlier run finished")
    backfill.set_defaults(handler=_backfill)


def _add_data_commands(commands: Subparsers) -> None:

    query = commands.add_parser("query", help="run read-only SQL on the warehouse and print the answer")
    query.add_argument("sql")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.add_argument("--max-rows", type=int, default=100, help="rows shown in table format")
    query.set_defaults(handler=_query)

    track = commands.add_parser("track", help="tell kitsync which Biomesight orders and kits exist")
    track_commands = track.add_subparsers(dest="track_command", required=True)
    track_import = track_commands.add_parser("import", help="import the platform's order/kit export")
    track_import.add_argument("file", help="CSV or parquet export")
    track_import.set_defaults(handler=_track_import)


def _add_server_commands(commands: Subparsers) -> None:

    webhooks = commands.add_parser("webhooks", help="the partners' webhook receiver")
    webhook_commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    webhooks_serve = webhook_commands.add_parser("serve", help="receive and land partner webhooks")
    webhooks_serve.add_argument("--host", default=None, help="interface (default KITSYNC_WEBHOOK_HOST)")
    webhooks_serve.add_argument("--port", type=int, default=None, help="port (default KITSYNC_WEBHOOK_PORT)")
    webhooks_serve.set_defaults(handler=_webhooks_serve)

    setup = commands.add_parser(
        "setup", help="create each partner's request budget on the Prefect server (idempotent)"
    )
    setup.set_defaults(handler=_setup)

    serve_all = commands.add_parser("serve", help="serve every deployment on its schedule from this process")
    serve_all.set_defaults(handler=_serve)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kitsync` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        os.environ["KITSYNC_DATA_DIR"] = str(args.data_dir)
    handler: Command = args.handler
    try:
        return handler(args)
    except UsageError as error:
        print(f"kitsync {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C: a run records itself as interrupted on its way out; what it landed stays, and the next run
        # carries on from what the warehouse holds, as after any crash. A server just stops.
        if args.command in RUN_COMMANDS:
            print(
                f"kitsync {args.command}: interrupted; what was already written is kept and the next run "
                "carries on from there",
                file=sys.stderr,
            )
        else:
            print(f"kitsync {args.command}: stopped", file=sys.stderr)
        return 130
    except Exception as error:
        from flows.outcomes import RunCannotWork

        if isinstance(error, RunCannotWork):  # a partner refused us or cannot be reached: the line says why
            print(f"kitsync {args.command}: {error}", file=sys.stderr)
            return 1
        problem = _storage_problem(error)
        if problem is None:
            raise
        # A full disk or an unwritable data directory: one line saying what could not be written and what to
        # do, not a traceback (lake writes and loads are atomic, so what was there before is intact).
        print(
            f"kitsync {args.command}: {problem} (check that KITSYNC_DATA_DIR is a writable directory with "
            "free space; earlier data is intact)",
            file=sys.stderr,
        )
        return 1


def _storage_problem(error: Exception) -> str | None:
    """What a storage failure (the OS's or DuckDB's) could not write; None for any other error."""
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        return f"cannot write{where}: {error.strerror or error}"
    import duckdb

    if isinstance(error, duckdb.IOException | duckdb.FatalException):
        return f"the warehouse could not be written: {str(error).strip().splitlines()[0]}"
    return None


if __name__ == "__main__":
    sys.exit(main())
