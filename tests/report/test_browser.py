"""The report in a real browser: headless Chromium loads it offline, every image decodes, nothing errors.

How errors are caught (see tests/report/chromium.py): a copy of the page gets a probe script as the first
thing in <head>; it records uncaught exceptions, failed resource loads and console.error calls, and on the
load event writes `img.complete && img.naturalWidth > 0` for every image plus what it saw into the DOM, which
`--dump-dom` prints. Chromium's console log on stderr is checked too. A control page with a missing image, a
corrupt one, a console.error and an uncaught exception proves the probe catches each kind: without it, a
probe that silently stopped working would pass every page. The probe also returns the text a reader sees
(`innerText` after rendering): the title, the headline cards and each chart's n are compared with what the
report computed and with the warehouse. Where Chromium cannot be installed the tests skip, except on CI
(CI=true), where they fail with the reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

import tests.report.conftest as report_conftest
from tests.report.chromium import probe, run_chromium
from tests.report.conftest import Rendered
from tests.report.page import read_page
from tests.synced import SyncedWorld

BROKEN_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>control</title></head><body>
<img src="missing.png" alt="missing"><img src="data:image/png;base64,AAAA" alt="corrupt">
<script>console.error("deliberate console error");</script>
<script>throw new Error("deliberate uncaught error");</script>
</body></html>"""


def test_the_probe_catches_broken_images_and_errors(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(BROKEN_PAGE, encoding="utf-8")
    seen = probe(chromium, page, tmp_path / "profile")
    assert seen["images"] == 2
    assert sorted(seen["broken"]) == ["corrupt", "missing"]
    assert any("deliberate console error" in e for e in seen["errors"])
    assert any("deliberate uncaught error" in e for e in seen["errors"])
    assert any("deliberate uncaught error" in line for line in seen["console"])


def test_the_report_loads_offline_with_every_image_and_no_error(
    chromium: str, rendered: Rendered, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    shutil.copy(rendered.path, page)  # alone in its directory: nothing beside it to load
    seen = probe(chromium, page, tmp_path / "profile")
    charts = sum(len(s.figures) for s in rendered.page.sections.values())
    assert seen["images"] == charts > 0
    assert seen["broken"] == []
    assert seen["errors"] == []
    assert seen["console"] == []


def test_the_report_shows_its_title_headlines_and_each_charts_n(
    chromium: str, rendered: Rendered, synced_world: SyncedWorld, tmp_path: Path
) -> None:
    """What a reader sees, read from the rendered page: not the HTML source, the browser's innerText."""
    page = tmp_path / "report.html"
    shutil.copy(rendered.path, page)
    visible = probe(chromium, page, tmp_path / "profile")["visible"]

    assert visible["title"] == "kitsync cohort report"
    assert visible["heading"] == "kitsync cohort report"
    cards = rendered.report.headlines.cards()
    # Labels are shown upper-case by the stylesheet: innerText reports them as displayed.
    assert visible["cards"] == [
        {"label": c.label.upper(), "value": c.value, "detail": c.detail} for c in cards
    ]
    shown = {card["label"]: card for card in visible["cards"]}
    kits = synced_world.scalar("SELECT count(*) FROM kits")
    assert shown["KITS TRACKED"]["value"] == str(kits) > "0"
    assert shown["RESULTS DELIVERED"]["detail"].endswith(f"of {kits} kits")
    charts = {key: chart for key, chart in rendered.report.charts.items() if chart is not None}
    assert [f["chart"] for f in visible["figures"]] == [
        key for key in rendered.page.sections if key in charts
    ]
    for figure in visible["figures"]:
        chart = charts[figure["chart"]]
        assert figure["caption"].startswith(f"{chart.n_text}. Source: ")
        assert f"n = {chart.n}" in figure["caption"] or f"{chart.n} " in figure["caption"], figure


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_without_chromium_ci_fails_with_the_reason_and_a_laptop_skips(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setattr(report_conftest, "find_chromium", lambda: None)
    monkeypatch.setattr(report_conftest, "install_chromium", lambda: (None, "no apt-get on this machine"))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no apt-get on this machine"):
        report_conftest.require_chromium()


def test_a_screenshot_of_the_report_shows_the_charts(
    chromium: str, rendered: Rendered, tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    run = run_chromium(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1400,3000",
        rendered.path.as_uri(),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    with Image.open(shot) as image:
        assert image.format == "PNG"
        assert image.size == (1400, 3000)
        # A page whose images failed would be header, cards and empty boxes: a few flat colours. Charts bring
        # thousands (anti-aliased text, colour maps).
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None
        assert len(colours) > 1000
    saved = Path(rendered.path).with_name("report-screenshot.png")
    shutil.copy(shot, saved)  # kept beside the rendered report for a person to look at


# --- issue 15: the section for customers with both tests, as the browser shows it ---------------------------


def test_the_browser_shows_the_customers_with_both_tests_section(
    chromium: str, rendered: Rendered, tmp_path: Path
) -> None:
    """The section renders in Chromium: its heading, its chart decoded (not among the broken images), its
    finding as the chart's text alternative, and its table with one row per gap the report names."""
    page = tmp_path / "report.html"
    shutil.copy(rendered.path, page)
    seen = probe(chromium, page, tmp_path / "profile")
    chart = rendered.report.charts["both_tests"]
    assert chart is not None
    assert not [image for image in seen["broken"] if chart.title in image]
    run = run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    section = read_page(run.stdout).sections["both_tests"]
    assert "Customers with both tests" in section.heading
    [figure] = section.figures
    assert figure.alt.startswith(chart.title)
    assert figure.n == chart.n
    assert section.rows == len(section.table_rows) == rendered.page.sections["both_tests"].rows
