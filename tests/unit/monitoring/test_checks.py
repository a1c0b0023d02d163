"""Every check rule on data with known answers, and each rule's verdict against numpy/pandas
on arbitrary arrays (nulls and NaN included)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity import types as T
from parity.definitions import Field
from parity.errors import DefinitionError, MonitoringError
from parity.monitoring.checks import (
    CheckFailedError,
    evaluate,
    results_table,
    violations_text,
)


def _one(values: list, dtype=T.Float64, **checks) -> dict:
    t = pa.table({"k": list(range(len(values))), "x": pa.array(values, dtype.to_arrow())})
    [r] = evaluate(t, [Field(name="x", dtype=dtype, checks=checks)], keys=["k"], view="v")
    return r


def test_known_answers() -> None:
    vals = [1.0, None, float("nan"), 200.0, 1.0, 5.0]
    r = _one(vals, max_null_ratio=0.3)
    assert (r.observed, r.passed, r.offending_rows) == (pytest.approx(2 / 6), False, 2)
    assert [s["row"] for s in r.sample] == [1, 2]
    assert r.sample[1]["x"] == "nan"  # JSON can hold it
    r = _one(vals, max=150)
    assert (r.observed, r.passed, r.offending_rows) == (200.0, False, 1)
    assert r.sample == ({"row": 3, "k": 3, "x": 200.0},)
    r = _one(vals, min=0)
    assert (r.observed, r.passed, r.offending_rows) == (1.0, True, 0)
    r = _one(vals, allowed=[1, 5])
    assert (r.observed, r.passed, r.offending_rows) == (1.0, False, 1)
    r = _one(vals, min_unique=4)
    assert (r.observed, r.passed) == (3.0, False)
    r = _one(vals, unique=True)
    assert (r.observed, r.passed, [s["row"] for s in r.sample]) == (1.0, False, [4])
    # p25 1, p75 5 (linear over 1, 1, 5, 200), IQR 4: [-5, 11] -> 200 is the one outlier
    r = _one(vals, max_outlier_ratio=0.2)
    assert (r.observed, r.passed, r.offending_rows) == (0.25, False, 1)
    assert _one(vals, max_outlier_ratio=0.2, outlier_k=100).passed


def test_strings_and_bools() -> None:
    r = _one(["a", "b", None, "c", "a"], T.String, allowed=["a", "b"])
    assert (r.observed, r.passed, r.sample) == (1.0, False, ({"row": 3, "k": 3, "x": "c"},))
    r = _one(["a", "b", None, "a", "a"], T.String, unique=True)
    assert (r.observed, [s["row"] for s in r.sample]) == (2.0, [3, 4])
    assert _one([True, False, None], T.Bool, allowed=[True, False]).passed
    assert not _one([True, True], T.Bool, min_unique=2).passed


def test_no_rows_and_all_null() -> None:
    assert _one([], max_null_ratio=0.0).passed
    assert not _one([], min_unique=1).passed
    for rule in ({"min": 0}, {"max": 0}, {"max_outlier_ratio": 0.0}):
        r = _one([None, None], **rule)
        assert (r.observed, r.passed) == (None, True)


def test_negative_zero_is_zero() -> None:
    assert not _one([0.0, -0.0], unique=True).passed
    assert _one([0.0, -0.0], min_unique=1).observed == 1.0


def test_result_table_shape() -> None:
    t = pa.table({"x": [1.0, 300.0]})
    res = evaluate(t, [Field(name="x", dtype=T.Float64, checks={"max": 150, "min": 0})])
    table = results_table(res)
    assert table.column_names == [
        "feature",
        "rule",
        "threshold",
        "observed",
        "passed",
        "offending_rows",
        "sample",
    ]
    row = table.to_pylist()[1]  # the rules in declared order: min, max
    assert (row["rule"], json.loads(row["threshold"]), row["passed"]) == ("max", 150, False)
    assert json.loads(row["sample"]) == [{"row": 1, "x": 300.0}]


def test_error_message_names_view_rule_field_and_rows() -> None:
    failed = [r for r in [_one([1.0, 300.0], max=150)] if not r.passed]
    err = CheckFailedError(violations_text(failed, rows=2), failed)
    text = str(err)
    for part in ("'v'", "'x'", "max 150", "observed 300", '"row": 1'):
        assert part in text, text
    assert err.row is None and err.violations == tuple(failed) and err.field == "x"


def test_rules_that_cannot_apply() -> None:
    with pytest.raises(DefinitionError, match=r"^field 's': checks: 'min' applies to numbers"):
        Field(name="s", dtype=T.String, checks={"min": 0})
    with pytest.raises(DefinitionError, match="'unique' and 'min_unique' apply to single"):
        Field(name="s", dtype=T.Array(T.Int64), checks={"unique": True})
    f = Field(name="x", dtype=T.Float64, checks={"min": 0})
    with pytest.raises(MonitoringError, match=r"'x'.*applies to numbers.*string"):
        evaluate(pa.table({"x": ["a"]}), [f], view="v")
    with pytest.raises(MonitoringError, match="'x' has checks but is not among"):
        evaluate(pa.table({"y": [1.0]}), [f], view="v")


# -- properties: each verdict against numpy / pandas -------------------------------------

floats = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.0, 2.0]),
)
SETTINGS = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


def _series(values: list) -> pd.Series:
    return pd.Series(values, dtype="float64")  # None and NaN both NaN: both null


@SETTINGS
@given(st.lists(floats, max_size=40), st.floats(0, 1))
def test_null_ratio_property(values: list, ratio: float) -> None:
    s = _series(values)
    expect = s.isna().mean() if len(s) else 0.0
    r = _one(values, max_null_ratio=ratio)
    assert r.observed == pytest.approx(expect)
    assert r.passed == (expect <= ratio)
    assert r.offending_rows == int(s.isna().sum())


@SETTINGS
@given(st.lists(floats, max_size=40), st.floats(-10, 10), st.floats(0, 20))
def test_min_max_property(values: list, low: float, span: float) -> None:
    s = _series(values).dropna()
    high = low + span
    r = _one(values, min=low)
    assert r.passed == bool((s >= low).all())
    assert r.offending_rows == int((s < low).sum())
    r = _one(values, max=high)
    assert r.passed == bool((s <= high).all())
    assert r.offending_rows == int((s > high).sum())
    if len(s):
        assert r.observed == s.max()


@SETTINGS
@given(st.lists(st.one_of(st.none(), st.integers(0, 6)), max_size=40), st.integers(1, 8))
def test_allowed_unique_min_unique_property(values: list, n: int) -> None:
    s = pd.Series(values, dtype="Int64").dropna()
    allowed = [0, 2, 4]
    r = _one(values, T.Int64, allowed=allowed)
    assert r.offending_rows == int((~s.isin(allowed)).sum())
    assert r.passed == bool(s.isin(allowed).all())
    r = _one(values, T.Int64, min_unique=n)
    assert r.observed == s.nunique() and r.passed == (s.nunique() >= n)
    r = _one(values, T.Int64, unique=True)
    dup = s.duplicated()
    assert r.offending_rows == int(dup.sum()) and r.passed == (not dup.any())
    assert [x["row"] for x in r.sample] == list(s.index[dup])[:5]


@SETTINGS
@given(
    st.lists(floats, max_size=40),
    st.floats(0, 1),
    st.sampled_from([0.5, 1.5, 3.0]),
)
def test_outliers_property(values: list, ratio: float, k: float) -> None:
    v = _series(values).dropna().to_numpy()
    r = _one(values, max_outlier_ratio=ratio, outlier_k=k)
    if not len(v):
        assert (r.observed, r.passed) == (None, True)
        return
    p25, p75 = np.quantile(v, [0.25, 0.75], method="linear")
    iqr = p75 - p25
    lo, hi = p25 - k * iqr, p75 + k * iqr
    # a value on a fence (two points, k 0.5: the smallest is p25 - k*IQR exactly) is
    # inside or out by rounding alone: only values clear of the fences are counted exactly
    tol = 1e-9 * max(1.0, float(np.abs(v).max()))
    sure = (v < lo - tol) | (v > hi + tol)
    maybe = (v < lo + tol) | (v > hi - tol)
    assert int(sure.sum()) <= r.offending_rows <= int(maybe.sum())
    assert r.observed == pytest.approx(r.offending_rows / len(v))
    if sure.sum() == maybe.sum() and not math.isclose(sure.mean(), ratio):
        assert r.passed == (sure.mean() <= ratio)
