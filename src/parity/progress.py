"""Progress of long work: a bar with a total and the time remaining when the total is known,
a row counter with rows per second otherwise, or nothing when not wanted.

``progress_bar(True)`` yields a ``RowCounter``: call it with ``(label, rows)`` after each
batch; ``set_total(label, total)`` turns that label's counter into a bar with a percentage
and an ETA. ``wants_totals`` says whether the bar is drawn live (a terminal): a total may
cost the caller work (a count), worth it only then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["RowCounter", "progress_bar"]


class _Count(ProgressColumn):
    """``1,234 / 5,000 rows 25%`` with a total, ``1,234 rows`` without."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text(f"{task.completed:,.0f} {self.unit}")
        return Text(
            f"{task.completed:,.0f} / {task.total:,.0f} {self.unit} {task.percentage:>3.0f}%"
        )


class _Rate(ProgressColumn):
    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {self.unit}/s" if speed else "")


class _Time(ProgressColumn):
    """The time remaining (``ETA 0:00:12``) with a total, the time elapsed without."""

    def __init__(self) -> None:
        super().__init__()
        self._left = TimeRemainingColumn(compact=True, elapsed_when_finished=True)
        self._spent = TimeElapsedColumn()

    def render(self, task: Task) -> Text:
        if task.total is None:
            return self._spent.render(task)
        text = self._left.render(task)
        return text if task.finished else Text("ETA ", style="dim") + text


class RowCounter:
    """``counter(label, rows)`` advances ``label``; ``set_total(label, n)`` gives it a bar."""

    def __init__(self, bar: Progress):
        self._bar = bar
        self._tasks: dict[str, TaskID] = {}

    @property
    def wants_totals(self) -> bool:
        """Whether the bar is drawn live, so a total (and its ETA) would be seen."""
        return self._bar.console.is_terminal

    def _task(self, label: str) -> TaskID:
        task = self._tasks.get(label)
        if task is None:
            task = self._tasks[label] = self._bar.add_task(label, total=None)
        return task

    def set_total(self, label: str, total: int) -> None:
        self._bar.update(self._task(label), total=total)

    def __call__(self, label: str, rows: int) -> None:
        self._bar.advance(self._task(label), rows)

    def totals(self) -> dict[str, tuple[float, float | None]]:
        """Each label's (rows counted, total or None), for a report or a test."""
        return {
            label: (self._bar.tasks[t].completed, self._bar.tasks[t].total)
            for label, t in self._tasks.items()
        }


@contextlib.contextmanager
def progress_bar(
    enabled: bool, *, unit: str = "rows", console: Console | None = None
) -> Iterator[RowCounter | None]:
    """A ``RowCounter`` drawing on ``console`` (default: rich's, on stdout), or None."""
    if not enabled:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=None),
        _Count(unit),
        _Rate(unit),
        _Time(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        yield RowCounter(bar)
