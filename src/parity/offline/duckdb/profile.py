"""Feature statistics in DuckDB SQL: the engine's ``SupportsProfile``.

Two passes over the source rows (``source_rows_sql``, so the time range, field mapping and
casts are the engine's own), plus one per string or bool feature:

1. one aggregate for every feature: ``count``, ``count(DISTINCT)`` (or
   ``approx_count_distinct``), ``avg``, ``stddev_samp``, ``min``, ``max`` and
   ``quantile_cont(x, [...])`` (linear interpolation, numpy's default);
2. one aggregate of ``histogram(bin)`` for all numeric features, the bins equal-width from the
   first pass's min and max: ``least(floor((x - min) / (max - min) * bins), bins - 1)``;
3. ``GROUP BY value ORDER BY count DESC, value LIMIT k`` for each string or bool feature.

Timestamps are profiled as seconds since the epoch (UTC), so their mean, quantiles and bins
are numbers like the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from parity import types as T
from parity.errors import DataSourceError
from parity.offline.base import (
    PROFILE_QUANTILES,
    PROFILE_SCHEMA,
    ViewJoin,
    profile_bins,
    profile_kind,
)

__all__ = ["profile", "profile_rows"]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _value(column: str, kind: str) -> str:
    """The number a numeric statistic reads (timestamps as epoch seconds)."""
    return f"(epoch_us({column}) / 1e6)" if kind == "timestamp" else column


def _first_pass(columns: Sequence[tuple[str, str]], distinct: str) -> str:
    """The select list of pass 1 (``columns``: (quoted column, kind))."""
    quantiles = "[" + ", ".join(repr(q) for q in PROFILE_QUANTILES) + "]"
    count_distinct = "approx_count_distinct({})" if distinct == "approx" else "count(DISTINCT {})"
    parts = ["count(*)"]
    for col, kind in columns:
        parts.append(f"count({col})")
        parts.append("NULL::BIGINT" if kind == "array" else count_distinct.format(col))
        if kind in ("numeric", "timestamp"):
            v = _value(col, kind)
            parts += [
                f"avg({v})::DOUBLE",
                f"stddev_samp({v})::DOUBLE",
                f"min({v})::DOUBLE",
                f"max({v})::DOUBLE",
                f"quantile_cont({v}::DOUBLE, {quantiles})",
            ]
    return ", ".join(parts)


def profile_rows(
    con: duckdb.DuckDBPyConnection,
    rows_sql: str,
    features: Sequence[tuple[str, T.ValueType]],
    *,
    distinct: str = "exact",
    bins: int = 20,
    top_k: int = 10,
    what: str = "the rows",
) -> pa.Table:
    """``PROFILE_SCHEMA`` for the ``features`` (name, type) of the relation ``rows_sql``.

    ``what`` names the rows in a DataSourceError when DuckDB fails.
    """
    if distinct not in ("exact", "approx"):
        raise ValueError(f"distinct must be 'exact' or 'approx', not {distinct!r}")
    cols = [(_ident(name), profile_kind(dtype)) for name, dtype in features]
    try:
        first = con.execute(f"SELECT {_first_pass(cols, distinct)} FROM ({rows_sql})").fetchone()
        assert first is not None  # an aggregate without GROUP BY has one row
        stats = _unpack(first, cols)
        hist = _histograms(con, rows_sql, cols, stats, bins)
        top = {
            i: con.execute(
                f"SELECT CAST({col} AS VARCHAR) AS v, count(*) AS n FROM ({rows_sql}) "
                f"WHERE {col} IS NOT NULL GROUP BY {col} ORDER BY n DESC, v LIMIT {int(top_k)}"
            ).fetchall()
            for i, (col, kind) in enumerate(cols)
            if kind == "categorical" and stats[i]["count"]
        }
    except duckdb.Error as exc:
        raise DataSourceError(f"profiling {what}: {exc}") from None
    out: dict[str, list[Any]] = {name: [] for name in PROFILE_SCHEMA.names}
    for i, ((name, dtype), (_, kind)) in enumerate(zip(features, cols, strict=True)):
        s = stats[i]
        rows = int(first[0])
        out["feature"].append(name)
        out["dtype"].append(str(dtype))
        out["rows"].append(rows)
        out["nulls"].append(rows - s["count"])
        out["null_ratio"].append((rows - s["count"]) / rows if rows else None)
        out["distinct"].append(s["distinct"])
        out["distinct_exact"].append(distinct == "exact" and kind != "array")
        for key in ("mean", "std", "min", "max"):
            out[key].append(s.get(key))
        qs = s.get("quantiles") or [None] * len(PROFILE_QUANTILES)
        for q, value in zip(PROFILE_QUANTILES, qs, strict=True):
            out[f"p{round(q * 100)}"].append(value)
        out["histogram"].append(hist.get(i))
        out["top"].append([{"value": v, "count": int(n)} for v, n in top[i]] if i in top else None)
    return pa.table(out, schema=PROFILE_SCHEMA)


def _unpack(first: tuple[Any, ...], cols: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Pass 1's one row as a dict per feature."""
    stats = []
    at = 1
    for _, kind in cols:
        s: dict[str, Any] = {"count": int(first[at]), "distinct": first[at + 1]}
        at += 2
        if kind in ("numeric", "timestamp"):
            s["mean"], s["std"], s["min"], s["max"], s["quantiles"] = first[at : at + 5]
            at += 5
        stats.append(s)
    return stats


def _histograms(
    con: duckdb.DuckDBPyConnection,
    rows_sql: str,
    cols: Sequence[tuple[str, str]],
    stats: Sequence[dict[str, Any]],
    bins: int,
) -> dict[int, list[dict[str, Any]]]:
    """Pass 2: each numeric feature's bins (finite min and max only; none when no values)."""
    out: dict[int, list[dict[str, Any]]] = {}
    wanted: list[tuple[int, str]] = []
    for i, (col, kind) in enumerate(cols):
        lo, hi = stats[i].get("min"), stats[i].get("max")
        if kind not in ("numeric", "timestamp") or lo is None or hi is None:
            continue
        if not (math.isfinite(lo) and math.isfinite(hi)):
            continue
        if lo == hi:
            out[i] = [{"lower": lo, "upper": hi, "count": stats[i]["count"]}]
            continue
        v = _value(col, kind)
        # The bounds as text literals: a decimal literal would reach DOUBLE by a division
        # and could be one ulp off the first pass's value, moving a value across an edge.
        lo_sql, hi_sql = (f"CAST('{x!r}' AS DOUBLE)" for x in (lo, hi))
        # Non-finite values (NaN, inf) are left out of the bins: they have no place in them.
        wanted.append(
            (
                i,
                f"histogram(least(floor(({v}::DOUBLE - {lo_sql}) / ({hi_sql} - {lo_sql}) * {bins}), "
                f"{bins - 1})::INTEGER) FILTER (WHERE isfinite({v}::DOUBLE))",
            )
        )
    if not wanted:
        return out
    row = con.execute(f"SELECT {', '.join(sql for _, sql in wanted)} FROM ({rows_sql})").fetchone()
    assert row is not None
    for (i, _), counts in zip(wanted, row, strict=True):
        lo, hi = stats[i]["min"], stats[i]["max"]
        by_bin = dict(counts or {})
        out[i] = [
            {"lower": a, "upper": b, "count": int(by_bin.get(k, 0))}
            for k, (a, b) in enumerate(profile_bins(lo, hi, bins))
        ]
    return out


def profile(
    con: duckdb.DuckDBPyConnection,
    rows_sql: str,
    view: ViewJoin,
    *,
    distinct: str = "exact",
    bins: int = 20,
    top_k: int = 10,
) -> pa.Table:
    """``SupportsProfile.profile`` over ``rows_sql`` (the view's ``source_rows_sql``)."""
    return profile_rows(
        con,
        rows_sql,
        list(zip(view.output_names, view.dtypes, strict=True)),
        distinct=distinct,
        bins=bins,
        top_k=top_k,
        what=f"the rows of {view.view.name!r}",
    )
