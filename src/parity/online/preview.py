"""A bounded plain-text table of an online response: what ``repr(response)`` shows.

The first ``MAX_ROWS`` entity rows and ``MAX_FEATURES`` features, like a DataFrame's repr:
entity columns, then one column per feature holding its value, with the status in brackets
when it is not ``present`` (``None [missing]``). Long cells are cut at ``MAX_CELL``
characters; what is left out is counted on the last line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

__all__ = ["MAX_CELL", "MAX_FEATURES", "MAX_ROWS", "cell", "preview"]

MAX_ROWS = 10
MAX_FEATURES = 8
MAX_CELL = 24
PRESENT = "present"


def cell(value: Any) -> str:
    """A value as a short readable cell: floats to 6 significant digits, times in UTC."""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, bytes):
        text = repr(value)
    else:
        text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def preview(
    title: str,
    entities: Mapping[str, Sequence[Any]],
    values: Mapping[str, Sequence[Any]],
    statuses: Mapping[str, Sequence[str]],
    *,
    max_rows: int = MAX_ROWS,
    max_features: int = MAX_FEATURES,
) -> str:
    """``title`` with the row and feature counts, then the table, then what was left out."""
    n = len(next(iter(entities.values()), []))
    shown_rows = min(n, max_rows)
    features = list(values)[:max_features]
    columns: list[tuple[str, list[str], bool]] = []  # name, cells, right-aligned
    for name, col in entities.items():
        columns.append((name, [cell(v) for v in col[:shown_rows]], True))
    for name in features:
        cells = []
        for v, s in zip(values[name][:shown_rows], statuses[name][:shown_rows], strict=True):
            cells.append(cell(v) if s == PRESENT else f"{cell(v)} [{s}]")
        shown = [v for v in values[name][:shown_rows] if v is not None]
        numeric = bool(shown) and all(isinstance(v, int | float) for v in shown)
        columns.append((name, cells, numeric))
    widths = [max([len(name), *(len(c) for c in cells)]) for name, cells, _ in columns]
    head = f"{title}: {n} row{'s' * (n != 1)}, {len(values)} feature{'s' * (len(values) != 1)}"
    lines = [head]
    if columns:
        lines.append(
            "  ".join(
                name.rjust(w) if right else name.ljust(w)
                for (name, _, right), w in zip(columns, widths, strict=True)
            ).rstrip()
        )
        for i in range(shown_rows):
            lines.append(
                "  ".join(
                    cells[i].rjust(w) if right else cells[i].ljust(w)
                    for (_, cells, right), w in zip(columns, widths, strict=True)
                ).rstrip()
            )
    left = []
    if n > shown_rows:
        left.append(f"{n - shown_rows} more row{'s' * (n - shown_rows != 1)}")
    if len(values) > len(features):
        more = len(values) - len(features)
        left.append(f"{more} more feature{'s' * (more != 1)}")
    if left:
        lines.append(f"… {' and '.join(left)} (to_pandas() or to_dict() has them all)")
    return "\n".join(lines)
