"""Freshness windows: percentiles exact to their bucket, merging, minutes dropping out, JSON."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity.streams.freshness import BUCKETS_S, FreshnessWindow

T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)

# Latencies around and on every bound, negatives (clock skew) and beyond the last bound.
latency = st.one_of(
    st.floats(min_value=-10.0, max_value=1000.0, allow_nan=False),
    st.sampled_from(BUCKETS_S[:-1]),
    st.floats(min_value=0.0, max_value=0.01, allow_nan=False),
)
samples = st.lists(latency, min_size=1, max_size=300)
quantiles = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=5)
# (seconds after T0, latencies) per batch, within one 15-minute window
batches = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=14 * 60.0), samples), min_size=1, max_size=6
)


def bucket_of(value: float) -> tuple[float, float]:
    """The bounds (lower, upper) of the bucket ``value`` counts in; negatives in the first."""
    for i, upper in enumerate(BUCKETS_S):
        if value <= upper:
            return (0.0 if i == 0 else BUCKETS_S[i - 1], upper)
    raise AssertionError(value)


def true_quantile(values: list[float], q: float) -> float:
    """The nearest-rank quantile: the ceil(q * n)-th smallest sample (the smallest for q=0)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


@given(samples, quantiles)
def test_a_percentile_is_inside_the_bucket_of_the_true_quantile(values, qs):
    window = FreshnessWindow()
    window.add(np.array(values), T0 + 1)
    got = window.percentiles(qs, now_s=T0 + 30)
    for q in qs:
        lower, upper = bucket_of(true_quantile(values, q))
        assert got[q] is not None
        if math.isinf(upper):  # above the last bound: read as that bound
            assert got[q] == lower
        else:
            assert lower <= got[q] <= upper, (q, got[q], lower, upper)


@given(batches, quantiles)
def test_percentiles_over_batches_in_several_minutes_are_inside_the_bucket(parts, qs):
    window = FreshnessWindow()
    for offset, values in parts:
        window.add(np.array(values), T0 + offset)
    every = [v for _, values in parts for v in values]
    assert window.count(minutes=15, now_s=T0 + 14 * 60) == len(every)
    got = window.percentiles(qs, minutes=15, now_s=T0 + 14 * 60)
    for q in qs:
        lower, upper = bucket_of(true_quantile(every, q))
        assert lower <= got[q] <= (lower if math.isinf(upper) else upper)


@given(batches, batches)
def test_merging_two_windows_is_adding_both_sample_sets(first, second):
    a, b, both = FreshnessWindow(), FreshnessWindow(), FreshnessWindow()
    for offset, values in first:
        a.add(np.array(values), T0 + offset)
        both.add(np.array(values), T0 + offset)
    for offset, values in second:
        b.add(np.array(values), T0 + offset)
        both.add(np.array(values), T0 + offset)
    assert a.merge(b) == both == b.merge(a)
    assert a.merge(b).percentiles(minutes=15, now_s=T0 + 900) == both.percentiles(
        minutes=15, now_s=T0 + 900
    )


@given(st.lists(st.tuples(st.integers(0, 40), samples), min_size=1, max_size=8))
def test_minutes_older_than_the_window_drop_out_whatever_the_order(parts):
    """Batches over 40 minutes, added out of order: the window holds exactly the samples of
    its 5 minutes up to the newest minute seen."""
    window = FreshnessWindow(minutes=5)
    for minute, values in parts:
        window.add(np.array(values), T0 + minute * 60 + 7)
    newest = max(m for m, _ in parts)
    kept = [v for m, values in parts if m > newest - 5 for v in values]
    assert sorted(int(k) for k in window.to_json()["counts"]) == sorted(
        {int(T0 // 60) + m for m, _ in parts if m > newest - 5}
    )
    assert window.count(minutes=5, now_s=T0 + newest * 60) == len(kept)
    expect = FreshnessWindow(minutes=5)
    for minute, values in parts:
        if minute > newest - 5:
            expect.add(np.array(values), T0 + minute * 60)
    assert window == expect


@given(batches)
def test_json_round_trips(parts):
    window = FreshnessWindow()
    for offset, values in parts:
        window.add(np.array(values), T0 + offset)
    data = json.loads(json.dumps(window.to_json()))
    again = FreshnessWindow.from_json(data)
    assert again == window
    assert again.percentiles(minutes=15, now_s=T0 + 900) == window.percentiles(
        minutes=15, now_s=T0 + 900
    )


def test_the_last_minutes_are_the_minute_of_now_and_those_before_it():
    window = FreshnessWindow()
    window.add(np.full(10, 0.3), T0 + 5)  # minute 0
    window.add(np.full(5, 7.0), T0 + 4 * 60 + 59)  # minute 4
    window.add(np.full(2, 50.0), T0 + 6 * 60)  # minute 6
    at = T0 + 6 * 60 + 30
    assert window.count(minutes=1, now_s=at) == 2
    assert window.count(minutes=2, now_s=at) == 2
    assert window.count(minutes=3, now_s=at) == 7
    assert window.count(minutes=7, now_s=at) == 17
    # rank 1 of 2 in (30, 60]: halfway through the bucket
    assert window.percentiles((0.5,), minutes=1, now_s=at) == {0.5: 45.0}
    assert window.percentiles((0.5,), minutes=1, now_s=at + 60) == {0.5: None}
    # a reader whose clock is behind the runner's still sees the newest minute
    assert window.count(minutes=1, now_s=T0 + 5 * 60) == 2


def test_negative_latencies_count_in_the_first_bucket_and_nan_is_refused():
    window = FreshnessWindow()
    window.add(np.array([-3.0, -0.5, 0.0]), T0)
    assert window.to_json()["counts"] == {str(int(T0 // 60)): {"0.001": 3}}
    p = window.percentiles((0.0, 1.0), now_s=T0)
    assert 0.0 <= p[0.0] <= p[1.0] <= 0.001
    with pytest.raises(ValueError, match="1 latencies are NaN"):
        window.add(np.array([0.1, np.nan]), T0)
    assert window.count(minutes=1, now_s=T0) == 3  # nothing of the refused batch counted
    window.add(np.array([]), T0 + 3600)  # an empty batch changes nothing
    assert window.count(minutes=1, now_s=T0) == 3


def test_slow_events_read_as_the_last_bound():
    window = FreshnessWindow()
    window.add(np.array([1.0, 400.0, 9000.0, math.inf]), T0)
    assert window.to_json()["counts"][str(int(T0 // 60))] == {"1": 1, "+Inf": 3}
    assert window.percentiles((0.9,), now_s=T0) == {0.9: 300.0}


def test_bad_arguments_and_json_are_refused_by_name():
    with pytest.raises(ValueError, match="minutes must be a whole number >= 1"):
        FreshnessWindow(minutes=0)
    window = FreshnessWindow(minutes=5)
    with pytest.raises(ValueError, match="last 6 minutes of a window that keeps 5"):
        window.count(minutes=6, now_s=T0)
    with pytest.raises(ValueError, match=r"quantile 1\.5 is not between 0 and 1"):
        window.percentiles((1.5,), now_s=T0)
    with pytest.raises(ValueError, match="now_s must be seconds since the epoch"):
        window.add(np.array([1.0]), math.nan)
    with pytest.raises(ValueError, match=r"counts\['1'\] has bucket '0\.07'"):
        FreshnessWindow.from_json({"minutes": 5, "counts": {"1": {"0.07": 1}}})
    with pytest.raises(ValueError, match=r"counts\['1'\]\['1'\] = -2 is not a count"):
        FreshnessWindow.from_json({"minutes": 5, "counts": {"1": {"1": -2}}})
    with pytest.raises(ValueError, match="counts key 'soon' is not a minute"):
        FreshnessWindow.from_json({"counts": {"soon": {}}})
    with pytest.raises(ValueError, match="expected an object, got list"):
        FreshnessWindow.from_json([])  # type: ignore[arg-type]


def test_merging_keeps_the_longer_span():
    short, long = FreshnessWindow(minutes=2), FreshnessWindow(minutes=10)
    short.add(np.array([0.1]), T0 + 9 * 60)
    long.add(np.array([0.1]), T0)
    merged = short.merge(long)
    assert merged.minutes == 10 and merged.count(minutes=10, now_s=T0 + 9 * 60) == 2


def test_buckets_are_log_spaced_up_to_five_minutes_then_everything_slower():
    finite = BUCKETS_S[:-1]
    assert BUCKETS_S[-1] == math.inf and finite[0] == 0.001 and finite[-1] == 300.0
    assert 16 <= len(finite) <= 20 and list(finite) == sorted(set(finite))
    ratios = [b / a for a, b in itertools.pairwise(finite)]
    assert all(1.4 < r <= 2.5 for r in ratios)


def test_adding_a_large_batch_is_vectorised():
    window = FreshnessWindow()
    values = np.random.default_rng(7).exponential(0.5, 200_000)
    window.add(values, T0)
    assert window.count(minutes=1, now_s=T0) == 200_000
    p = window.percentiles((0.5,), now_s=T0)[0.5]
    assert p is not None and 0.2 <= p <= 0.5  # the median of Exp(mean 0.5) is 0.35
