"""The drift statistics against SciPy and against the documented formulas computed by hand."""

from __future__ import annotations

import bisect
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from parity.monitoring import drift_stats as ds
from parity.monitoring.drift import _category_counts

# -- by hand: the module's definitions in plain Python -------------------------------------------


def hand_edges(baseline: list[float], bins: int) -> list[float]:
    """Linear-interpolated quantiles at i / bins, equal ones merged."""
    xs = sorted(baseline)
    n = len(xs)
    edges = []
    for i in range(1, bins):
        pos = i / bins * (n - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, n - 1)
        edges.append(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))
    return sorted(set(edges))


def hand_counts(values: list[float], edges: list[float]) -> list[int]:
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect.bisect_right(edges, v)] += 1
    return counts


def hand_psi(b_counts: list[int], c_counts: list[int], eps: float) -> float:
    nb, nc = sum(b_counts), sum(c_counts)
    total = 0.0
    for b, c in zip(b_counts, c_counts, strict=True):
        pb = b / nb if b else eps
        pc = c / nc if c else eps
        total += (pc - pb) * math.log(pc / pb)
    return total


def figures(baseline, current, bins=10, eps=1e-4):
    out, binned = ds.numeric(
        np.asarray(baseline, float), np.asarray(current, float), bins=bins, epsilon=eps
    )
    return {f.test: f for f in out}, binned


# -- known answers ---------------------------------------------------------------------------


def test_identical_samples_show_no_drift():
    x = np.arange(1000.0)
    got, _ = figures(x, x)
    assert got["ks"].statistic == 0 and got["ks"].p_value == 1
    assert got["psi"].statistic == 0 and got["js"].statistic == 0
    assert got["wasserstein"].statistic == 0


def test_quartile_bins_and_psi_of_a_known_example():
    # 0..99 in 4 bins: edges 24.75, 49.5, 74.25, 25 values each.
    baseline = list(range(100))
    current = [10] * 50 + [60] * 30 + [90] * 20  # shares .5, 0, .3, .2
    got, binned = figures(baseline, current, bins=4)
    assert binned["edges"].tolist() == [24.75, 49.5, 74.25]
    assert binned["baseline"].tolist() == [25, 25, 25, 25]
    assert binned["current"].tolist() == [50, 0, 30, 20]
    eps = 1e-4
    expected = (
        (0.5 - 0.25) * math.log(0.5 / 0.25)
        + (eps - 0.25) * math.log(eps / 0.25)
        + (0.3 - 0.25) * math.log(0.3 / 0.25)
        + (0.2 - 0.25) * math.log(0.2 / 0.25)
    )
    assert got["psi"].statistic == pytest.approx(expected, rel=1e-12)
    assert got["js"].statistic == pytest.approx(
        jensenshannon([0.25] * 4, [0.5, 0, 0.3, 0.2], base=2), rel=1e-12
    )


def test_edge_values_go_up_and_outliers_to_the_outer_bins():
    edges = np.array([1.0, 2.0])
    assert ds.assign_bins(np.array([-1e9, 0.5, 1.0, 1.5, 2.0, 1e9]), edges).tolist() == [2, 2, 2]


def test_equal_edges_merge_so_a_constant_baseline_has_two_bins():
    got, binned = figures([5.0] * 100, [4.0] * 50 + [5.0] * 50, bins=10)
    assert binned["edges"].tolist() == [5.0]
    assert binned["baseline"].tolist() == [0, 100]
    assert binned["current"].tolist() == [50, 50]
    assert got["psi"].statistic == pytest.approx(hand_psi([0, 100], [50, 50], 1e-4), rel=1e-12)


def test_chi2_of_categories_against_scipy_with_a_category_on_one_side_only():
    base = pa.chunked_array([["a"] * 30 + ["b"] * 70 + [None] * 5])
    cur = pa.chunked_array([["b"] * 40 + ["c"] * 10 + ["a"] * 50])
    bc, cc = _category_counts(base, cur)
    cats = ["a", "b", "c"]  # union in order of first sight
    assert bc.tolist() == [30, 70, 0] and cc.tolist() == [50, 40, 10]
    got = {f.test: f for f in ds.categorical(bc, cc, epsilon=1e-4)}
    ref = stats.chi2_contingency([[30, 70, 0], [50, 40, 10]])
    assert got["chi2"].statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert got["chi2"].p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert got["psi"].statistic == pytest.approx(hand_psi([30, 70, 0], [50, 40, 10], 1e-4))
    assert len(cats) == bc.size


def test_one_category_in_all_is_no_drift():
    bc, cc = _category_counts(pa.chunked_array([[True] * 5]), pa.chunked_array([[True] * 9]))
    got = {f.test: f for f in ds.categorical(bc, cc, epsilon=1e-4)}
    assert (got["chi2"].statistic, got["chi2"].p_value) == (0.0, 1.0)
    assert got["psi"].statistic == 0 and got["js"].statistic == 0


def test_bool_categories_count_both_values():
    bc, cc = _category_counts(
        pa.chunked_array([[True, False, False]]), pa.chunked_array([[False, None]])
    )
    assert sorted(zip(bc.tolist(), cc.tolist(), strict=True)) == [(1, 0), (2, 1)]


# -- against SciPy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [(300, 500, 0.3), (10_000, 10_000, 0.02), (10_001, 30_000, 0.0), (50_000, 20_000, 0.05)],
)
def test_ks_and_wasserstein_equal_scipy(n1, n2, shift):
    rng = np.random.default_rng(n1 + n2)
    a = rng.normal(size=n1)
    b = rng.normal(shift, 1.0, size=n2)
    got, _ = figures(a, b)
    ref = stats.ks_2samp(a, b)
    assert got["ks"].statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert got["ks"].p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)
    assert got["wasserstein"].statistic == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def test_ks_with_ties_equals_scipy():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 20, size=40_000).astype(float)
    b = rng.integers(1, 21, size=25_000).astype(float)
    got = ds.ks(a, b)
    ref = stats.ks_2samp(a, b)
    assert got.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


# (n, z) pairs inside the branch under test: n * sqrt(z / n) < n - 1
_TAIL_POINTS = [
    (n, z)
    for n in (141, 1_500, 20_000, 500_000)
    for z in (2.2, 3.0, 8.0, 30.0, 200.0, 369.0)
    if n * math.sqrt(z / n) < n - 1
]


@pytest.mark.parametrize(("n", "z"), _TAIL_POINTS)
def test_smirnov_tail_equals_scipy(n, z):
    x = math.sqrt(z / n)
    assert ds._smirnov(n, x) == pytest.approx(special.smirnov(n, x), rel=1e-12)
    assert ds._kstwo_sf(x, n) == pytest.approx(stats.kstwo.sf(x, n), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("z", [0.05, 0.5, 1.5, 2.19, 400.0])
def test_kstwo_sf_outside_the_branch_is_scipys(z):
    n = 30_000
    x = math.sqrt(z / n)
    assert ds._kstwo_sf(x, n) == stats.kstwo.sf(x, n)


floats = st.floats(-1e6, 1e6, allow_nan=False)


@pytest.mark.filterwarnings("ignore:ks_2samp")
@given(
    st.lists(floats, min_size=1, max_size=60),
    st.lists(floats, min_size=1, max_size=60),
    st.integers(2, 12),
)
def test_psi_and_js_equal_the_hand_computation(baseline, current, bins):
    got, binned = figures(baseline, current, bins=bins)
    edges = hand_edges(baseline, bins)
    bc, cc = hand_counts(baseline, edges), hand_counts(current, edges)
    assert binned["edges"].tolist() == pytest.approx(edges, rel=1e-12, abs=1e-9)
    assert binned["baseline"].tolist() == bc and binned["current"].tolist() == cc
    assert got["psi"].statistic == pytest.approx(hand_psi(bc, cc, 1e-4), rel=1e-9, abs=1e-12)
    if len(bc) > 1:
        nb, nc = sum(bc), sum(cc)
        ref = jensenshannon([x / nb for x in bc], [x / nc for x in cc], base=2)
        assert got["js"].statistic == pytest.approx(ref, rel=1e-9, abs=1e-12)
    ref = stats.ks_2samp(baseline, current)
    assert got["ks"].statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert got["ks"].p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)
    assert got["psi"].statistic >= 0 and 0 <= got["js"].statistic <= 1
