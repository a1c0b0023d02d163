"""The point-in-time rule written the slow, obvious way: the reference every engine must match.

For an entity row stamped ``t``: among source rows with equal keys and ``t - ttl <= ts <= t``,
the greatest ``(ts, created)`` wins (null created is oldest); no candidate gives None.
Rows tied on both are duplicates: any one of them is a right answer, but every feature of
an entity row must come from that one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

NEG_INF = datetime.min.replace(tzinfo=UTC)


def expected_rows(
    t: datetime,
    keys: tuple[Any, ...],
    source: Sequence[dict[str, Any]],
    key_cols: Sequence[str],
    ttl: timedelta | None,
    created_col: str | None = "created",
) -> list[dict[str, Any]]:
    """The winning source rows (several only when tied on both timestamps); [] = no match."""
    best: list[dict[str, Any]] = []
    best_order = None
    for row in source:
        if tuple(row[k] for k in key_cols) != keys:
            continue
        ts = row["event_timestamp"]
        if ts is None or ts > t or (ttl is not None and ts < t - ttl):
            continue
        created = row.get(created_col) if created_col else None
        order = (ts, created or NEG_INF)
        if best_order is None or order > best_order:
            best, best_order = [row], order
        elif order == best_order:
            best.append(row)
    return best


def expected_choices(
    entity_rows: Sequence[dict[str, Any]],
    source: Sequence[dict[str, Any]],
    key_cols: Sequence[str],
    features: Sequence[str],
    ttl: timedelta | None,
    created_col: str | None = "created",
) -> list[list[tuple[Any, ...]]]:
    """Per entity row, every right answer as a tuple of feature values."""
    out = []
    for e in entity_rows:
        rows = expected_rows(
            e["event_timestamp"], tuple(e[k] for k in key_cols), source, key_cols, ttl, created_col
        )
        out.append([tuple(r[f] for f in features) for r in rows] or [tuple(None for _ in features)])
    return out
