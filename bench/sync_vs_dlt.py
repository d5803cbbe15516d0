"""Benchmark 2: kitsync's full first sync against dlt loading the same data from the same sandbox.

The dlt pipeline is written the way dlt's docs recommend for this shape of API, with its fastest settings:
plain `@dlt.resource`s and `@dlt.transformer(parallelized=True)`s (ids in pages of 50, each page fetched in
dlt's extract thread pool with dlt's own `requests` client: retries, keep-alive), `write_disposition="merge"`
on primary keys, `loader_file_format="parquet"`, taxonomy rows yielded as arrow tables (dlt's zero-copy path),
normalize and load workers on, DuckDB destination. It makes the same requests as kitsync (the sandbox's
counter shows it: the listing's filters at their widest, the metadata of in-flight samples listed without a
client_id, every final sample's QC, no more for a sample whose own detail is not final yet) and applies the
same domain rules where a row count depends on them: the taxonomy CSV is parsed with kitsync's own
`parse_taxonomy_csv`, scores and recommendations are flattened to one row each.
Both warehouses' row counts are printed side by side, and dlt's own time is broken down into its extract,
normalize and load steps (from `pipeline.last_trace`), so the ratio says where both sides spend it, and both
sides' CPU seconds are printed (client and sandbox), which a busy shared machine moves much less than wall
seconds.

    .venv/bin/python bench/sync_vs_dlt.py --kits 2000
"""

from __future__ import annotations

import base64
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _harness as h
import duckdb
import pyarrow as pa
from sync_vs_raw import PAGE, Pages, _final_samples, _ids, _listing_params, _unkeyed_samples

from transform.status import is_final, to_stage
from transform.taxonomy import parse_taxonomy_csv

GOAL = 3.0
# Primary keys of the dlt tables (merge keys).
KEYS = {
    "kit_status": ["kit_id"],
    "results": ["kit_id"],
    "scores": ["kit_id", "score_name"],
    "recommendations": ["kit_id", "category", "action", "item"],
    "taxonomy": ["kit_id", "rank", "lineage"],
    "sample_details": ["id"],
    "sample_customers": ["id"],
    "deliverables": ["id"],
    "sample_statuses": ["id"],
    "quality_controls": ["sample_id", "quality_control_type__key"],
    "trait_scores": ["sample_id", "trait__key"],
    "ancestry": ["sample_id"],
}
ID_PAGE = 50
WORKERS = 16
# kitsync table (and filter) -> the dlt table holding the same rows
COMPARED = {
    "orders + kits with a Biomesight status": (
        "SELECT count(DISTINCT (entity, entity_id)) FROM status_events WHERE provider = 'biomesight'",
        "SELECT (SELECT count(*) FROM order_status) + (SELECT count(*) FROM kit_status)",
    ),
    "results": ("SELECT count(*) FROM results", "SELECT count(*) FROM results"),
    "scores": ("SELECT count(*) FROM scores", "SELECT count(*) FROM scores"),
    "recommendations": ("SELECT count(*) FROM recommendations", "SELECT count(*) FROM recommendations"),
    "taxonomy": ("SELECT count(*) FROM taxonomy", "SELECT count(*) FROM taxonomy"),
    "kits (gencove samples)": (
        "SELECT count(*) FROM kits WHERE provider = 'gencove'",
        "SELECT count(*) FROM samples",
    ),
    "quality_controls": ("SELECT count(*) FROM quality_controls", "SELECT count(*) FROM quality_controls"),
    "trait_scores": ("SELECT count(*) FROM trait_scores", "SELECT count(*) FROM trait_scores"),
    "deliverables": ("SELECT count(*) FROM deliverables", "SELECT count(*) FROM deliverables"),
}


def dlt_source(base_url: str, orders: list[str], kits: list[str]) -> Any:  # noqa: PLR0915 - one source
    """The dlt source: Biomesight statuses and results, Gencove listings and final samples' details."""
    import dlt
    from dlt.sources.helpers.requests import Client

    local = threading.local()
    token_box: dict[str, str] = {}
    token_lock = threading.Lock()

    def session() -> Any:
        if not hasattr(local, "session"):
            local.session = Client(request_timeout=60, raise_for_status=False).session
        return local.session

    def bm_headers() -> dict[str, str]:
        with token_lock:
            if "token" not in token_box:
                response = session().post(
                    f"{base_url}/api/v1/auth/token",
                    auth=h.BIOMESIGHT_CLIENT,
                    data={"grant_type": "client_credentials"},
                )
                token_box["token"] = response.json()["access_token"]
        return {"Authorization": f"Bearer {token_box['token']}"}

    gc_headers = {"Authorization": f"Api-Key {h.GENCOVE_KEY}"}

    def bm_get(path: str, **params: str) -> Any:
        return session().get(f"{base_url}/api/v1/{path}", params=params or None, headers=bm_headers()).json()

    def gc_get(path: str, params: dict[str, Any] | None = None) -> Any:
        response = session().get(f"{base_url}/api/v2/{path}", params=params, headers=gc_headers)
        return response.json() if response.status_code == 200 else None

    def emit(rows: Any, table: str) -> Any:
        """Rows for `table`, merged on its primary key."""
        hints = dlt.mark.make_hints(table_name=table, primary_key=KEYS[table], write_disposition="merge")
        return dlt.mark.with_hints(rows, hints)

    def pages(ids: list[str]) -> Iterator[list[str]]:
        for start in range(0, len(ids), ID_PAGE):
            yield ids[start : start + ID_PAGE]

    @dlt.resource(selected=False)
    def order_ids() -> Iterator[list[str]]:
        yield from pages(orders)

    @dlt.resource(selected=False)
    def kit_ids() -> Iterator[list[str]]:
        yield from pages(kits)

    @dlt.transformer(
        data_from=order_ids, parallelized=True, primary_key="order_id", write_disposition="merge"
    )
    def order_status(page: list[str]) -> Iterator[Any]:
        yield [bm_get(f"status/order/{order_id}") for order_id in page]

    @dlt.transformer(data_from=kit_ids, parallelized=True)
    def kit_results(page: list[str]) -> Iterator[Any]:
        statuses, results, scores, recommendations, taxa = [], [], [], [], []
        for kit_id in page:
            status = bm_get(f"status/kit/{kit_id}")
            statuses.append(status)
            if to_stage("biomesight", status["status"])[0] != "results_ready":
                continue
            payload = bm_get(f"results/{kit_id}", format="json")
            results.append({"kit_id": kit_id, **payload["general"]})
            scores += [{"kit_id": kit_id, "score_name": k, "value": v} for k, v in payload["scores"].items()]
            recommendations += [
                {"kit_id": kit_id, "category": category, "action": action, "item": item}
                for category, actions in payload["recommendations"].items()
                for action, items in actions.items()
                for item in items
            ]
            csv = base64.b64decode(bm_get(f"results/{kit_id}", format="csv")["csv"])
            taxa += [
                {
                    "kit_id": kit_id,
                    "rank": t.rank,
                    "taxon": t.taxon,
                    "lineage": t.lineage,
                    "relative_abundance": t.relative_abundance,
                    "read_count": t.read_count,
                }
                for t in parse_taxonomy_csv(csv)
            ]
        yield emit(statuses, "kit_status")
        if results:
            yield emit(results, "results")
            yield emit(scores, "scores")
            yield emit(recommendations, "recommendations")
            yield emit(pa.Table.from_pylist(taxa), "taxonomy")

    @dlt.resource(primary_key="id", write_disposition="merge")
    def samples() -> Iterator[Any]:
        for project in h.GENCOVE_PROJECTS:
            listing = Pages()
            while not listing.done:
                body = (
                    session()
                    .get(
                        f"{base_url}/api/v2/project-samples/{project}",
                        params=_listing_params(listing.after),
                        headers=gc_headers,
                    )
                    .content
                )
                yield listing.take(body)

    @dlt.transformer(data_from=samples, parallelized=True)
    def sample_details(items: list[dict[str, Any]]) -> Iterator[Any]:
        details, customers, qcs, traits, ancestry, files, histories = [], [], [], [], [], [], []
        # in-flight samples listed without a client_id: their metadata names the customer (kitsync keys them)
        customers += [{"id": s, "metadata": gc_get(f"sample-metadata/{s}")} for s in _unkeyed_samples(items)]
        for sample_id, _ in _final_samples(items):
            sample = gc_get(f"samples/{sample_id}") or {}
            status = (sample.get("last_status") or {}).get("status")
            if not (isinstance(status, str) and is_final("gencove", status)):
                continue  # not final in its own detail: kitsync asks again next run, so nothing more here
            metadata = gc_get(f"sample-metadata/{sample_id}")
            history = gc_get(f"sample-statuses/{sample_id}", {"limit": PAGE, "offset": 0})
            details.append({"id": sample_id, "metadata": metadata})
            files += [{"sample_id": sample_id, **f} for f in sample.get("files") or []]
            histories += [{"sample_id": sample_id, **s} for s in history["results"]]
            # QC whatever the outcome: a failed-QC sample's checks say why it failed
            qcs += [
                {"sample_id": sample_id, **q}
                for q in gc_get(f"sample-quality-controls/{sample_id}", {"limit": PAGE, "offset": 0}) or []
            ]
            if status == "succeeded":
                page = gc_get(f"sample-trait-scores/{sample_id}", {"limit": PAGE, "offset": 0})
                traits += [{"sample_id": sample_id, **t} for t in (page or {}).get("results", [])]
                found = gc_get(f"sample-ancestry/{sample_id}")
                if found is not None:
                    ancestry.append({"sample_id": sample_id, "report": found})
        for rows, table in (
            (details, "sample_details"),
            (customers, "sample_customers"),
            (files, "deliverables"),
            (histories, "sample_statuses"),
            (qcs, "quality_controls"),
            (traits, "trait_scores"),
            (ancestry, "ancestry"),
        ):
            if rows:
                yield emit(rows, table)

    @dlt.source(name="kits")
    def source() -> list[Any]:
        return [order_status, kit_results, samples, sample_details]

    return source()


DLT_STEPS = ("extract", "normalize", "load")


def step_seconds(pipeline: Any) -> dict[str, float]:
    """Seconds of each of dlt's steps in the pipeline's last run (its trace), by step name."""
    seconds: dict[str, float] = {}
    for step in pipeline.last_trace.steps:
        if step.started_at and step.finished_at and step.step in DLT_STEPS:
            seconds[step.step] = (
                seconds.get(step.step, 0.0) + (step.finished_at - step.started_at).total_seconds()
            )
    return seconds


def run_dlt(
    base_url: str, orders: list[str], kits: list[str], directory: Path
) -> tuple[Path, dict[str, float]]:
    import dlt
    import pandas  # noqa: F401 - dlt's extract threads import it lazily and race on a half-imported module

    db = directory / "dlt.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name="kits_bench",
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name="kits",
        pipelines_dir=str(directory / "pipelines"),
        progress=None,
    )
    info = pipeline.run(dlt_source(base_url, orders, kits), loader_file_format="parquet")
    info.raise_on_failed_jobs()
    return db, step_seconds(pipeline)


def _cpu(box: h.Sandbox, since: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """CPU seconds so far of the client (this process, plus child processes it has waited for: dlt's
    normalize workers) and of the sandbox, minus `since`. On a shared machine wall seconds move with the
    neighbours' load; CPU seconds much less, so they tell which side does more work."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = time.process_time() + children.ru_utime + children.ru_stime
    return client - since[0], box.cpu_seconds() - since[1]


def main() -> None:
    args = h.arguments(__doc__ or "", default_kits=2000).parse_args()
    os.environ.update(
        {
            "EXTRACT__WORKERS": str(WORKERS),
            "EXTRACT__MAX_PARALLEL_ITEMS": str(4 * WORKERS),
            "NORMALIZE__WORKERS": "2",
            "LOAD__WORKERS": "4",
            # dlt warns per batch that its inferred column hints differ from the arrow schema: noise here
            "RUNTIME__LOG_LEVEL": "ERROR",
            "DATA_WRITER__DISABLE_COMPRESSION": "true",
        }
    )
    with (
        h.sandbox(args.kits, seed=args.seed) as box,
        h.prefect_session() as prefect_startup,
        tempfile.TemporaryDirectory(prefix="kitsync-bench-dlt-") as directory,
    ):
        orders, kits = _ids(box.admin("GET", "export.csv").content)
        work = Path(directory)
        box.reset_request_counts()
        started, cpu = time.perf_counter(), _cpu(box)
        dlt_db, dlt_steps = run_dlt(box.base_url, orders, kits, work)
        dlt_seconds = time.perf_counter() - started
        dlt_cpu = _cpu(box, since=cpu)
        dlt_requests = box.requests_total()
        box.reset_request_counts()
        data_dir = work / "data"
        cpu = _cpu(box)
        ours = h.first_sync(box, data_dir, **h.tuning(args))
        our_cpu = _cpu(box, since=cpu)
        our_requests = box.requests_total()
        counts = []
        ours_db = duckdb.connect(str(data_dir / "warehouse" / "kitsync.duckdb"), read_only=True)
        theirs_db = duckdb.connect(str(dlt_db), read_only=True)
        theirs_db.execute("SET search_path = 'kits'")
        for name, (ours_sql, theirs_sql) in COMPARED.items():
            mine = ours_db.execute(ours_sql).fetchone()[0]
            try:
                theirs = theirs_db.execute(theirs_sql).fetchone()[0]
            except duckdb.Error:
                theirs = 0
            counts.append((name, mine, theirs, "yes" if mine == theirs else "NO"))
        ours_db.close()
        theirs_db.close()

    h.header(
        "sync_vs_dlt: full first sync, kitsync vs dlt",
        kits=f"{args.kits:,} Biomesight kits + {args.kits:,} Gencove samples (seed {args.seed})",
        sandbox="own process; both clients in this process, one after the other",
        prefect=f"server ready in {prefect_startup:.1f} s, before any timing (not in any figure)",
        dlt=f"parquet, merge, extract workers {WORKERS}, normalize workers 2, load workers 4",
        kitsync_settings=", ".join(f"{k}={v}" for k, v in h.tuning(args).items()),
    )
    h.table(
        ["run", "seconds", "requests", "kits/s", "x dlt"],
        [
            ("dlt pipeline.run", dlt_seconds, dlt_requests, 2 * args.kits / dlt_seconds, "1.00"),
            (
                "kitsync first sync",
                ours.total,
                our_requests,
                2 * args.kits / ours.total,
                f"{dlt_seconds / ours.total:.2f}",
            ),
        ],
    )
    h.table(
        ["CPU seconds", "client (this process + its finished children)", "sandbox", "client x dlt"],
        [
            ("dlt pipeline.run", dlt_cpu[0], dlt_cpu[1], "1.00"),
            ("kitsync first sync", our_cpu[0], our_cpu[1], f"{our_cpu[0] / dlt_cpu[0]:.2f}"),
        ],
    )
    traced = sum(dlt_steps.values())
    h.table(
        ["dlt step (pipeline.last_trace)", "seconds", "share of pipeline.run"],
        [
            *(
                (step, dlt_steps.get(step, 0.0), f"{dlt_steps.get(step, 0.0) / dlt_seconds:.0%}")
                for step in DLT_STEPS
            ),
            (
                "outside the steps (setup, trace, state)",
                dlt_seconds - traced,
                f"{1 - traced / dlt_seconds:.0%}",
            ),
        ],
    )
    h.table(
        ["kitsync phase (wall)", "seconds"],
        [
            ("track import (export -> lake, load)", ours.track_import),
            ("sync-biomesight flow", ours.biomesight),
            ("sync-gencove flow", ours.gencove),
        ],
    )
    h.table(["table", "kitsync rows", "dlt rows", "equal"], counts)
    ratio = dlt_seconds / ours.total
    equal = all(row[3] == "yes" for row in counts)
    verdict = h.verdict(ratio, GOAL)
    print(f"kitsync = {ratio:.2f} x dlt's speed; goal >= {GOAL}: {verdict}; equal row counts: {equal}")
    units = 2 * args.kits
    figures = [
        h.figure(
            "first sync kits/s vs dlt", units / ours.total, units / dlt_seconds, goal=GOAL, size=args.kits
        )
    ]
    # dlt's steps: their seconds as the baseline, their share of dlt's run as the ratio (no goal of their own)
    figures += [
        h.breakdown(f"dlt {step} step seconds", dlt_steps.get(step, 0.0), dlt_seconds, size=args.kits)
        for step in DLT_STEPS
    ]
    h.write_figures(args.json, figures)
    if not equal:
        sys.exit(1)


if __name__ == "__main__":
    main()
