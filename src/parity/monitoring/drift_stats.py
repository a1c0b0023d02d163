"""The drift statistics, as pure functions over numpy arrays (``parity.monitoring.drift``
reads the values and judges the figures).

Numbers (``numeric``): the two-sample Kolmogorov-Smirnov test, PSI and the Jensen-Shannon
distance over equal-frequency bins of the baseline, and the Wasserstein distance.
Categories (``categorical``, strings and bools): chi-squared over the 2 x k table of counts,
PSI and the Jensen-Shannon distance over the categories. Nulls are never passed in.

The definitions, exactly (tests compute them by hand):

- **bins**: the interior edges are the baseline's quantiles at ``i / bins`` for
  ``i = 1 .. bins - 1`` (numpy's default linear interpolation), equal edges merged; a value
  ``x`` falls in bin ``searchsorted(edges, x, side="right")``, so a value equal to an edge
  goes to the bin above it and values beyond the outer edges go to the outer bins. A
  baseline with few distinct values gets fewer bins (one when it is constant).
- **PSI** = ``sum((c - b) * ln(c / b))`` over the bins (or categories), where ``b`` and ``c``
  are the shares of the baseline and current values (count / n); a share of 0 (an empty bin
  on that side) is replaced by ``epsilon``. Other shares are not changed and nothing is
  renormalised.
- **JS**: ``scipy.spatial.distance.jensenshannon(b, c, base=2)`` over the raw shares (the
  distance, in [0, 1]; empty bins need no smoothing).
- **chi-squared**: ``scipy.stats.chi2_contingency`` of the 2 x k table (baseline row,
  current row) over the union of the categories seen on either side (so no column is all
  zero); one category in all gives statistic 0, p-value 1.
- **KS**: equal to ``scipy.stats.ks_2samp(baseline, current)`` (``method="auto"``): SciPy
  itself when both samples have at most 10 000 values (its exact p-value); above that the
  same statistic and SciPy's asymptotic p-value ``kstwo.sf(D, round(m n / (m + n)))``,
  whose costly branch (2 x Smirnov's one-sided tail, an O(n) sum that takes SciPy most of a
  second at n = 500 000) is evaluated here vectorised in log space (Stirling's series,
  relative error about 1e-12).
- **Wasserstein**: the first Wasserstein distance between the two empirical distributions,
  ``scipy.stats.wasserstein_distance(baseline, current)``, computed from the sorted values
  the KS test already made.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

__all__ = [
    "Figure",
    "assign_bins",
    "bin_edges",
    "categorical",
    "chi2",
    "js",
    "ks",
    "numeric",
    "psi",
    "shares",
]

EXACT_MAX_N = 10_000
"""Up to this many values on each side SciPy's own ks_2samp (its exact p-value) is used."""


@dataclass(frozen=True)
class Figure:
    """One test's outcome: its statistic and, for KS and chi-squared, the p-value."""

    test: str
    statistic: float
    p_value: float | None = None


# -- bins and shares --------------------------------------------------------------------------


def bin_edges(baseline_sorted: np.ndarray, bins: int) -> np.ndarray:
    """The interior edges of ``bins`` equal-frequency bins of the (sorted) baseline, equal
    edges merged: at most ``bins - 1`` increasing values."""
    n = baseline_sorted.size
    q = np.arange(1, bins) / bins
    # numpy's linear quantile on sorted data, by index (np.quantile would partition again).
    pos = q * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    lo_v = baseline_sorted[lo]
    edges = lo_v + (baseline_sorted[hi] - lo_v) * frac
    return np.unique(edges)


def assign_bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The count of ``values`` in each of the ``len(edges) + 1`` bins."""
    idx = np.searchsorted(edges, values, side="right")
    return np.bincount(idx, minlength=edges.size + 1)


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts as shares of their total."""
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def psi(baseline_counts: np.ndarray, current_counts: np.ndarray, epsilon: float) -> float:
    """The population stability index of two count vectors over the same bins (a share of 0
    becomes ``epsilon``)."""
    b = shares(baseline_counts)
    c = shares(current_counts)
    b = np.where(baseline_counts == 0, epsilon, b)
    c = np.where(current_counts == 0, epsilon, c)
    return float(np.sum((c - b) * np.log(c / b)))


def js(baseline_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """The Jensen-Shannon distance (base 2) of two count vectors over the same bins."""
    if baseline_counts.size <= 1:
        return 0.0
    return float(jensenshannon(shares(baseline_counts), shares(current_counts), base=2))


def chi2(baseline_counts: np.ndarray, current_counts: np.ndarray) -> Figure:
    """Chi-squared test of homogeneity of the 2 x k table; no column may be all zero."""
    if baseline_counts.size <= 1:
        return Figure("chi2", 0.0, 1.0)
    res = stats.chi2_contingency(np.vstack([baseline_counts, current_counts]))
    return Figure("chi2", float(res.statistic), float(res.pvalue))


# -- Kolmogorov-Smirnov -----------------------------------------------------------------------


def ks(baseline: np.ndarray, current: np.ndarray) -> Figure:
    """The two-sample KS test, equal to ``scipy.stats.ks_2samp`` (see the module notes)."""
    stat, p, _ = _ks_sorted(np.sort(baseline), np.sort(current))
    return Figure("ks", stat, p)


_Merged = tuple[np.ndarray, np.ndarray]
"""The two samples' values merged and sorted, and F_a - F_b at each of them."""


def _ks_sorted(a: np.ndarray, b: np.ndarray) -> tuple[float, float, _Merged]:
    """(D, p-value, the merged values and ECDF differences) of two sorted samples."""
    n1, n2 = a.size, b.size
    merged, diff = _ecdf_diff(a, b)
    if max(n1, n2) <= EXACT_MAX_N:
        with warnings.catch_warnings():
            # SciPy falls back from exact to asymp on its own and says so; the figure is its.
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.ks_2samp(a, b, method="auto")
        return float(res.statistic), float(res.pvalue), (merged, diff)
    d = float(max(np.clip(-diff.min(), 0, 1), diff.max()))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = int(np.round(m * n / (m + n)))
    return d, _kstwo_sf(d, en), (merged, diff)


def _ecdf_diff(a: np.ndarray, b: np.ndarray) -> _Merged:
    """Both sorted samples merged, and ``F_a(x) - F_b(x)`` at each merged value ``x``."""
    # Two sorted runs: the stable sort (timsort for floats) merges them in linear time.
    merged = np.sort(np.concatenate([a, b]), kind="stable")
    # Sorted queries: searchsorted walks both arrays in order (3x faster than unsorted ones).
    cdf1 = np.searchsorted(a, merged, side="right") / a.size
    cdf2 = np.searchsorted(b, merged, side="right") / b.size
    return merged, cdf1 - cdf2


def _kstwo_sf(x: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(x, n)``; its 2 x Smirnov branch computed vectorised."""
    t = n * x
    nx2 = t * x
    if n > 140 and 1.0 < t < n - 1 and nx2 >= 2.2:
        if x < 0.5 and nx2 >= 370.0:
            return 0.0
        return float(np.clip(2.0 * _smirnov(n, x), 0.0, 1.0))
    return float(stats.kstwo.sf(x, n))


def _stirlerr(k: np.ndarray) -> np.ndarray:
    """``lgamma(k + 1) - (k ln k - k + ln(2 pi k) / 2)`` for integers k >= 1."""
    k = k.astype(np.float64)
    out = np.empty_like(k)
    small = k <= 15
    ks_ = k[small]
    out[small] = special.gammaln(ks_ + 1) - (
        ks_ * np.log(ks_) - ks_ + 0.5 * np.log(2 * np.pi * ks_)
    )
    kb = k[~small]
    k2 = kb * kb
    out[~small] = (1 / 12 - (1 / 360 - (1 / 1260 - 1 / (1680 * k2)) / k2) / k2) / kb
    return out


def _smirnov(n: int, e: float) -> float:
    """P(D+_n > e), Birnbaum-Tingey: ``e * sum_v C(n,v) (e + v/n)^(v-1) (1 - e - v/n)^(n-v)``
    for v = 0 .. floor(n (1 - e)). Each term in log space with ln C(n, v) by Stirling's
    series, so no two large logs are subtracted (lgamma(n + 1) alone would lose 1e-9)."""
    nn = math.floor(n * (1.0 - e))
    en = e * n
    v = np.arange(1, min(nn, n - 1) + 1, dtype=np.float64)
    # floor(n (1 - e)) may round one past the last term with 1 - e - v/n >= 0: drop it.
    v = v[n - v >= en]
    w = n - v
    # ln C(n,v) + (v-1) ln(e + v/n) + (n-v) ln(1 - e - v/n), regrouped around v/n and w/n.
    with np.errstate(divide="ignore"):  # 1 - e - v/n = 0 at v = n (1 - e): a zero term
        logs = (
            v * np.log1p(en / v)
            + w * np.log1p(-en / w)
            - np.log(e + v / n)
            + 0.5 * np.log(n / (2 * np.pi * v * w))
            + _stirlerr(np.array([n]))[0]
            - _stirlerr(v)
            - _stirlerr(w)
        )
    # v = 0: e^-1 (1 - e)^n; v = n (only when e = 0, excluded by the caller): 0.
    extra = [-math.log(e) + n * math.log1p(-e)]
    if nn >= n:  # pragma: no cover - e == 0
        extra.append(0.0)
    all_logs = np.concatenate([logs, np.array(extra)])
    top = all_logs.max()
    return float(e * math.exp(top) * np.exp(all_logs - top).sum())


# -- per kind ---------------------------------------------------------------------------------


def numeric(
    baseline: np.ndarray, current: np.ndarray, *, bins: int, epsilon: float
) -> tuple[list[Figure], dict[str, np.ndarray]]:
    """KS, PSI, JS and Wasserstein of two float64 samples without nulls or NaNs, and the
    bins used (``edges``, ``baseline``/``current`` counts)."""
    a = np.sort(baseline)
    b = np.sort(current)
    d, p, merged = _ks_sorted(a, b)
    edges = bin_edges(a, bins)
    bc = assign_bins(a, edges)
    cc = assign_bins(b, edges)
    figures = [
        Figure("ks", d, p),
        Figure("psi", psi(bc, cc, epsilon)),
        Figure("js", js(bc, cc)),
        Figure("wasserstein", _wasserstein(merged)),
    ]
    return figures, {"edges": edges, "baseline": bc, "current": cc}


def _wasserstein(merged: _Merged) -> float:
    """W1 of two samples: the integral of |F_a - F_b| between consecutive merged values."""
    values, diff = merged
    return float(np.sum(np.abs(diff[:-1]) * np.diff(values)))


def categorical(
    baseline_counts: np.ndarray, current_counts: np.ndarray, *, epsilon: float
) -> list[Figure]:
    """Chi-squared, PSI and JS of two count vectors over the same categories."""
    return [
        chi2(baseline_counts, current_counts),
        Figure("psi", psi(baseline_counts, current_counts, epsilon)),
        Figure("js", js(baseline_counts, current_counts)),
    ]
