"""Result model shared by the benchmarks and its rendering as a rich or plain-text table."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.harness import Series


@dataclass
class Goal:
    """A target the candidate should meet; ``met`` is None when it could not be measured."""

    label: str
    met: bool | None
    detail: str


@dataclass
class BenchReport:
    """Everything one benchmark has to say: both series, the correctness check and goals."""

    title: str
    reference: Series
    candidate: Series
    about: list[str] = field(default_factory=list)  # lines printed between title and table
    check: bool | None = None  # None: not run
    check_lines: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing failed: every contender that was asked for ran, and results match."""
        return self.check is not False and all(
            series.error is None for series in (self.reference, self.candidate)
        )


HEADERS = ("", "runs", "median s", "min s", "max s", "peak MiB (median)", "peak MiB (max)")


def _series_row(series: Series) -> tuple[str, ...]:
    """One table row for a series."""
    if not series.ok:
        status = "not run" if series.error is None else "FAILED"
        return (series.name, "0", status, "", "", "", "")
    return (
        series.name,
        str(len(series.runs)),
        f"{series.median_s:.3f}",
        f"{series.min_s:.3f}",
        f"{series.max_s:.3f}",
        f"{series.median_rss_mib:,.0f}",
        f"{series.max_rss_mib:,.0f}",
    )


def _ratio_row(report: BenchReport) -> tuple[str, ...] | None:
    """The candidate/reference ratios of medians and minimums, when both ran."""
    ref, cand = report.reference, report.candidate
    if not (ref.ok and cand.ok):
        return None
    return (
        "ratio",
        "",
        f"{cand.median_s / ref.median_s:.2f}x",
        f"{cand.min_s / ref.min_s:.2f}x",
        "",
        f"{cand.median_rss_mib / ref.median_rss_mib:.2f}x",
        "",
    )


def _table_rows(report: BenchReport) -> list[tuple[str, ...]]:
    """All rows of the figures table."""
    rows = [_series_row(report.reference), _series_row(report.candidate)]
    ratio = _ratio_row(report)
    return rows + ([ratio] if ratio else [])


def _footer(report: BenchReport) -> list[tuple[str, str]]:
    """(style, text) lines printed under the table."""
    lines: list[tuple[str, str]] = []
    for series in (report.reference, report.candidate):
        if series.error:
            lines.append(("red", f"{series.name} failed: {series.error}"))
    for goal in report.goals:
        mark, style = {True: ("PASS", "green"), False: ("MISS", "red"), None: ("n/a", "dim")}[
            goal.met
        ]
        lines.append((style, f"goal {goal.label}: {mark} ({goal.detail})"))
    if report.check is not None:
        verdict = "results match" if report.check else "RESULTS DIFFER"
        lines.append(("green" if report.check else "red", f"correctness: {verdict}"))
    lines.extend(("", f"  {line}") for line in report.check_lines)
    lines.extend(("dim", note) for note in report.notes)
    return lines


def render(report: BenchReport) -> None:
    """Print the report, as a rich table when rich is installed, else as plain text."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(render_plain(report))
        return
    console = Console()
    console.print(report.title, style="bold", markup=False, highlight=False)
    for line in report.about:
        console.print(line, markup=False, highlight=False)
    table = Table()
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in _table_rows(report):
        table.add_row(*row)
    console.print(table)
    for style, text in _footer(report):
        console.print(text, style=style or None, markup=False, highlight=False)
    console.print()


def render_plain(report: BenchReport) -> str:
    """The report as plain text."""
    rows = [HEADERS, *_table_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = [report.title, *report.about, ""]
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.append("")
    lines.extend(text for _, text in _footer(report))
    return "\n".join(lines) + "\n"
