"""The skew comparison's rules for all inputs (``parity.monitoring.skew``): served values
against offline ones, row by row, then summed per feature."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from parity.monitoring.serving_log import REQUEST_TIME
from parity.monitoring.skew import MISMATCH_SCHEMA, _compare

T0 = datetime(2024, 1, 1, tzinfo=UTC)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12)
maybe = st.one_of(st.none(), finite)


def logged(served: list, dtype: pa.DataType) -> pa.Table:
    n = len(served)
    return pa.table(
        {
            REQUEST_TIME: pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
            "driver_id": pa.array(range(n), pa.int64()),
            "f": pa.array(served, dtype),
            "f__status": pa.array(["present" if v is not None else "missing" for v in served]),
            "f__event_timestamp": pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
        }
    )


FLOAT = pa.float64()


def compare(served: list, offline: list, dtype: pa.DataType = FLOAT):
    table = logged(served, dtype)
    return _compare("v:f", table, "f", pa.chunked_array([pa.array(offline, dtype)]), ["driver_id"])


def score(on: float, off: float) -> float:
    big = max(abs(on), abs(off))
    if on == off or big == 0:
        return 1.0
    return max(0.0, 1 - abs(on - off) / big)


@settings(deadline=None, max_examples=300)
@given(st.lists(st.tuples(maybe, maybe), min_size=1, max_size=30))
@example([(1.0, -1.0), (0.0, 0.0), (None, None)])
def test_counts_rates_and_scores_for_any_pairs(pairs) -> None:
    served = [a for a, _ in pairs]
    offline = [b for _, b in pairs]
    tally, bad = compare(served, offline)
    both = [(a, b) for a, b in pairs if a is not None and b is not None]
    same = [(a, b) for a, b in both if a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))]
    nulls = sum(a is None and b is None for a, b in pairs)
    assert tally.rows == len(pairs)
    assert tally.matched == nulls + len(same)
    assert tally.missing == sum(a is None and b is not None for a, b in pairs)
    assert tally.extra == sum(a is not None and b is None for a, b in pairs)
    different = tally.rows - tally.matched - tally.missing - tally.extra
    assert different == len(both) - len(same) >= 0
    assert tally.pairs == len(both)
    assert tally.abs_diff == pytest.approx(sum(abs(a - b) for a, b in both), rel=1e-9, abs=1e-9)
    expected = nulls + sum(score(a, b) if (a, b) not in same else 1.0 for a, b in both)
    assert tally.score == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert 0.0 <= tally.score <= tally.rows
    row = tally.row("v:f")
    assert 0.0 <= row["consistency"] <= 1.0
    if bad is None:
        assert tally.matched == tally.rows
    else:
        assert bad.schema == MISMATCH_SCHEMA
        assert bad.num_rows == tally.rows - tally.matched
        kinds = bad.column("kind").to_pylist()
        assert kinds.count("missing") == tally.missing
        assert kinds.count("extra") == tally.extra


@settings(deadline=None, max_examples=100)
@given(st.lists(maybe, min_size=1, max_size=30))
def test_what_was_served_as_the_join_says_matches_everywhere(values) -> None:
    tally, bad = compare(values, values)
    assert bad is None
    assert tally.matched == tally.rows and tally.score == tally.rows
    assert tally.abs_diff == 0.0


@settings(deadline=None, max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.text(max_size=3)), st.one_of(st.none(), st.text(max_size=3))
        ),
        min_size=1,
        max_size=20,
    )
)
def test_other_types_match_exactly_and_score_zero_or_one(pairs) -> None:
    served = [a for a, _ in pairs]
    offline = [b for _, b in pairs]
    tally, _ = compare(served, offline, pa.string())
    assert tally.matched == sum(a == b for a, b in pairs)  # None == None: both null
    assert tally.score == tally.matched
    assert tally.pairs == 0 and tally.row("v:f")["mean_abs_diff"] is None


def test_floats_within_a_relative_1e_9_match_and_integers_exactly() -> None:
    tally, _ = compare([1.0, 1e6, 0.0], [1.0 + 1e-10, 1e6 * (1 + 2e-9), 0.0])
    assert tally.matched == 2  # the second differs by 2e-9 relative
    tally, bad = compare([10, 11, None], [10, 12, 3], pa.int64())
    assert (tally.matched, tally.missing) == (1, 1)
    assert bad is not None
    assert bad.column("abs_diff").to_pylist() == [1.0, None]
    assert bad.column("entity").to_pylist() == ['{"driver_id": 1}', '{"driver_id": 2}']
    assert bad.column("served").to_pylist() == ["11", None]
    assert bad.column("offline").to_pylist() == ["12", "3"]


def test_opposite_signs_score_zero_and_nan_matches_nan() -> None:
    tally, _ = compare([1.0, math.nan], [-1.0, math.nan])
    assert tally.matched == 1 and tally.score == 1.0


def test_lists_are_compared_by_their_values() -> None:
    tally, _ = compare([[1, 2], [3], None], [[1, 2], [4], None], pa.list_(pa.int64()))
    assert tally.matched == 2 and tally.score == 2.0
