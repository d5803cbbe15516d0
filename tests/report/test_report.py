"""The cohort report rendered from the synced sandbox world: every section drawn, from views only, with its n.

Expected numbers come from the warehouse's base tables or the sandbox's ground truth, never from a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from flows.demo import environment
from report.build import render_report
from report.cli import add_report_command
from report.cohorts import cohort_dimensions
from report.data import MIN_COHORT_KITS
from sandbox.taxonomy import PREVOTELLA_SHIFT_BY_COUNTRY, Cohort, cohort_shifts
from tests.report.conftest import DIMENSION, Rendered
from tests.report.page import png_size, read_page
from tests.synced import SyncedWorld

# The sections, in page order.
SECTIONS = ("funnel", "turnaround", "failures", "scores", "taxa", "alpha", "both_tests", "stuck")
# The views the issue allows the report to read.
ALLOWED_VIEWS = {
    "kit_lifecycle",
    "funnel",
    "cohort_scores",
    "taxa_prevalence",
    "alpha_diversity",
    "stuck_kits",
    "failure_rates",
    "kit_cohorts",
    "customers",
    "microbiome_by_trait",
}


def _expected_n(synced: SyncedWorld) -> dict[str, int]:
    """What each chart counts, from the base tables (or kit_lifecycle where only the lifecycle defines it)."""
    profiled = """
        SELECT count(DISTINCT (t.provider, t.kit_id))
        FROM taxonomy AS t JOIN kits AS k ON k.provider = t.provider AND k.kit_id = t.kit_id
        LEFT JOIN orders AS o ON o.provider = k.provider AND o.order_id = k.order_id
        WHERE t.rank = 'genus' AND t.relative_abundance > 0
          AND coalesce(k.country_code, o.country_code) IS NOT NULL
    """
    scored = """
        SELECT max(n) FROM (
            SELECT s.score_key, count(DISTINCT (s.provider, s.kit_id)) AS n
            FROM scores AS s JOIN kits AS k ON k.provider = s.provider AND k.kit_id = s.kit_id
            LEFT JOIN orders AS o ON o.provider = k.provider AND o.order_id = k.order_id
            WHERE s.value IS NOT NULL AND coalesce(k.country_code, o.country_code) IS NOT NULL
            GROUP BY s.score_key
        )
    """
    timed = " OR ".join(
        f"{column} IS NOT NULL"
        for column in (
            "days_ordered_to_shipped",
            "days_shipped_to_delivered",
            "days_delivered_to_sample_collected",
            "days_sample_collected_to_in_transit",
            "days_in_transit_to_received",
            "days_received_to_processing",
            "days_processing_to_results_ready",
            "days_total",
        )
    )
    # Customers with a Gencove sample with trait scores and a Biomesight kit with scores, under one key.
    both = """
        SELECT count(*) FROM (
            SELECT coalesce(k.customer_key, o.customer_key)
            FROM scores AS s JOIN kits AS k ON k.provider = s.provider AND k.kit_id = s.kit_id
            LEFT JOIN orders AS o ON o.provider = k.provider AND o.order_id = k.order_id
            WHERE s.provider = 'biomesight'
            INTERSECT
            SELECT k.customer_key
            FROM trait_scores AS t JOIN kits AS k ON k.provider = t.provider AND k.kit_id = t.kit_id
        ) AS both_results (customer_key)
        WHERE customer_key IS NOT NULL
    """
    return {
        "funnel": synced.scalar("SELECT count(*) FROM kits"),
        "turnaround": synced.scalar(f"SELECT count(*) FROM kit_lifecycle WHERE {timed}"),  # noqa: S608
        "failures": synced.scalar("SELECT count(*) FROM kit_lifecycle WHERE is_final"),
        "scores": synced.scalar(scored),
        "taxa": synced.scalar(profiled),
        "alpha": synced.scalar(profiled),
        "both_tests": synced.scalar(both),
        "stuck": synced.scalar("SELECT count(*) FROM stuck_kits"),
    }


def test_every_section_has_a_chart_and_the_numbers_behind_it(rendered: Rendered) -> None:
    sections = rendered.page.sections
    assert list(sections) == list(SECTIONS)
    for key in SECTIONS:
        section = sections[key]
        assert len(section.figures) == 1, f"{key} has no chart"
        figure = section.figures[0]
        assert figure.chart == key
        width, height = png_size(figure.src)
        assert width > 400
        assert height > 150
        assert section.rows > 0, f"{key} has no data"
        assert len(section.table_rows) == section.rows
        assert all(any(cell for cell in row) for row in section.table_rows)


def test_each_chart_states_the_n_behind_it(rendered: Rendered, synced_world: SyncedWorld) -> None:
    expected = _expected_n(synced_world)
    assert all(n > 0 for n in expected.values()), expected  # the world exercises every section
    for key, n in expected.items():
        figure = rendered.page.sections[key].figures[0]
        assert figure.n == n, key
        assert f"n = {n} " in figure.caption, (key, figure.caption)
        assert f"n = {n} " in figure.alt, (key, figure.alt)
        assert rendered.report.charts[key] is not None
        assert f"n = {n} " in rendered.report.charts[key].n_text


def test_stuck_kits_listed_are_exactly_the_stuck_kits(rendered: Rendered, synced_world: SyncedWorld) -> None:
    section = rendered.page.sections["stuck"]
    kit_column = section.table_header.index("kit")
    listed = {row[kit_column] for row in section.table_rows}
    assert listed == {row[0] for row in synced_world.rows("SELECT kit_id FROM stuck_kits")}


def test_headlines_agree_with_the_base_tables(rendered: Rendered, synced_world: SyncedWorld) -> None:
    headlines = rendered.report.headlines
    assert headlines.kits == synced_world.scalar("SELECT count(*) FROM kits")
    by_provider = dict(synced_world.rows("SELECT provider, count(*) FROM kits GROUP BY provider"))
    assert headlines.kits_by_provider == by_provider
    assert headlines.stuck_kits == synced_world.scalar("SELECT count(*) FROM stuck_kits")
    ready = synced_world.scalar(
        "SELECT count(DISTINCT (provider, entity_id)) FROM status_events "
        "WHERE entity = 'kit' AND stage = 'results_ready'"
    )
    assert headlines.kits_with_results == ready
    page = rendered.path.read_text(encoding="utf-8")
    for card in headlines.cards():
        assert card.value in page


def test_the_taxa_finding_names_a_genus_the_sandbox_shifts_by_country(rendered: Rendered) -> None:
    """The sandbox builds country effects into a few genera; the heatmap's headline must find one of them."""
    shifted = {
        genus
        for code in PREVOTELLA_SHIFT_BY_COUNTRY
        for genus, (prevalence, abundance) in cohort_shifts(Cohort(code, 4, None))[0].items()
        if prevalence or abundance
    }
    assert shifted
    title = rendered.report.charts["taxa"].title
    assert title.split()[0] in shifted, title


def test_the_page_needs_no_network(rendered: Rendered) -> None:
    text = rendered.path.read_text(encoding="utf-8")
    assert "<script" not in text
    assert "@import" not in text
    assert "url(" not in text
    for tag, attributes in rendered.page.tags:
        assert tag not in ("link", "iframe", "object", "embed")
        if "src" in attributes:
            assert attributes["src"].startswith("data:image/png;base64,"), (tag, attributes["src"][:60])
        if "href" in attributes:
            assert attributes["href"].startswith("#"), (tag, attributes["href"])


class _Recorder:
    """A read-only connection that notes every statement it runs."""

    def __init__(self, connection: Any, statements: list[str]) -> None:
        self._connection = connection
        self._statements = statements

    def sql(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self._statements.append(query)
        return self._connection.sql(query, *args, **kwargs)

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self._statements.append(query)
        return self._connection.execute(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def _relations(tree: Any, found: set[str], ctes: set[str]) -> None:
    if isinstance(tree, dict):
        if tree.get("type") == "BASE_TABLE":
            found.add(tree["table_name"])
        for entry in (tree.get("cte_map") or {}).get("map", []):
            ctes.add(entry["key"])
        for value in tree.values():
            _relations(value, found, ctes)
    elif isinstance(tree, list):
        for value in tree:
            _relations(value, found, ctes)


def test_the_report_reads_only_the_analysis_views(
    synced_world: SyncedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    import report.data
    from warehouse.duck import connect_readonly

    statements: list[str] = []
    monkeypatch.setattr(
        report.data, "connect_readonly", lambda path: _Recorder(connect_readonly(path), statements)
    )
    report.data.load_report_data(synced_world.warehouse, DIMENSION)
    assert len(statements) >= 10
    parser = duckdb.connect()
    read: set[str] = set()
    for statement in statements:
        tree = json.loads(parser.execute("SELECT json_serialize_sql(?)", [statement]).fetchall()[0][0])
        assert not tree["error"], tree
        found: set[str] = set()
        ctes: set[str] = set()
        _relations(tree, found, ctes)
        read |= found - ctes
    parser.close()
    assert read
    assert read <= ALLOWED_VIEWS, read - ALLOWED_VIEWS


def test_the_cohort_choices_are_the_dimensions_of_the_view(synced_world: SyncedWorld) -> None:
    in_view = {row[0] for row in synced_world.rows("SELECT DISTINCT cohort_dimension FROM kit_cohorts")}
    assert set(cohort_dimensions()) == in_view - {"all"}


def test_an_unknown_cohort_dimension_is_refused(synced_world: SyncedWorld) -> None:
    with pytest.raises(ValueError, match="unknown cohort dimension"):
        render_report(synced_world.warehouse, "shoe_size")


def _parse(argv: list[str]) -> argparse.Namespace:
    """Through the real command tree, so the default data directory comes from flows' settings."""
    from flows.cli import build_parser

    return build_parser().parse_args(argv)


def test_the_report_command_asks_for_the_default_data_dir_only_without_one(tmp_path: Path) -> None:
    asked: list[bool] = []

    def default_data_dir() -> Path:
        asked.append(True)
        return tmp_path / "default"

    parser = argparse.ArgumentParser(prog="kitsync")
    add_report_command(
        parser.add_subparsers(dest="command", required=True), default_data_dir=default_data_dir
    )
    given = parser.parse_args(["report", "--data-dir", str(tmp_path / "given"), "--out", str(tmp_path / "r")])
    assert given.handler(given) == 2
    assert not asked
    default = parser.parse_args(["report", "--out", str(tmp_path / "r")])
    assert default.handler(default) == 2
    assert asked == [True]


def test_the_cli_handler_writes_the_report_from_the_settings_data_dir(
    warehouse_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KITSYNC_DATA_DIR", str(warehouse_copy))
    out = tmp_path / "out" / "cohorts.html"
    args = _parse(["report", "--out", str(out)])
    assert args.cohort == "purchase_month"
    assert args.handler(args) == 0
    assert str(out) in capsys.readouterr().out
    page = read_page(out.read_text(encoding="utf-8"))
    assert list(page.sections) == list(SECTIONS)
    assert all(len(s.figures) == 1 and s.rows > 0 for s in page.sections.values())
    assert "Cohorts by purchase month" in out.read_text(encoding="utf-8")
    assert not [p for p in out.parent.iterdir() if p != out]  # no temporary file left behind


def test_the_cli_handler_reads_the_data_dir_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parse(["report", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "r.html")])
    assert args.handler(args) == 2
    assert str(tmp_path / "empty" / "warehouse" / "kitsync.duckdb") in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_the_cli_refuses_an_unknown_cohort() -> None:
    with pytest.raises(SystemExit):
        _parse(["report", "--cohort", "shoe_size"])


def test_publish_report_outside_a_flow_writes_the_file_without_an_artifact(warehouse_copy: Path) -> None:
    from flows.report import publish_report
    from flows.settings import Settings

    summary = asyncio.run(publish_report(Settings(data_dir=warehouse_copy)))
    target = warehouse_copy / "reports" / "report-latest.html"
    assert summary["status"] == "written"
    assert summary["path"] == str(target)
    assert summary["artifact"] is None
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert list(target.parent.iterdir()) == [target]
    assert list(read_page(target.read_text(encoding="utf-8")).sections) == list(SECTIONS)


def test_publish_report_without_a_warehouse_is_skipped(tmp_path: Path) -> None:
    from flows.report import publish_report
    from flows.settings import Settings

    summary = asyncio.run(publish_report(Settings(data_dir=tmp_path)))
    assert summary["status"] == "skipped"
    assert not (tmp_path / "reports").exists()


def test_the_cohort_report_flow_publishes_headlines_and_a_link(
    warehouse_copy: Path, prefect_api: str
) -> None:
    from prefect.client.orchestration import get_client

    from flows.report import cohort_report

    with environment({"KITSYNC_DATA_DIR": str(warehouse_copy)}):
        state = asyncio.run(cohort_report(cohort="bristol_scale", return_state=True))
    summary = state.result()
    target = warehouse_copy / "reports" / "report-latest.html"
    assert summary["status"] == "written"
    assert summary["artifact"] == "cohort-report"
    assert target.is_file()
    assert "Cohorts by Bristol stool scale" in target.read_text(encoding="utf-8")

    async def artifacts() -> list[dict[str, Any]]:
        # Raw filter call: Prefect 3.8.8's read_artifacts sends null for omitted run filters, which its own
        # server refuses, and an empty task-run filter would drop artifacts made by a flow outside any task.
        body = {
            "artifacts": {
                "key": {"any_": ["cohort-report"]},
                "flow_run_id": {"any_": [str(state.state_details.flow_run_id)]},
            },
            "limit": 10,
            "sort": "CREATED_DESC",
        }
        async with get_client() as client:
            response = await client.request("POST", "/artifacts/filter", json=body)
            return response.json()

    published = asyncio.run(artifacts())
    assert len(published) == 1
    markdown = published[0]["data"]
    assert target.as_uri() in markdown
    kits = summary["headlines"]["kits"]
    assert f"| kits tracked | {kits} |" in markdown
    assert os.fspath(target) in summary["path"]


def test_the_both_tests_section_names_only_gaps_between_groups_of_ten(
    rendered: Rendered, synced_world: SyncedWorld
) -> None:
    """Its rows are exactly the comparisons with two groups of at least MIN_COHORT_KITS customers, each
    between the groups with the highest and the lowest mean (from microbiome_by_trait, itself checked against
    the sandbox's ground truth in tests/warehouse/test_views_customers.py)."""
    groups: dict[tuple[str, str, str], list[tuple[float, str, int]]] = {}
    for trait, grouping, group, kind, measure, n, mean in synced_world.rows(
        "SELECT trait_key, grouping, trait_group, measure_kind, measure, n, mean FROM microbiome_by_trait"
    ):
        if n >= MIN_COHORT_KITS:
            label = f"{measure} abundance" if kind == "genus" else measure
            groups.setdefault((trait, grouping.replace("_", " "), label), []).append((mean, group, n))
    expected = {key: (max(found)[1], min(found)[1]) for key, found in groups.items() if len(found) >= 2}
    section = rendered.page.sections["both_tests"]
    column = {name: index for index, name in enumerate(section.table_header)}
    shown = {}
    for row in section.table_rows:
        measure = row[column["measure"]]
        key = (
            row[column["trait"]],
            row[column["grouped by"]],
            measure
            if measure.endswith(" abundance")
            else measure.removesuffix(" score").lower().replace(" ", "_"),
        )
        shown[key] = (row[column["higher group"]], row[column["lower group"]])
        assert int(row[column["customers (higher)"]]) >= MIN_COHORT_KITS
        assert int(row[column["customers (lower)"]]) >= MIN_COHORT_KITS
    assert shown == expected
    chart = rendered.report.charts["both_tests"]
    assert chart is not None
    bought_both = synced_world.scalar("SELECT count(*) FROM customers WHERE bought_both")
    assert f"({bought_both} bought both tests;" in chart.n_text
    if not expected:
        assert chart.title.startswith("No trait group has")


def test_the_report_can_be_cut_by_trait_risk(synced_world: SyncedWorld) -> None:
    report = render_report(synced_world.warehouse, "trait_risk")
    values = {
        row[0]
        for row in synced_world.rows(
            "SELECT DISTINCT cohort_value FROM kit_cohorts WHERE cohort_dimension = 'trait_risk'"
        )
    }
    assert "lactose_intolerance: high_risk" in values
    assert "genetic trait risk" in report.html
    assert report.charts["scores"] is not None
