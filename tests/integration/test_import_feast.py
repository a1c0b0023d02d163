"""``parity import-feast`` on real Feast repos: ``feast init``'s and a shop with push sources
and on-demand views. After the import ``parity apply`` is clean, both readers (Feast's
parsing and the static one) write the same repo, and ``get_historical_features`` on Parity
equals Feast's (its DuckDB offline store) on the same entity frame, row for row, for every
feature, on-demand ones included.

Where Feast 0.67 differs: a ``singleton=True`` python-mode on-demand view fails offline in
Feast (its ``PythonTransformation.transform_arrow`` ignores ``singleton`` and hands the
function whole columns as lists); there Parity's documented rule (one row per call) is
asserted instead. Feast's DuckDB point-in-time join agrees with Parity's on time equality,
the ttl boundary (both inclusive), created-time ties and null created times: the edge rows
below check it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from feast_repos import (
    BIN,
    FEAST,
    HOUR,
    REDIS_DB,
    T0,
    US,
    feast_init,
    run,
    shop_entities,
    shop_repo,
    write_files,
)
from parity.store import FeatureStore

PARITY = str(BIN / "parity")


def import_feast(path: Path, out: Path, *flags: str, code: int = 0) -> str:
    done = subprocess.run(
        [PARITY, "import-feast", str(path), "--out", str(out), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "250", "PATH": str(BIN)},
    )
    assert done.returncode == code, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def apply_is_clean(repo: Path) -> None:
    """``parity apply`` registers the repo and ``parity plan`` then has nothing to do."""
    applied = run([PARITY, "apply"], cwd=repo)
    assert "Created" in applied.stdout
    planned = run([PARITY, "plan"], cwd=repo)
    assert "No changes" in planned.stdout, planned.stdout


def repo_text(repo: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(repo.iterdir()) if p.is_file()}


def feast_historical(repo: Path, entities: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    from feast import FeatureStore as FeastStore

    # Feast's DuckDB store reads a relative source path from the working folder.
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(repo)
        return (
            FeastStore(repo_path=str(repo))
            .get_historical_features(entity_df=entities, features=features)
            .to_df()
        )


def assert_same_rows(
    feast: pd.DataFrame, parity: pd.DataFrame, keys: list[str], features: list[str]
):
    """Row for row, sorted by entity and time; exact unless the two dtypes differ."""
    f = feast.sort_values(keys, kind="stable").reset_index(drop=True)
    p = parity.sort_values(keys, kind="stable").reset_index(drop=True)
    assert len(f) == len(p)
    for k in keys:
        assert (f[k] == p[k]).all(), k
    for name in features:
        a, b = f[name], p[name]
        if a.dtype == b.dtype and a.dtype.kind == "f":
            same = (a.isna() & b.isna()) | (a == b)
        elif a.dtype.kind == "f" or b.dtype.kind == "f":
            x, y = a.astype("float64"), b.astype("float64")
            same = (x.isna() & y.isna()) | np.isclose(x, y, rtol=1e-6, atol=0)
        else:
            same = pd.Series(
                [(pd.isna(u) and pd.isna(v)) or u == v for u, v in zip(a, b, strict=True)]
            )
        bad = ~same.to_numpy()
        assert not bad.any(), (
            f"{name}: {int(bad.sum())} rows differ:\n"
            + pd.concat(
                [f.loc[bad, [*keys, name]], p.loc[bad, [name]].add_suffix("_parity")], axis=1
            )
            .head(10)
            .to_string()
        )


# -- the repo `feast init` makes ------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = feast_init(tmp_path_factory.mktemp("feast"))
    run([FEAST, "apply"], cwd=repo)
    return repo


@pytest.fixture(scope="module")
def demo_imported(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "demo_parity"
    import_feast(demo, out)
    apply_is_clean(out)
    return out


DEMO_FEATURES = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:avg_daily_trips",
    "driver_hourly_stats:driver_config",
    "transformed_conv_rate:conv_rate_plus_val1",
    "transformed_conv_rate:conv_rate_plus_val2",
]


def test_the_feast_init_repo_converts_and_applies_clean(demo: Path, demo_imported: Path):
    store = FeatureStore(demo_imported)
    try:
        view = store.get_feature_view("driver_hourly_stats")
        assert view.ttl == pd.Timedelta(days=1)
        assert view.tags == {"team": "driver_performance"}
        assert [(f.name, f.dtype.name) for f in view.schema] == [
            ("conv_rate", "Float32"),
            ("acc_rate", "Float32"),
            ("avg_daily_trips", "Int64"),
            ("driver_config", "String"),  # Feast's Json, kept as its text
        ]
        source = store.get_data_source("driver_hourly_stats_source")
        assert Path(source.path) == demo / "data" / "driver_stats.parquet"
        assert source.created_timestamp_field == "created"
        fresh = store.get_data_source("driver_stats_push_source")
        assert fresh.source_type == "push" and fresh.batch_source.name == source.name
        service = store.get_feature_service("driver_activity_v1")
        assert [p.to_spec() for p in service.features] == [
            {"view": "driver_hourly_stats", "features": ["conv_rate"]},
            {"view": "transformed_conv_rate", "features": None},
        ]
    finally:
        store.close()
    report = (demo_imported / "IMPORT_REPORT.md").read_text()
    assert "| feature_view | driver_quality_labels | not converted | label views" in report
    assert "feature 'driver_metadata' left out: Feast type Map" in report
    assert "feature 'driver_profile' left out: Feast type Struct" in report
    config = yaml.safe_load((demo_imported / "parity.yaml").read_text())
    assert config["online_store"] == {"type": "sqlite", "path": "data/online_store.db"}
    assert config["offline_store"] == {"type": "duckdb"}


def test_the_static_reader_writes_the_same_repo_as_feasts(
    demo: Path, demo_imported: Path, tmp_path
):
    static = tmp_path / "static"
    out = import_feast(demo, static, "--no-feast")
    assert "read statically" in out
    assert repo_text(static) == repo_text(demo_imported)


def test_historical_features_equal_feasts_on_the_feast_init_repo(demo: Path, demo_imported: Path):
    rows = pd.read_parquet(demo / "data" / "driver_stats.parquet")
    rng = np.random.default_rng(11)
    n = 400
    picked = rows.sample(n, replace=True, random_state=5).reset_index(drop=True)
    shift = pd.to_timedelta(rng.integers(-3 * 3600, 3 * 3600, n), unit="s")
    entities = pd.DataFrame(
        {
            "driver_id": np.where(rng.random(n) < 0.05, 9999, picked["driver_id"]),
            # half exactly at a source row's time, half shifted (some past the 1-day ttl)
            "event_timestamp": np.where(
                rng.random(n) < 0.5,
                picked["event_timestamp"],
                picked["event_timestamp"] + shift * 10,
            ),
            "val_to_add": rng.integers(0, 10, n),
            "val_to_add_2": rng.integers(0, 10, n),
        }
    )
    entities["event_timestamp"] = pd.to_datetime(entities["event_timestamp"], utc=True)
    feast = feast_historical(demo, entities, DEMO_FEATURES)
    store = FeatureStore(demo_imported)
    try:
        parity = store.get_historical_features(entities, DEMO_FEATURES).to_pandas()
    finally:
        store.close()
    names = [f.split(":")[1] for f in DEMO_FEATURES]
    assert parity["conv_rate"].notna().sum() > n // 2  # the join found rows
    keys = ["driver_id", "event_timestamp", "val_to_add", "val_to_add_2"]
    assert_same_rows(feast, parity, keys, names)


# -- a repo with push sources and on-demand views ---------------------------------------------


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    """The shop repo, applied by Feast, and its import, applied by Parity. Its online store is
    the local Redis (database REDIS_DB): applying connects to it and writes no keys."""
    repo = shop_repo(tmp_path_factory.mktemp("feast") / "shop")
    run([FEAST, "apply"], cwd=repo)
    out = tmp_path_factory.mktemp("imported") / "shop_parity"
    import_feast(repo, out)
    apply_is_clean(out)
    return repo, out


SHOP_FEATURES = [
    "customer_stats:spend",
    "customer_stats:visits",
    "customer_stats:segment",
    "customer_stats:active",
    "customer_profile:tier_score",
    "spend_ratio:spend_per_visit",
    "spend_ratio:share",
    "weighted:weighted_visits",
]


def test_the_shop_repo_converts_push_sources_and_on_demand_views(shop):
    _, out = shop
    config = yaml.safe_load((out / "parity.yaml").read_text())
    assert config["online_store"] == {"type": "redis", "url": f"redis://127.0.0.1:6379/{REDIS_DB}"}
    store = FeatureStore(out)
    try:
        stats = store.get_feature_view("customer_stats")
        assert stats.source_name == "customer_stats_push"
        assert stats.ttl == pd.Timedelta(hours=2)
        assert (
            stats.owner == "growth@example.com" and stats.description == "Hourly customer activity."
        )
        assert stats.feature_names == ["spend", "visits", "segment", "active"]  # no join key
        assert store.get_feature_view("customer_profile").ttl is None  # Feast's ttl 0: none
        assert store.get_feature_view("customer_profile").online is False
        push = store.get_data_source("customer_stats_push")
        assert push.batch_source.field_mapping == {"spend_raw": "spend"}
        assert push.created_timestamp_field == "created"
        assert store.get_entity("customer").dtype.name == "Int64"
        odfvs = store.catalog().objects["on_demand_feature_view"].values()
        modes = {v.name: v.mode for v in odfvs}  # type: ignore[attr-defined]
        # Feast's batch python mode runs through a pandas adapter; singleton is Parity's python
        assert modes == {"spend_ratio": "pandas", "weighted": "pandas", "big_spender": "python"}
    finally:
        store.close()
    code = (out / "on_demand.py").read_text()
    assert "def weighted(inputs: dict) -> dict:\n    return {" in code  # carried over as written
    assert (out / "IMPORT_REPORT.md").read_text().endswith("Everything was converted.\n")


def test_the_static_reader_writes_the_same_shop_repo(shop, tmp_path: Path):
    feast_repo, out = shop
    static = tmp_path / "static"
    import_feast(feast_repo, static, "--no-feast")
    assert repo_text(static) == repo_text(out)


def test_historical_features_equal_feasts_on_the_shop_repo(shop):
    feast_repo, out = shop
    entities = shop_entities()
    feast = feast_historical(feast_repo, entities, SHOP_FEATURES)
    store = FeatureStore(out)
    try:
        parity = store.get_historical_features(entities, SHOP_FEATURES).to_pandas()
    finally:
        store.close()
    keys = ["customer_id", "event_timestamp", "amount"]
    assert_same_rows(feast, parity, keys, [f.split(":")[1] for f in SHOP_FEATURES])
    # The edge rows, by Parity's rule (both stores agree on them, checked just above).
    edge = parity.iloc[:8]
    spend = edge["spend"].tolist()
    assert np.isnan(spend[0])  # before customer 1's first row
    assert spend[1] == 2.0  # exactly at the row's time; the tie goes to the later created
    assert spend[2] == 2.0  # exactly ttl (2 h) after it: still inside
    assert np.isnan(spend[3])  # 1 µs past the ttl
    assert spend[4] == 6.0  # a null created time loses the tie
    assert spend[5] == 10.0 and np.isnan(spend[6]) and np.isnan(spend[7])


def test_a_singleton_python_view_follows_parity_rule_where_feast_fails_offline(shop):
    feast_repo, out = shop
    entities = shop_entities()
    with pytest.raises(TypeError, match="not supported between instances of 'list'"):
        feast_historical(feast_repo, entities, ["big_spender:big_spender"])
    store = FeatureStore(out)
    try:
        got = store.get_historical_features(
            entities, ["customer_stats:spend", "big_spender:big_spender"]
        ).to_pandas()
    finally:
        store.close()
    expected = [
        bool(pd.notna(s) and s + a > 100.0)
        for s, a in zip(got["spend"], got["amount"], strict=True)
    ]
    assert got["big_spender"].tolist() == expected
    assert 0 < sum(expected) < len(expected)


# -- what does not convert ----------------------------------------------------------------

STREAMING = {
    "feature_store.yaml": """\
        project: streaming
        registry:
          registry_type: sql
          path: postgresql://feast:feast@db.internal:5432/feast
        provider: gcp
        online_store:
          type: dynamodb
          region: us-west-2
        offline_store:
          type: bigquery
        batch_engine:
          type: spark.engine
    """,
    "repo.py": """\
        from datetime import timedelta

        from feast import BigQuerySource, Entity, FeatureView, Field, FileSource, KafkaSource
        from feast.data_format import JsonFormat
        from feast.stream_feature_view import stream_feature_view
        from feast.types import Float32, Int64, Map

        driver = Entity(name="driver", join_keys=["driver_id"])

        trips = BigQuerySource(name="trips", table="project.dataset.trips",
                               timestamp_field="ts")
        local = FileSource(name="local", path="data/local.parquet", timestamp_field="ts")

        events = KafkaSource(
            name="events",
            kafka_bootstrap_servers="broker:9092",
            topic="events",
            timestamp_field="ts",
            batch_source=local,
            message_format=JsonFormat(schema_json="driver_id integer, speed double"),
        )

        speed_view = FeatureView(name="speed_view", entities=[driver], source=events,
                                 schema=[Field(name="speed", dtype=Float32)])
        speed_view = FeatureView(name="speed_view", entities=[driver], source=events,
                                 schema=[Field(name="speed", dtype=Float32)])
        trip_stats = FeatureView(name="trip_stats", entities=[driver], source=trips,
                                 schema=[Field(name="trips", dtype=Int64)])
        local_stats = FeatureView(name="local_stats", entities=[driver], source=local,
                                  ttl=timedelta(days=3),
                                  schema=[Field(name="speed", dtype=Float32),
                                          Field(name="extras", dtype=Map)])

        @stream_feature_view(entities=[driver], ttl=timedelta(hours=1), mode="python",
                             schema=[Field(name="speed", dtype=Float32)], timestamp_field="ts",
                             online=True, source=events)
        def driver_speed(df):
            return df
    """,
}


@pytest.mark.parametrize("flags", [(), ("--no-feast",)], ids=["feast", "static"])
def test_what_cannot_be_converted_is_listed_and_the_rest_applies(tmp_path: Path, flags):
    feast_repo = write_files(tmp_path / "streaming", STREAMING)
    pd.DataFrame(
        {"driver_id": [1], "ts": [T0], "speed": np.array([1.5], dtype="float32")}
    ).to_parquet(write_files(feast_repo / "data", {}) / "local.parquet")
    out = tmp_path / "out"
    shown = import_feast(feast_repo, out, *flags)
    report = (out / "IMPORT_REPORT.md").read_text()
    for row in (
        "| source | trips | not converted | BigQuery tables: Parity reads Parquet or CSV",
        "| source | events | not converted | Kafka topics",
        "| feature_view | trip_stats | not converted | its source 'trips' is not converted |",
        "| feature_view | driver_speed | not converted | stream feature views",
        "| feature_view | speed_view | not converted | its source 'events' is not converted |",
        "| feature_view | local_stats | partly converted | feature 'extras' left out",
        "| feature_store.yaml | online_store | partly converted | type 'dynamodb'",
        "| feature_store.yaml | offline_store | partly converted | type 'bigquery'",
        "| feature_store.yaml | batch_engine | partly converted | 'spark.engine'",
        "| feature_store.yaml | registry | partly converted | the SQL registry's URL is kept",
    ):
        assert row in report, f"{row!r} not in\n{report}"
    for name in ("trips", "events", "trip_stats", "driver_speed", "Kafka topics"):
        assert name in shown  # the table printed
    config = yaml.safe_load((out / "parity.yaml").read_text())
    assert config["registry"] == {"url": "postgresql://feast:feast@db.internal:5432/feast"}
    assert config["online_store"] == {"type": "sqlite", "path": "data/online.db"}
    # With a registry we can reach: the converted part applies cleanly.
    config["registry"] = "data/registry.db"
    (out / "parity.yaml").write_text(yaml.safe_dump(config))
    apply_is_clean(out)
    store = FeatureStore(out)
    try:
        assert [v.name for v in store.list_feature_views()] == ["local_stats"]
    finally:
        store.close()


def test_nothing_convertible_writes_nothing_and_exits_1(tmp_path: Path):
    feast_repo = write_files(
        tmp_path / "bq",
        {
            "feature_store.yaml": "project: bq\nregistry: data/registry.db\nprovider: local\n",
            "repo.py": """\
                from feast import BigQuerySource, Entity, FeatureView, Field
                from feast.types import Int64

                driver = Entity(name="driver", join_keys=["driver_id"])
                trips = BigQuerySource(name="trips", table="p.d.trips", timestamp_field="ts")
                trip_stats = FeatureView(name="trip_stats", entities=[driver], source=trips,
                                         schema=[Field(name="trips", dtype=Int64)])
            """,
        },
    )
    out = tmp_path / "out"
    shown = import_feast(feast_repo, out, "--no-feast", code=1)
    assert "nothing to write: no feature view" in shown
    assert "BigQuery tables" in shown
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bq"]  # no temporary folder left behind


def test_refuses_what_is_not_a_feast_repo_or_a_used_output(demo: Path, tmp_path: Path):
    project = demo.parent
    shown = import_feast(project, tmp_path / "a", code=1)
    assert f"{project}: not a Feast repo: there is no feature_store.yaml in it" in shown
    assert f"found one in {demo}" in shown
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    shown = import_feast(demo, used, code=1)
    assert "the folder exists and is not empty" in shown
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
    broken = write_files(
        tmp_path / "broken",
        {"feature_store.yaml": "project: broken\n", "defs.py": "x = (\n"},
    )
    shown = import_feast(broken, tmp_path / "b", "--no-feast", code=1)
    assert "defs.py: cannot be parsed" in shown
    assert not (tmp_path / "b").exists()


def test_an_empty_output_folder_is_used(demo: Path, tmp_path: Path):
    out = tmp_path / "empty"
    out.mkdir()
    import_feast(demo, out, "--no-feast")
    assert (out / "features.yaml").is_file() and (out / "on_demand.py").is_file()
    assert HOUR and US  # the shared edge constants stay in use for the shop
