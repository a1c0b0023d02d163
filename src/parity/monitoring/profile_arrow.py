"""Feature statistics of an Arrow table, with pyarrow.compute and numpy.

What ``store.profile`` uses for the online store's values, and for source rows when the
offline engine has no ``SupportsProfile``. The statistics are the engine's
(``parity.offline.base.SupportsProfile.profile``): the same quantile definition (linear
interpolation), the same bins (``least(floor((x - min) / (max - min) * bins), bins - 1)``
over finite values), the same ordering of NaN (after every number, as DuckDB sorts it), so
the two agree on the same rows. Distinct counts are always exact here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parity import types as T
from parity.offline.base import PROFILE_QUANTILES, PROFILE_SCHEMA, profile_bins, profile_kind

__all__ = ["profile_table"]


def profile_table(
    table: pa.Table,
    features: Sequence[tuple[str, T.ValueType]],
    *,
    bins: int = 20,
    top_k: int = 10,
) -> pa.Table:
    """``PROFILE_SCHEMA`` for the columns ``features`` (name, type) of ``table``."""
    out: dict[str, list[Any]] = {name: [] for name in PROFILE_SCHEMA.names}
    rows = table.num_rows
    for name, dtype in features:
        column = table.column(name)
        kind = profile_kind(dtype)
        count = rows - column.null_count
        out["feature"].append(name)
        out["dtype"].append(str(dtype))
        out["rows"].append(rows)
        out["nulls"].append(rows - count)
        out["null_ratio"].append((rows - count) / rows if rows else None)
        if kind == "array":
            out["distinct"].append(None)
            out["distinct_exact"].append(False)
        else:
            if pa.types.is_floating(column.type):  # -0.0 + 0.0 is 0.0: one value, as in SQL
                column = pc.add(column, pa.scalar(0.0, column.type))
            out["distinct"].append(pc.count_distinct(column, mode="only_valid").as_py())
            out["distinct_exact"].append(True)
        stats = _numeric(column, kind, bins) if kind in ("numeric", "timestamp") else {}
        for key in ("mean", "std", "min", "max"):
            out[key].append(stats.get(key))
        for q in PROFILE_QUANTILES:
            out[f"p{round(q * 100)}"].append(stats.get(q))
        out["histogram"].append(stats.get("histogram"))
        out["top"].append(_top(column, top_k) if kind == "categorical" and count else None)
    return pa.table(out, schema=PROFILE_SCHEMA)


def _values(column: pa.ChunkedArray, kind: str) -> np.ndarray:
    """The non-null values as float64 (timestamps as epoch seconds), sorted NaN last."""
    valid = pc.drop_null(column)
    if kind == "timestamp":
        micros = valid.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        values = micros.to_numpy().astype(np.float64) / 1e6
    else:
        values = valid.cast(pa.float64()).to_numpy()
    return np.sort(values)  # numpy sorts NaN after every number, as DuckDB orders it


def _numeric(column: pa.ChunkedArray, kind: str, bins: int) -> dict[Any, Any]:
    values = _values(column, kind)
    n = len(values)
    if n == 0:
        return {}
    stats: dict[Any, Any] = {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if n > 1 else None,
        "min": float(values[0]),
        "max": float(values[-1]),
    }
    for q in PROFILE_QUANTILES:
        stats[q] = _quantile(values, q)
    lo, hi = stats["min"], stats["max"]
    if math.isfinite(lo) and math.isfinite(hi):
        if lo == hi:
            stats["histogram"] = [{"lower": lo, "upper": hi, "count": n}]
        else:
            finite = values[np.isfinite(values)]
            index = np.minimum(np.floor((finite - lo) / (hi - lo) * bins), bins - 1)
            counts = np.bincount(index.astype(np.int64), minlength=bins)
            stats["histogram"] = [
                {"lower": a, "upper": b, "count": int(c)}
                for (a, b), c in zip(profile_bins(lo, hi, bins), counts, strict=True)
            ]
    return stats


def _quantile(ordered: np.ndarray, q: float) -> float:
    """Linear interpolation between the closest ranks of sorted values (numpy's default,
    DuckDB's ``quantile_cont``)."""
    position = (len(ordered) - 1) * q
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    a, b = float(ordered[lower]), float(ordered[upper])
    if a == b or position == lower:
        return a
    return a + (position - lower) * (b - a)


def _top(column: pa.ChunkedArray, k: int) -> list[dict[str, Any]]:
    """The ``k`` most frequent non-null values (ties by value), as text."""
    counts = pc.value_counts(pc.drop_null(column).cast(pa.string()))
    pairs = list(
        zip(
            counts.field("values").to_pylist(),
            counts.field("counts").to_pylist(),
            strict=True,
        )
    )
    pairs.sort(key=lambda p: (-p[1], p[0]))
    return [{"value": v, "count": int(c)} for v, c in pairs[:k]]
