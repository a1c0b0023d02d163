"""Result models shared by the benchmarks and their rendering as a rich or plain-text table.

``BenchReport``: one reference against Parity, runs summarised per contender (historical).
``TableReport``: measures (rows) by contender (columns) with a target and verdict per row,
for benchmarks with several contenders and a figure quoted from elsewhere (online, materialize).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.harness import Series

if TYPE_CHECKING:
    from rich.text import Text


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


@dataclass
class TableReport:
    """A benchmark as one table: ``headers`` name the columns, each row is a measure.

    Rows hold ready-formatted cells, one per header (verdict cells come from ``verdict``).
    ``errors`` are contenders that failed; any error or a failed check makes the run not ok.
    """

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    about: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    check: bool | None = None  # None: not run
    check_lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing failed: no contender errors and no failed correctness check."""
        return self.check is not False and not self.errors


Report = BenchReport | TableReport

_MARKS = {True: ("PASS", "green"), False: ("MISS", "red"), None: ("n/a", "dim")}


def verdict(met: bool | None) -> str:
    """The word a table shows for a goal: PASS, MISS, or n/a when it could not be measured."""
    return _MARKS[met][0]


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


def _layout(report: Report) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The table's headers and rows."""
    if isinstance(report, TableReport):
        return report.headers, report.rows
    return HEADERS, _table_rows(report)


def _footer(report: Report) -> list[tuple[str, str]]:
    """(style, text) lines printed under the table."""
    lines: list[tuple[str, str]] = []
    if isinstance(report, TableReport):
        lines.extend(("red", f"failed: {error}") for error in report.errors)
        goals: list[Goal] = []
    else:
        for series in (report.reference, report.candidate):
            if series.error:
                lines.append(("red", f"{series.name} failed: {series.error}"))
        goals = report.goals
    for goal in goals:
        mark, style = _MARKS[goal.met]
        lines.append((style, f"goal {goal.label}: {mark} ({goal.detail})"))
    if report.check is not None:
        verdict = "results match" if report.check else "RESULTS DIFFER"
        lines.append(("green" if report.check else "red", f"correctness: {verdict}"))
    lines.extend(("", f"  {line}") for line in report.check_lines)
    lines.extend(("dim", note) for note in report.notes)
    return lines


def render(report: Report) -> None:
    """Print the report, as a rich table when rich is installed, else as plain text."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(render_plain(report))
        return
    console = Console()
    if isinstance(report, TableReport) and not console.is_terminal:
        # Piped output has no width: 80 columns would wrap every cell of a wide table.
        console = Console(width=max(console.width, 132))
    console.print(report.title, style="bold", markup=False, highlight=False)
    for line in report.about:
        console.print(line, markup=False, highlight=False)
    headers, rows = _layout(report)
    table = Table()
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(_styled(cell) for cell in row))
    console.print(table)
    for style, text in _footer(report):
        console.print(text, style=style or None, markup=False, highlight=False)
    console.print()


def _styled(cell: str) -> Text:
    """A table cell as rich text, a verdict in its colour; never parsed as markup."""
    from rich.text import Text

    marks = {mark: style for mark, style in _MARKS.values()}
    return Text(cell, style=marks.get(cell, ""))


def render_plain(report: Report) -> str:
    """The report as plain text."""
    headers, body = _layout(report)
    rows = [headers, *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
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
