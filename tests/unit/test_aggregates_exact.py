"""The arithmetic both paths share: the scalar (online) and column (offline) forms agree,
partial aggregates merge to the same result in any order, and DuckDB's SQL forms compute
what the Python forms do."""

from __future__ import annotations

import hashlib
import random
import struct

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity.aggregates import exact
from parity.aggregates.state import (
    AggregatePlan,
    Event,
    Output,
    Slot,
    apply_events,
    event_state,
    finalize,
    merge,
    read_values,
    window_start,
)
from parity.definitions import Aggregation, Entity, FeatureView, Field, FileSource

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
totals = st.integers(min_value=-(2**126), max_value=2**126)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


@given(totals, st.sampled_from([0, 32, 64]))
def test_to_float_is_the_same_for_one_value_and_for_a_column(total: int, b: int) -> None:
    mag = abs(total)
    hi, lo = mag >> 64, mag & (2**64 - 1)
    column = exact.to_float_array(
        np.array([hi], np.int64), np.array([lo], np.uint64), np.array([total < 0]), b
    )
    assert bits(float(column[0])) == bits(exact.to_float(total, b))


@given(totals)
def test_to_float_is_within_one_rounding_of_the_exact_value(total: int) -> None:
    # One rounding of hi * 2**64 + lo: at most one ulp from the correctly rounded value.
    got, best = exact.to_float(total, 0), float(total)
    assert got == best or abs(got - best) <= abs(np.spacing(best))
    assert (got < 0) == (total < 0) or total == 0 or got == 0 == best


@given(finite)
def test_fixed_point_in_python_equals_duckdb(x: float) -> None:
    con = duckdb.connect()
    sql = f"SELECT {exact.fixed_sql('?', exact.SUM_BITS)}"
    assert con.execute(sql, [x]).fetchone()[0] == exact.fixed(x, exact.SUM_BITS)


def test_fixed_point_refuses_what_it_cannot_hold() -> None:
    for bad in (2.0**63, float("inf"), float("nan")):
        with pytest.raises(exact.ExactRangeError):
            exact.fixed(bad, exact.SUM_BITS)


@given(
    st.one_of(st.integers(min_value=-(2**62), max_value=2**62), st.text(max_size=8), st.booleans())
)
def test_hll_register_in_python_equals_duckdb(value: object) -> None:
    con = duckdb.connect()
    idx, rank = exact.hll_register_sql("v")
    typ = (
        "BOOLEAN" if isinstance(value, bool) else "BIGINT" if isinstance(value, int) else "VARCHAR"
    )
    got = con.execute(f"SELECT {idx}, {rank} FROM (SELECT ?::{typ} AS v)", [value]).fetchone()
    assert tuple(got) == exact.hll_register(value)


def test_hll_md5_is_the_first_eight_bytes_little_endian() -> None:
    digest = hashlib.md5(b"abc").digest()
    h = int.from_bytes(digest[:8], "little")
    assert exact.hll_register("abc")[0] == h >> exact.HLL_LOW_BITS


def test_hll_estimates_are_close_to_the_truth() -> None:
    for n in (1, 10, 1000, 50_000):
        registers: dict[int, int] = {}
        for i in range(n):
            idx, rank = exact.hll_register(i)
            registers[idx] = max(registers.get(idx, 0), rank)
        est = exact.hll_estimate(*exact.hll_sums(registers))
        assert abs(est - n) <= max(1, 0.05 * n), (n, est)
        z, zeros = exact.hll_sums(registers)
        hi, lo = z >> 64, z & (2**64 - 1)
        col = exact.hll_estimate_array(
            np.array([hi], np.int64), np.array([lo], np.uint64), np.array([zeros])
        )
        assert int(col[0]) == est


SLOTS = [
    Slot("count", None, None, 0),
    Slot("count", "x", None, 64),
    Slot("sum", "x", None, 64),
    Slot("mean", "x", None, 64),
    Slot("stddev", "x", None, 64),
    Slot("min", "x", None, 64),
    Slot("max", "x", None, 64),
    Slot("first", "x", None, 64),
    Slot("last", "x", None, 64),
    Slot("last_n", "x", 3, 64),
    Slot("count_distinct", "x", None, 64),
    Slot("approx_count_distinct", "x", None, 0),
]

values = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=50),  # event time
        st.integers(min_value=0, max_value=5),  # created time
        st.one_of(st.none(), st.integers(min_value=-100, max_value=100).map(float)),
    ),
    max_size=20,
)


@settings(max_examples=200)
@given(values, st.randoms(use_true_random=False))
def test_partial_aggregates_merge_to_the_same_value_in_any_order(
    events: list[tuple[int, int, float | None]], rnd: random.Random
) -> None:
    for slot in SLOTS:
        if slot.function == "approx_count_distinct":
            events = [(t, c, None if v is None else int(v)) for t, c, v in events]  # type: ignore[misc]
        states = [event_state(slot, v, t, c) for t, c, v in events]
        out = Output("o", 0, 1, slot.function, None)  # type: ignore[arg-type]

        def fold(items: list, slot: Slot = slot, out: Output = out) -> object:
            acc = None
            for s in items:
                acc = merge(slot, acc, s)
            return finalize(out, slot, acc)

        shuffled = list(states)
        rnd.shuffle(shuffled)
        a, b = fold(states), fold(shuffled)
        if slot.function in ("first", "last", "last_n") and len(
            {(t, c) for t, c, _ in events}
        ) < len(events):
            continue  # equal (time, created) pairs: the value breaks the tie, both agree anyway
        if isinstance(a, float):
            assert bits(a) == bits(b)  # type: ignore[arg-type]
        else:
            assert a == b, slot


def _view(hop: int | None) -> FeatureView:
    from datetime import timedelta

    user = Entity(name="user", join_keys=["user_id"])
    src = FileSource(name="s", path="x.parquet")
    return FeatureView(
        name="v",
        entities=[user],
        source=src,
        schema=[Field(name="x", dtype="Float64")],
        aggregations=[
            Aggregation(function="count", window=timedelta(microseconds=100)),
            Aggregation(column="x", function="sum", window=timedelta(microseconds=100)),
        ],
        hop=None if hop is None else timedelta(microseconds=hop),
    )


def test_window_start_rounds_down_to_the_hop_from_the_epoch() -> None:
    assert window_start(1000, 100, None) == 900
    assert window_start(1007, 100, 10) == 900
    assert window_start(1000, 100, 30) == 900
    assert window_start(-5, 10, 10) == -20  # floor, not truncation, before 1970


@pytest.mark.parametrize("hop", [None, 10])
def test_records_compact_closed_buckets_and_forget_the_past(hop: int | None) -> None:
    plan = AggregatePlan.of(_view(hop))
    events = [Event(t, t, None, (1.0,)) for t in (101, 105, 111, 150, 199)]
    rec = apply_events(plan, None, events, now_us=200)
    assert read_values(plan, rec, 200)["count_100us"] == 5
    # Later, early events leave the window: (115, 215] without a hop; with a hop of 10 the
    # start rounds down to 110 and the compacted bucket (100, 110] leaves whole.
    assert read_values(plan, rec, 215)["count_100us"] == (2 if hop is None else 3)
    assert read_values(plan, rec, 215)["x_sum_100us"] == (2.0 if hop is None else 3.0)
    # Writing long after drops what no window can reach.
    rec2 = apply_events(plan, rec, [], now_us=10_000)
    assert rec2 is None
