"""Window aggregations offline: one range join and GROUP BY per aggregated view in DuckDB.

Every entity row joins its entity's events in the longest window, ``(start, t]``; each
aggregation filters to its own window (``FILTER (WHERE ts > start_w)``), so all of a view's
windows come from one pass. Partial results are exact integers (``parity.aggregates.exact``)
and become floats in numpy by the same arithmetic the online store uses, so a value is the
same bit for bit on both paths. Window starts are computed in numpy (floor division: DuckDB's
``//`` truncates toward zero).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from parity import types as T
from parity.aggregates import exact
from parity.aggregates.state import AggregatePlan
from parity.definitions import DataSource, FeatureView
from parity.lazy import LazyModule

if TYPE_CHECKING:
    import pyarrow.compute as pc
else:
    pc = LazyModule("pyarrow.compute", globals(), "pc")  # imported on first use

_FNS_OF_COLUMN_SUMS = ("sum", "mean", "stddev")


@dataclass(frozen=True)
class WindowQuery:
    """The SQL of one aggregated view's windows and how to read its result."""

    sql: str
    keys: pa.Table
    finish: Callable[[pa.Table], dict[str, pa.Array]]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def window_query(
    view: FeatureView,
    source: DataSource,
    join_keys: tuple[str, ...],
    outputs: tuple[str, ...],
    keys: pa.Table,
    *,
    row_id: str,
    entity_us: pa.Array,
    scan: str,
    micros: Callable[[str], str],
    bound: Callable[[str, str, int], str],
    duck_type: Callable[[T.ValueType], str],
) -> WindowQuery:
    """The query for ``outputs`` of ``view`` at each keyed entity row.

    ``micros(column)`` is SQL for a source time column in µs; ``bound(column, op, µs)`` a
    pushdown-friendly bound on the raw column.
    """
    plan = AggregatePlan.of(view, source.event_id_field)
    wanted = [o for o in plan.outputs if o.name in outputs]
    t = np.asarray(entity_us, dtype=np.int64)
    windows = sorted({o.window_us for o in wanted})
    cols: dict[str, pa.Array] = {row_id: keys.column(row_id).combine_chunks()}
    for i, k in enumerate(join_keys):
        cols[f"k{i}"] = keys.column(k).combine_chunks()
    cols["__t"] = pa.array(t)
    for w in windows:
        start = t - w
        if plan.hop_us is not None:
            start = np.floor_divide(start, plan.hop_us) * plan.hop_us
        cols[f"__s{w}"] = pa.array(start)
    lo_start = min((int(np.min(cols[f"__s{w}"])) for w in windows), default=0) if len(t) else 0
    hi_t = int(t.max()) if len(t) else 0
    wkeys = pa.table(cols)
    smin = (
        "least(" + ", ".join(f"k.__s{w}" for w in windows) + ")"
        if len(windows) > 1
        else f"k.__s{windows[0]}"
    )

    types = {f.name: f.dtype for f in view.schema}
    ts_col = _ident(source.timestamp_field)
    ev = [f"{_ident(source.column_for(k))} AS k{i}" for i, k in enumerate(join_keys)]
    ev.append(f"{micros(source.timestamp_field)} AS __ts")
    if source.created_timestamp_field:
        ev.append(f"{micros(source.created_timestamp_field)} AS __cr")
    else:
        ev.append("NULL::BIGINT AS __cr")
    col_alias: dict[str, str] = {}
    for i, column in enumerate(plan.columns):
        col_alias[column] = f"c{i}"
        ev.append(
            f"{typed_column(_ident(source.column_for(column)), types[column], duck_type)} AS c{i}"
        )
    if plan.event_id:
        ev.append(f"{_ident(source.column_for(plan.event_id))} AS __eid")
    where = [
        f"{ts_col} IS NOT NULL",
        bound(source.timestamp_field, ">", lo_start),
        bound(source.timestamp_field, "<=", hi_t),
        "(" + ", ".join(_ident(source.column_for(k)) for k in join_keys) + ") IN "
        "(SELECT (" + ", ".join(f"k{i}" for i in range(len(join_keys))) + ") FROM __parity_wkeys)",
    ]
    events = f"SELECT {', '.join(ev)} FROM {scan} WHERE {' AND '.join(where)}"
    if plan.event_id:
        part = ", ".join(f"k{i}" for i in range(len(join_keys)))
        events = (
            f"SELECT * FROM ({events}) QUALIFY __eid IS NULL OR row_number() OVER "
            f"(PARTITION BY {part}, __eid ORDER BY __cr ASC NULLS FIRST, __ts) = 1"
        )

    selects: list[str] = []
    finishers: list[Callable[[pa.Table], tuple[str, pa.Array]]] = []
    approx: list[tuple[str, str, str]] = []
    for o in wanted:
        slot = plan.slots[o.slot]
        f = f"e.__ts > k.__s{o.window_us}"
        c: str | None = f"e.{col_alias[slot.column]}" if slot.column else None
        p = f"o{len(selects)}"
        fn = o.function
        if fn == "count":
            selects.append(f"count({c or '*'}) FILTER (WHERE {f}) AS {p}")
            finishers.append(_count(o.name, p))
        elif fn in _FNS_OF_COLUMN_SUMS:
            assert c is not None
            bits = slot.bits
            q = exact.fixed_sql(c, bits) if bits else f"{c}::HUGEINT"
            hi, lo, neg = exact.limbs_sql(f"sum({q}) FILTER (WHERE {f})")
            selects += [
                f"count({c}) FILTER (WHERE {f}) AS {p}n",
                f"{hi} AS {p}h",
                f"{lo} AS {p}l",
                f"{neg} AS {p}s",
            ]
            if fn == "stddev":
                q2 = (
                    exact.fixed_sql(f"{c} * {c}", exact.SQUARE_BITS)
                    if bits
                    else f"{c}::HUGEINT * {c}::HUGEINT"
                )
                hi2, lo2, neg2 = exact.limbs_sql(f"sum({q2}) FILTER (WHERE {f})")
                selects += [f"{hi2} AS {p}h2", f"{lo2} AS {p}l2", f"{neg2} AS {p}s2"]
            finishers.append(_sums(o.name, p, fn, bits))
        elif fn in ("min", "max"):
            selects.append(f"{fn}({c}) FILTER (WHERE {f}) AS {p}")
            finishers.append(_plain(o.name, p, o.dtype))
        elif fn in ("first", "last", "last_n"):
            order = "e.__ts::HUGEINT * 18446744073709551616 + COALESCE(e.__cr::HUGEINT + 9223372036854775808, 0)"
            item = f"{{'o': {order}, 'v': {c}}}"
            cond = f"{f} AND {c} IS NOT NULL"
            if fn == "first":
                selects.append(f"(min({item}) FILTER (WHERE {cond})).v AS {p}")
            elif fn == "last":
                selects.append(f"(max({item}) FILTER (WHERE {cond})).v AS {p}")
            else:
                selects.append(
                    f"list_transform(max({item}, {slot.n}) FILTER (WHERE {cond}), lambda x: x.v) AS {p}"
                )
            finishers.append(_plain(o.name, p, o.dtype))
        elif fn == "count_distinct":
            selects.append(f"count(DISTINCT {c}) FILTER (WHERE {f}) AS {p}")
            finishers.append(_count(o.name, p))
        elif fn == "approx_count_distinct":
            assert c is not None
            selects.append(f"NULL AS {p}")  # filled from the register query below
            approx.append((o.name, c, f))
        else:
            raise AssertionError(fn)

    join_cond = " AND ".join(
        [f"k.k{i} = e.k{i}" for i in range(len(join_keys))]
        + [f"e.__ts > {smin}", "e.__ts <= k.__t"]
    )
    if not selects:
        selects.append("count(*) AS __n")
    ctes = [
        f"e AS ({events})",
        f"g AS (SELECT k.{row_id}, {', '.join(selects)} FROM __parity_wkeys k "
        f"JOIN e ON {join_cond} GROUP BY k.{row_id})",
    ]
    joins = ["LEFT JOIN g USING (" + row_id + ")"]
    extra: list[str] = []
    for j, (name, c, f) in enumerate(approx):
        idx, rank = exact.hll_register_sql(c)
        # Registers first (max rank per index), then the exact sums the estimate needs.
        ctes.append(
            f"a{j} AS (SELECT {row_id}, sum(1::HUGEINT << (64 - r)) "
            f"+ ((({exact.HLL_M} - count(*))::HUGEINT) << 64) AS z, "
            f"{exact.HLL_M} - count(*) AS zeros FROM (SELECT k.{row_id}, {idx} AS i, "
            f"max({rank}) AS r FROM __parity_wkeys k JOIN e ON {join_cond} AND {f} "
            f"AND {c} IS NOT NULL GROUP BY ALL) GROUP BY {row_id})"
        )
        zh, zl, _ = exact.limbs_sql(f"a{j}.z")  # never negative
        joins.append(f"LEFT JOIN a{j} USING ({row_id})")
        extra += [f"{zh} AS a{j}h", f"{zl} AS a{j}l", f"a{j}.zeros AS a{j}z"]
        finishers.append(_approx(name, f"a{j}"))
    sql = (
        f"WITH {', '.join(ctes)} SELECT k.{row_id}, g.* EXCLUDE ({row_id})"
        + "".join(f", {x}" for x in extra)
        + f" FROM __parity_wkeys k {' '.join(joins)} ORDER BY k.{row_id}"
    )

    def finish(result: pa.Table) -> dict[str, pa.Array]:
        return dict(fin(result) for fin in finishers)

    return WindowQuery(sql=sql, keys=wkeys, finish=finish)


def typed_column(expr: str, dtype: T.ValueType, duck_type: Callable[[T.ValueType], str]) -> str:
    """A source column cast to its declared type; floats add +0 so -0.0 reads as 0.0 (DuckDB's
    ordered aggregates lose the sign, the online side normalizes the same way)."""
    dt = duck_type(dtype)
    if dtype in (T.Float32, T.Float64):
        return f"(CAST({expr} AS {dt}) + CAST(0 AS {dt}))"
    return f"CAST({expr} AS {dt})"


def _np(col: pa.ChunkedArray | pa.Array, dtype: type, fill: int | bool = 0) -> np.ndarray:
    return np.asarray(pc.fill_null(col, fill).to_numpy(zero_copy_only=False), dtype=dtype)


def _count(name: str, p: str) -> Callable[[pa.Table], tuple[str, pa.Array]]:
    def fin(r: pa.Table) -> tuple[str, pa.Array]:
        return name, pa.array(_np(r.column(p), np.int64), pa.int64())

    return fin


def _plain(name: str, p: str, dtype: T.ValueType) -> Callable[[pa.Table], tuple[str, pa.Array]]:
    def fin(r: pa.Table) -> tuple[str, pa.Array]:
        return name, r.column(p).combine_chunks().cast(dtype.to_arrow())

    return fin


def _sums(name: str, p: str, fn: str, bits: int) -> Callable[[pa.Table], tuple[str, pa.Array]]:
    def fin(r: pa.Table) -> tuple[str, pa.Array]:
        n = _np(r.column(f"{p}n"), np.int64)
        hi = _np(r.column(f"{p}h"), np.int64)
        lo = _np(r.column(f"{p}l"), np.uint64)
        neg = _np(r.column(f"{p}s"), np.bool_, fill=False)
        if fn == "sum" and not bits:
            fits = (hi == 0) & ((lo < 2**63) | (neg & (lo == 2**63)))
            if not fits.all():
                raise exact.ExactRangeError(f"{name}: a sum is beyond Int64")
            signed = lo.astype(np.int64)  # 2**63 wraps to -2**63, which is what it is
            return name, pa.array(np.where(neg, -signed, signed), pa.int64(), mask=n == 0)
        total = exact.to_float_array(hi, lo, neg, bits)
        if fn == "sum":
            return name, pa.array(total, pa.float64(), mask=n == 0)
        if fn == "mean":
            with np.errstate(divide="ignore", invalid="ignore"):
                return name, pa.array(total / n, pa.float64(), mask=n == 0)
        hi2 = _np(r.column(f"{p}h2"), np.int64)
        lo2 = _np(r.column(f"{p}l2"), np.uint64)
        neg2 = _np(r.column(f"{p}s2"), np.bool_, fill=False)
        squares = exact.to_float_array(hi2, lo2, neg2, exact.SQUARE_BITS if bits else 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            sd = exact.stddev_array(total, squares, n)
        return name, pa.array(sd, pa.float64(), mask=n < 2)

    return fin


def _approx(name: str, p: str) -> Callable[[pa.Table], tuple[str, pa.Array]]:
    def fin(r: pa.Table) -> tuple[str, pa.Array]:
        zeros = r.column(f"{p}z")
        none = pc.is_null(zeros).to_numpy(zero_copy_only=False)
        hi = _np(r.column(f"{p}h"), np.int64)
        lo = _np(r.column(f"{p}l"), np.uint64, fill=1)
        z = _np(zeros, np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            est = exact.hll_estimate_array(hi, lo, z)
        return name, pa.array(np.where(none, 0, est), pa.int64())

    return fin
