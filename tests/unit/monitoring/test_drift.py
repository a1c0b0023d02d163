"""store.drift over a real repo (DuckDB offline, SQLite online): a drift that must fire, one
that must not, thresholds, stored results, named baselines, the online side and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from parity import Timestamp
from parity.errors import MonitoringError, ObjectNotFoundError
from parity.monitoring import baselines
from parity.registry.monitoring import MonitorRecords
from parity.store import FeatureStore
from repo_utils import write_parquet, write_repo

T0 = datetime(2024, 1, 1, tzinfo=UTC)
N = 2000  # rows per period: Jan (baseline), Feb (same distribution), Mar (shifted)
KEYS = 50
NOW = datetime(2024, 4, 1, tzinfo=UTC)

DEFS = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64, String, Bool
from parity import Timestamp, DriftPolicy

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
src = FileSource(name="src", path="data/src.parquet", timestamp_field="ts")
stats_view = FeatureView(
    name="stats", entities=[user], source=src, ttl=timedelta(days=400),
    drift=DriftPolicy(psi=0.25, js=0.3),
    schema=[
        Field(name="x", dtype=Float64),
        Field(name="n", dtype=Int64, drift=DriftPolicy(ks_pvalue=0.05, psi=None, js=None)),
        Field(name="city", dtype=String),
        Field(name="flag", dtype=Bool),
        Field(name="seen", dtype=Timestamp),
    ],
)
other = FeatureView(
    name="other", entities=[user], source=src, ttl=timedelta(days=400),
    schema=[Field(name="x", dtype=Float64)],
)
"""


def _period(rng, month: int, shift: bool) -> dict:
    start = datetime(2024, month, 1, tzinfo=UTC)
    cities = np.array(["Lisbon", "Porto", "Faro"])
    city_p = [0.2, 0.3, 0.5] if shift else [0.5, 0.3, 0.2]
    return {
        "user_id": rng.integers(0, KEYS, N),
        "ts": [start + timedelta(minutes=20 * i) for i in range(N)],
        "x": rng.normal(1.0 if shift else 0.0, 1.0, N),
        "n": rng.poisson(9 if shift else 5, N),
        "city": cities[rng.choice(3, N, p=city_p)],
        "flag": rng.random(N) < (0.7 if shift else 0.5),
        "seen": [start] * N,
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = write_repo(tmp_path_factory.mktemp("drift") / "repo", {"defs.py": DEFS})
    rng = np.random.default_rng(13)
    parts = [_period(rng, 1, False), _period(rng, 2, False), _period(rng, 3, True)]
    table = pa.concat_tables([pa.table(p) for p in parts])
    x = table.column("x").to_pylist()
    x[5] = None  # a null and a NaN in the baseline: left out
    x[6] = float("nan")
    table = table.set_column(table.schema.get_field_index("x"), "x", pa.array(x, pa.float64()))
    table = table.set_column(
        table.schema.get_field_index("ts"),
        "ts",
        table.column("ts").cast(pa.timestamp("us", tz="UTC")),
    )
    write_parquet(root / "data" / "src.parquet", table)
    with FeatureStore(root, clock=lambda: NOW) as s:
        s.apply()
        s.source_table = table  # the test's own copy of the data
        yield s


JAN = ("2024-01-01", "2024-01-31T23:59:59")
FEB = ("2024-02-01", "2024-02-29T23:59:59")
MAR = ("2024-03-01", "2024-03-31T23:59:59")


def _rows(result):
    return {(r["feature"], r["test"]): r for r in result.to_pylist()}


def test_a_shift_drifts_every_feature(store):
    result = store.drift("stats", JAN, MAR, save=False)
    assert sorted(result.drifted) == ["city", "flag", "n", "x"]
    rows = _rows(result)
    assert {t for f, t in rows if f == "x"} == {"ks", "psi", "js", "wasserstein"}
    assert {t for f, t in rows if f == "city"} == {"chi2", "psi", "js"}
    assert rows[("x", "ks")]["drifted"] and rows[("x", "psi")]["drifted"]
    assert rows[("city", "chi2")]["p_value"] < 1e-10
    assert result.summary["skipped"] == {"seen": f"type {Timestamp} has no drift tests"}


def test_the_same_distribution_does_not_drift(store):
    result = store.drift("stats", JAN, FEB, save=False)
    assert result.drifted == []
    assert not any(r["drifted"] for r in result.to_pylist())


def test_figures_equal_scipy_on_the_source_values(store):
    t = store.source_table
    us = t.column("ts").cast(pa.int64()).to_numpy()

    def values(col, lo, hi):
        a = np.asarray(t.column(col).to_pandas(), dtype=float)
        lo_us = int(datetime.fromisoformat(lo).replace(tzinfo=UTC).timestamp() * 1e6)
        hi_us = int(datetime.fromisoformat(hi).replace(tzinfo=UTC).timestamp() * 1e6)
        a = a[(us >= lo_us) & (us <= hi_us)]
        return a[np.isfinite(a)]

    rows = _rows(store.drift("stats", JAN, MAR, save=False))
    a, b = values("x", *JAN), values("x", *MAR)
    ref = stats.ks_2samp(a, b)
    assert rows[("x", "ks")]["statistic"] == pytest.approx(ref.statistic, abs=1e-12)
    assert rows[("x", "ks")]["p_value"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert rows[("x", "wasserstein")]["statistic"] == pytest.approx(
        stats.wasserstein_distance(a, b), rel=1e-9
    )
    assert rows[("x", "ks")]["baseline_rows"] == a.size == N - 2
    assert rows[("x", "ks")]["current_rows"] == N


def test_thresholds_field_over_view_over_defaults(store):
    rows = _rows(store.drift("stats", JAN, FEB, save=False))
    assert rows[("x", "psi")]["threshold"] == 0.25  # the view's
    assert rows[("x", "js")]["threshold"] == 0.3
    assert rows[("x", "ks")]["threshold"] == 0.01  # DriftPolicy's default, via the view's
    assert rows[("x", "wasserstein")]["threshold"] is None
    assert rows[("n", "ks")]["threshold"] == 0.05  # the field's own
    assert rows[("n", "psi")]["threshold"] is None and not rows[("n", "psi")]["drifted"]
    assert rows[("city", "chi2")]["threshold"] == 0.01


def test_results_are_kept_like_profiles(store):
    result = store.drift("stats", JAN, MAR, features=["x", "city"])
    kept = MonitorRecords(store.registry)
    record = kept.results("drift", "stats")[0]
    assert record.id == result.id and record.scope == "offline"
    assert record.summary["drifted"] == ["x", "city"]
    assert record.start == datetime(2024, 3, 1, tzinfo=UTC)
    assert kept.table(result.id).equals(result.table)


def test_named_baseline_gives_what_its_range_gives(store):
    saved = baselines.save_baseline(store, "jan", "stats", *JAN, replace=True)
    assert saved.rows == N and saved.features == ("x", "n", "city", "flag", "seen")
    by_name = store.drift("stats", "jan", MAR, save=False)
    by_range = store.drift("stats", JAN, MAR, save=False)
    assert by_name.table.equals(by_range.table)
    assert by_name.summary["baseline"]["name"] == "jan"
    assert [b.name for b in baselines.list_baselines(store)] == ["jan"]
    with pytest.raises(MonitoringError, match="'jan' exists"):
        baselines.save_baseline(store, "jan", "stats", *FEB)
    with pytest.raises(MonitoringError, match="holds feature view 'stats', not 'other'"):
        store.drift("other", "jan", MAR, save=False)


def test_the_online_side_reads_the_latest_value_per_key(store):
    store.materialize("2024-01-01", "2024-03-31T23:59:59")
    result = store.drift("stats", JAN, "online", features=["x", "city"], save=False)
    rows = _rows(result)
    assert rows[("x", "ks")]["current_rows"] == KEYS
    assert result.scope == "online" and result.summary["current"]["online"] is True
    # every key's latest row is in March: the online values are March's
    assert rows[("city", "chi2")]["p_value"] < 0.05


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: s.drift("nope", JAN, MAR), ObjectNotFoundError, "nope"),
        (lambda s: s.drift("stats", JAN, MAR, features=["zz"]), MonitoringError, "'zz'"),
        (lambda s: s.drift("stats", JAN, MAR, features=["seen"]), MonitoringError, "'seen'"),
        (lambda s: s.drift("stats", ("2024-02-01", "2024-01-01"), MAR), MonitoringError, "empty"),
        (lambda s: s.drift("stats", ("2020-01-01", "2020-02-01"), MAR), MonitoringError,
         "baseline of feature view 'stats' has no rows"),
        (lambda s: s.drift("stats", JAN, "2030-01-01.."), MonitoringError,
         "current side of feature view 'stats' has no rows"),
        (lambda s: s.drift("stats", "missing", MAR), MonitoringError, "no baseline named"),
        (lambda s: s.drift("stats", "online", MAR), MonitoringError, "only a current side"),
        (lambda s: s.drift("stats", JAN, "jan"), MonitoringError, "neither 'online'"),
        (lambda s: baselines.save_baseline(s, "../x", "stats", *JAN), MonitoringError, "name"),
        (lambda s: baselines.save_baseline(s, "e", "stats", "2020-01-01", "2020-01-02"),
         MonitoringError, "no rows"),
    ],
)  # fmt: skip
def test_bad_input_is_named_and_changes_nothing(store, call, error, match):
    kept = MonitorRecords(store.registry)
    before = len(kept.results("drift"))
    names = {b.name for b in baselines.list_baselines(store)}
    with pytest.raises(error, match=match):
        call(store)
    assert len(kept.results("drift")) == before
    assert {b.name for b in baselines.list_baselines(store)} == names
