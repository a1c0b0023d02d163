"""`parity monitor report` writes one self-contained HTML page; opened in headless Chromium it
shows, per view, the histograms of baseline against current, the null ratios, the freshness
lag over time and the drift scores, drawn (an SVG with a real size), and the open alerts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cli_utils import parity
from parity import FeatureStore
from parity.cli.scaffold import create_repo
from parity.registry.monitoring import MonitorRecords

VIEWS = ("driver_hourly_stats", "driver_profile", "driver_rating")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("report")
    repo = create_repo("fleet", root / "fleet").path
    parity("apply", "--repo", repo)
    parity("materialize-incremental", "now", "--repo", repo)
    with FeatureStore(repo) as store:
        store.monitor_runner().run_once()  # one freshness sample per view
        MonitorRecords(store.registry).fire(
            "null_ratio",
            "driver_rating",
            "driver_rating",
            observed=0.2,
            threshold=0.05,
            message="driver_rating: 20% nulls",
        )
    out = root / "out" / "report.html"
    parity("monitor", "report", "--repo", repo, "--out", out, "--window", "12h")
    return repo, out


def test_the_page_needs_nothing_but_itself(report: tuple[Path, Path]):
    page = report[1].read_text()
    assert page.startswith("<!DOCTYPE html>")
    for outside in ("<script", 'src="http', 'href="http', "<link"):
        assert outside not in page, f"the report loads something from outside: {outside}"


def test_chromium_shows_every_chart_of_every_view(report: tuple[Path, Path], browser):
    page = browser.new_page()
    try:
        page.goto(report[1].as_uri())
        charts = page.evaluate(
            """() => [...document.querySelectorAll('figure.chart')].map(f => {
                 const svg = f.querySelector('svg');
                 const box = svg ? svg.getBoundingClientRect() : null;
                 return {kind: f.dataset.chart, label: f.dataset.label,
                         width: box ? box.width : 0, height: box ? box.height : 0,
                         marks: svg ? svg.querySelectorAll('path, rect, use').length : 0};
               })"""
        )
        sections = page.evaluate(
            "() => [...document.querySelectorAll('section.view h2')].map(h => h.textContent)"
        )
        alerts = page.evaluate(
            "() => [...document.querySelectorAll('table.alerts td')].map(t => t.textContent)"
        )
    finally:
        page.close()
    assert sections == list(VIEWS)
    for view in VIEWS:
        mine = [c for c in charts if c["label"].startswith(f"{view}")]
        kinds = {c["kind"] for c in mine}
        assert {"histogram", "null-ratio", "freshness", "drift"} <= kinds, (view, kinds)
        for chart in mine:
            assert chart["width"] > 100 and chart["height"] > 50, chart
            assert chart["marks"] > 5, f"an empty chart: {chart}"
    # one histogram per feature: conv_rate, acc_rate, avg_daily_trips / lifetime_trips, city
    hists = {c["label"].split(":")[0] for c in charts if c["kind"] == "histogram"}
    assert {"driver_hourly_stats.conv_rate", "driver_profile.city"} <= hists
    assert "null_ratio" in alerts and "driver_rating: 20% nulls" in alerts


def test_a_report_of_an_unknown_view_names_it(report: tuple[Path, Path], tmp_path: Path):
    result = parity(
        "monitor",
        "report",
        "--repo",
        report[0],
        "--out",
        tmp_path / "r.html",
        "--views",
        "no_such_view",
        code=1,
    )
    assert "no_such_view" in result.output and not (tmp_path / "r.html").exists()


def test_windows_must_be_positive(report: tuple[Path, Path], tmp_path: Path):
    with FeatureStore(report[0]) as store:
        from parity.errors import MonitoringError
        from parity.monitoring.report import write_report

        with pytest.raises(MonitoringError, match="window must be positive"):
            write_report(store, tmp_path / "r.html", window=timedelta(0))
