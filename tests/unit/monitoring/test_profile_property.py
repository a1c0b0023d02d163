"""For any column of numbers with nulls, a profile's counts, nulls, distinct, min, max, mean,
std, quantiles and bins are numpy's, both in DuckDB SQL (the engine's) and in Arrow (the
fallback's); for any strings, the top values are pandas' value counts."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from parity import types as T
from parity.monitoring.profile_arrow import profile_table
from parity.offline.base import PROFILE_QUANTILES
from parity.offline.duckdb.profile import profile_rows

FLOATS = st.lists(
    st.none() | st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), max_size=60
)
INTS = st.lists(st.none() | st.integers(min_value=-(2**40), max_value=2**40), max_size=60)
TEXTS = st.lists(st.none() | st.sampled_from(["a", "b", "c", "é", "", "a b"]), max_size=60)


def _both(table: pa.Table, dtype: T.ValueType, bins: int = 7) -> list[dict[str, Any]]:
    con = duckdb.connect()
    try:
        con.register("t", table)
        sql = profile_rows(con, "SELECT * FROM t", [("x", dtype)], bins=bins).to_pylist()[0]
    finally:
        con.close()
    arrow = profile_table(table, [("x", dtype)], bins=bins).to_pylist()[0]
    return [sql, arrow]


def _check_numbers(values: list[Any], arrow_type: pa.DataType, dtype: T.ValueType) -> None:
    table = pa.table({"x": pa.array(values, arrow_type)})
    x = np.array([v for v in values if v is not None], dtype=np.float64)
    scale = max(1.0, float(np.abs(x).max())) if len(x) else 1.0
    for got in _both(table, dtype):
        assert got["rows"] == len(values)
        assert got["nulls"] == len(values) - len(x)
        assert got["null_ratio"] == (pytest.approx(got["nulls"] / len(values)) if values else None)
        assert got["distinct"] == len(set(x.tolist()))
        if len(x) == 0:
            assert all(got[k] is None for k in ("mean", "std", "min", "max", "p50", "histogram"))
            continue
        assert got["min"] == x.min() and got["max"] == x.max()
        assert got["mean"] == pytest.approx(x.mean(), rel=1e-9, abs=1e-9 * scale)
        if len(x) > 1:
            assert got["std"] == pytest.approx(x.std(ddof=1), rel=1e-6, abs=1e-6 * scale)
        else:
            assert got["std"] is None
        for q in PROFILE_QUANTILES:
            want = np.quantile(x, q)
            assert got[f"p{round(q * 100)}"] == pytest.approx(want, rel=1e-9, abs=1e-9 * scale)
        hist = got["histogram"]
        assert sum(b["count"] for b in hist) == len(x)
        assert hist[0]["lower"] == x.min() and hist[-1]["upper"] == x.max()
        for b in hist:  # every value counted is inside its bin
            inside = ((x >= b["lower"]) & (x <= b["upper"])).sum()
            assert b["count"] <= inside


@settings(deadline=None, max_examples=150)
@given(FLOATS)
@example([1.5, None, 1.5])  # one distinct value: one bin
@example([0.0, -0.0])  # one distinct value too (hypothesis found the Arrow side counted two)
@example([None, None])
@example([])
def test_float_columns_profile_as_numpy_says(values: list[float | None]):
    _check_numbers(values, pa.float64(), T.Float64)


@settings(deadline=None, max_examples=150)
@given(INTS)
@example([2**40, -(2**40), 0, None])
def test_integer_columns_profile_as_numpy_says(values: list[int | None]):
    _check_numbers(values, pa.int64(), T.Int64)


@settings(deadline=None, max_examples=100)
@given(INTS, INTS)
def test_the_engine_and_the_fallback_give_the_same_bins(a: list[int | None], b: list[int | None]):
    table = pa.table({"x": pa.array(a + b, pa.int64())})
    sql, arrow = _both(table, T.Int64, bins=5)
    assert sql["histogram"] == arrow["histogram"]


@settings(deadline=None, max_examples=100)
@given(TEXTS)
def test_top_values_are_the_value_counts(values: list[str | None]):
    table = pa.table({"x": pa.array(values, pa.string())})
    counts = pd.Series([v for v in values if v is not None], dtype=object).value_counts()
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:10]
    for got in _both(table, T.String):
        assert got["nulls"] == sum(v is None for v in values)
        assert got["distinct"] == len(counts)
        if want:
            assert got["top"] == [{"value": v, "count": int(c)} for v, c in want]
        else:
            assert got["top"] is None
        assert got["mean"] is None and got["histogram"] is None
