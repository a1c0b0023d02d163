"""On-demand feature views end to end on a scaffolded repo: apply, historical, online, the
registry's record of the function, dependencies, and the CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from parity import (
    FeatureStore,
    ObjectNotFoundError,
    RequestDataError,
    RetrievalError,
    TransformationError,
    ValidationError,
)
from parity.cli import app
from parity.cli.scaffold import ENTITIES_FILE, create_repo
from parity.definitions import on_demand

NOW = datetime(2024, 1, 3, 23, 30, tzinfo=UTC)  # just after the sample data made at NOW ends
ODFV_FILE = '''
from parity import FeatureService, Field, Float64, Int64, RequestSource, String
from parity import on_demand_feature_view
from features import driver_hourly_stats

req = RequestSource(name="req", schema=[Field(name="val_to_add", dtype=Int64)])


@on_demand_feature_view(
    sources=[driver_hourly_stats[["conv_rate"]], req],
    schema=[Field(name="conv_plus_val", dtype=Float64)],
)
def conv_plus(row):
    """conv_rate plus the request's value."""
    if row["conv_rate"] is None:
        return {"conv_plus_val": None}
    return {"conv_plus_val": row["conv_rate"] + row["val_to_add"]}  # BODY


@on_demand_feature_view(
    sources=[conv_plus, driver_hourly_stats[["acc_rate"]]],
    schema=[Field(name="score", dtype=Float64), Field(name="label", dtype=String)],
    mode="pandas",
)
def scored(df):
    out = df.copy()
    out["score"] = df["conv_plus_val"] * 2 + df["acc_rate"]
    out["label"] = (out["score"] > 3).map({True: "high", False: "low"})
    return out


@on_demand_feature_view(
    sources=[RequestSource(name="req_only", schema=[Field(name="amount", dtype=Float64)])],
    schema=[Field(name="amount_cents", dtype=Int64)],
)
def cents(row):
    return {"amount_cents": None if row["amount"] is None else round(row["amount"] * 100)}


od_service = FeatureService(
    name="od_service", features=[scored, "conv_plus:conv_plus_val", driver_hourly_stats[["avg_daily_trips"]]]
)
'''
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    create_repo("od", root, now=NOW)
    (root / "odfv.py").write_text(ODFV_FILE)
    with FeatureStore(root) as store:
        store.apply()
    return root


@pytest.fixture
def store(repo: Path):
    with FeatureStore(repo, clock=lambda: NOW) as s:
        yield s


def entity_frame(repo: Path) -> pd.DataFrame:
    df = pd.read_parquet(repo / ENTITIES_FILE)
    df["val_to_add"] = range(len(df))
    df["amount"] = [1.25 * i for i in range(len(df))]
    return df


def test_the_facade_lists_and_gets_on_demand_views(store):
    assert [v.name for v in store.list_on_demand_feature_views()] == [
        "cents",
        "conv_plus",
        "scored",
    ]
    assert store.get_on_demand_feature_view("scored").mode == "pandas"
    assert "scored" not in [v.name for v in store.list_feature_views()]
    with pytest.raises(ObjectNotFoundError, match="conv_plus"):
        store.get_on_demand_feature_view("conv_pluss")


def test_historical_runs_the_function_on_every_row(repo, store):
    ents = entity_frame(repo)
    got = store.get_historical_features(
        ents, ["conv_plus:conv_plus_val", "driver_hourly_stats:conv_rate", "scored:score"]
    ).to_pandas()
    assert list(got.columns) == [*ents.columns, "conv_plus_val", "conv_rate", "score"]
    plain = store.get_historical_features(
        ents, ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"]
    ).to_pandas()
    expected = plain["conv_rate"] + ents["val_to_add"]
    pd.testing.assert_series_equal(got["conv_plus_val"], expected, check_names=False)
    pd.testing.assert_series_equal(
        got["score"], expected * 2 + plain["acc_rate"], check_names=False
    )
    assert got["conv_plus_val"].isna().sum() == 2  # the scaffold's two rows without features


def test_request_only_view_needs_no_timestamp_or_fetch(repo, store):
    ents = pd.DataFrame({"amount": [1.0, 2.5, 3.0]})
    got = store.get_historical_features(ents, ["cents:amount_cents"]).to_arrow()
    assert got.column("amount_cents").to_pylist() == [100, 250, 300]
    assert str(got.schema.field("amount_cents").type) == "int64"
    # request data is a value in every row, for training as for serving: a null is refused
    with pytest.raises(RequestDataError, match="'amount' is null in entity row 2"):
        store.get_historical_features(
            pd.DataFrame({"amount": [1.0, 2.5, None]}), ["cents:amount_cents"]
        ).to_arrow()
    online = store.get_online_features(["cents:amount_cents"], entities={"amount": [0.5]})
    assert online.to_dict() == {"amount": [0.5], "amount_cents": [50]}


def test_online_equals_historical_at_the_same_instant(repo, store):
    store.materialize(NOW - timedelta(days=5), NOW)
    drivers = [1001, 1002, 1003, 9999]
    vals = [1, -2, 30, 4]
    feats = [
        "scored:score",
        "scored:label",
        "conv_plus:conv_plus_val",
        "driver_hourly_stats:acc_rate",
    ]
    online = store.get_online_features(feats, entities={"driver_id": drivers, "val_to_add": vals})
    ents = pd.DataFrame({"driver_id": drivers, "event_timestamp": [NOW] * 4, "val_to_add": vals})
    offline = store.get_historical_features(ents, feats).to_arrow()
    on = online.to_arrow()
    for name in ("score", "label", "conv_plus_val", "acc_rate"):
        assert on.column(name).to_pylist() == offline.column(name).to_pylist(), name
        assert on.schema.field(name).type == offline.schema.field(name).type
    assert online.statuses["score"] == ["present", "present", "present", "missing"]
    stamps = online.event_timestamps
    assert stamps["score"][0] == stamps["acc_rate"][0] is not None
    assert stamps["score"][3] is None
    assert online.to_dict()["val_to_add"] == vals  # request data is echoed like entities


def test_services_and_full_feature_names(repo, store):
    ents = entity_frame(repo)
    got = store.get_historical_features(ents, "od_service", full_feature_names=True).to_pandas()
    assert list(got.columns)[len(ents.columns) :] == [
        "scored__score",
        "scored__label",
        "conv_plus__conv_plus_val",
        "driver_hourly_stats__avg_daily_trips",
    ]
    short = store.get_historical_features(ents, ["scored", "conv_plus:*"]).to_pandas()
    assert list(short.columns)[len(ents.columns) :] == ["score", "label", "conv_plus_val"]
    online = store.get_online_features(
        store.get_feature_service("od_service"),
        entities={"driver_id": [1001], "val_to_add": [1]},
    )
    assert set(online.to_dict()) >= {"score", "label", "conv_plus_val", "avg_daily_trips"}


def test_bad_requests_name_the_view_and_the_field(repo, store):
    ents = entity_frame(repo).drop(columns=["val_to_add"])
    with pytest.raises(RetrievalError, match=r"conv_plus.*val_to_add.*req"):
        store.get_historical_features(ents, ["conv_plus:conv_plus_val"]).to_arrow()
    with pytest.raises(RetrievalError, match=r"val_to_add.*declared Int64"):
        store.get_online_features(
            ["conv_plus:conv_plus_val"], entities={"driver_id": [1001], "val_to_add": ["x"]}
        )
    with pytest.raises(RetrievalError, match="has no feature 'nope'"):
        store.get_online_features(["conv_plus:nope"], entities={"driver_id": [1001]})
    ents = entity_frame(repo).rename(columns={"val_to_add": "conv_plus_val"})
    ents["val_to_add"] = 1
    with pytest.raises(RetrievalError, match="overwritten"):
        store.get_historical_features(ents, ["conv_plus:conv_plus_val"]).to_arrow()


def test_a_failing_function_names_the_view(repo):
    text = ODFV_FILE.replace("# BODY", "\n    raise ZeroDivisionError('boom')")
    text = text.replace('    return {"conv_plus_val": row["conv_rate"] + row["val_to_add"]}', "")
    (repo / "odfv.py").write_text(
        text.replace(
            '    if row["conv_rate"] is None:\n        return {"conv_plus_val": None}\n', ""
        )
    )
    with FeatureStore(repo) as store:
        store.apply(allow_breaking=True)  # a new body breaks the service reading it
        with pytest.raises(
            TransformationError, match=r"conv_plus.*odfv.py:conv_plus.*ZeroDivisionError: boom"
        ):
            store.get_online_features(
                ["conv_plus:conv_plus_val"], entities={"driver_id": [1001], "val_to_add": [1]}
            )


def test_registry_records_location_and_hash_and_versions_changes(repo):
    with FeatureStore(repo) as store:
        spec = store.registry.get("on_demand_feature_view", "conv_plus").to_spec()
        assert spec["udf"]["file"] == "odfv.py"
        assert spec["udf"]["module"] == "odfv"
        assert spec["udf"]["qualname"] == "conv_plus"
        assert len(spec["udf"]["source_hash"]) == 64
        assert spec["sources"] == [{"view": "driver_hourly_stats", "features": ["conv_rate"]}]
        assert spec["request_sources"][0]["name"] == "req"
        # comments and formatting do not make a new version; a changed body does
        (repo / "odfv.py").write_text(ODFV_FILE.replace("# BODY", "# a comment  "))
        assert not store.apply().has_changes
        (repo / "odfv.py").write_text(
            ODFV_FILE.replace('+ row["val_to_add"]', '- row["val_to_add"]')
        )
        with pytest.raises(ValidationError, match="feature_service 'od_service'"):
            store.apply()  # a new function body is a breaking change for the service
        done = store.apply(allow_breaking=True)
        assert [(c.name, c.action) for c in done.of("update")] == [("conv_plus", "update")]
        history = store.history("conv_plus")
        assert [h.number for h in history] == [1, 2]
        assert [h.version for h in history] == ["1.0.0", "2.0.0"]
        assert [fc.path for fc in history[-1].diff] == ["udf.source_hash"]


def test_a_fresh_process_loads_the_function_from_the_repo_file(repo, store):
    on_demand._KNOWN.clear()
    with FeatureStore(repo, clock=lambda: NOW) as fresh:
        got = fresh.get_online_features(["cents:amount_cents"], entities={"amount": [0.07]})
        assert got.to_dict()["amount_cents"] == [7]
    script = (
        "from parity import FeatureStore\n"
        f"s = FeatureStore({str(repo)!r})\n"
        "print(s.get_online_features(['cents:amount_cents'], entities={'amount': [2.0]}).to_dict())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert "'amount_cents': [200]" in out.stdout


def test_a_changed_or_missing_function_is_a_clear_error(repo):
    on_demand._KNOWN.clear()
    (repo / "odfv.py").write_text(ODFV_FILE.replace("* 100", "* 1000"))
    with (
        FeatureStore(repo) as store,
        pytest.raises(
            TransformationError,
            match=r"'cents'.*odfv.py:cents changed since it was applied.*parity apply",
        ),
    ):
        store.get_online_features(["cents:amount_cents"], entities={"amount": [1.0]})
    (repo / "odfv.py").unlink()
    on_demand._KNOWN.clear()
    with FeatureStore(repo) as store, pytest.raises(TransformationError, match=r"'cents'.*odfv.py"):
        store.get_online_features(["cents:amount_cents"], entities={"amount": [1.0]})


def test_apply_refuses_a_cycle_naming_it(repo):
    (repo / "cycle.py").write_text(
        "from parity import Field, Float64, on_demand_feature_view\n"
        "@on_demand_feature_view(sources=['b'], schema=[Field(name='x', dtype=Float64)])\n"
        "def a(row):\n    return {'x': row['y']}\n"
        "@on_demand_feature_view(sources=['a'], schema=[Field(name='y', dtype=Float64)])\n"
        "def b(row):\n    return {'y': row['x']}\n"
    )
    with FeatureStore(repo) as store, pytest.raises(ValidationError, match=r"cycle: a -> b -> a"):
        store.apply()


def test_apply_refuses_deleting_a_view_others_depend_on(repo):
    with FeatureStore(repo) as store:
        # as read back from the registry: views name their sources, so nothing pulls them in
        objs = [o for o in store.registry.list() if o.name != "conv_plus"]
        with pytest.raises(ValidationError) as err:
            store.apply(objs, delete_missing=True)
        assert (
            "on-demand feature view 'scored': depends on 'conv_plus', which this apply would "
            "delete; delete or change the dependent view too"
        ) in err.value.problems
        assert store.registry.get("on_demand_feature_view", "conv_plus")


def test_cli_shows_the_new_kind(repo):
    out = runner.invoke(app, ["list", "on-demand-views", "--repo", str(repo)])
    assert out.exit_code == 0, out.output
    assert "On-demand feature views (3)" in out.output
    assert "odfv.py:conv_plus" in out.output
    out = runner.invoke(app, ["describe", "scored", "--repo", str(repo)])
    assert out.exit_code == 0, out.output
    assert "on_demand_feature_view scored" in out.output
    assert (
        "depends on: on-demand feature view conv_plus, feature view driver_hourly_stats"
        in out.output
    )
    assert "used by: feature service od_service" in out.output
    out = runner.invoke(app, ["describe", "driver_hourly_stats", "--repo", str(repo)])
    assert "used by: on-demand feature view conv_plus, on-demand feature view scored" in out.output
    (repo / "odfv.py").write_text(ODFV_FILE.replace("* 100", "* 10"))
    out = runner.invoke(app, ["plan", "--repo", str(repo)])
    assert "~ on_demand_feature_view cents" in out.output
    assert "udf.source_hash" in out.output


def test_yaml_cannot_define_one(repo):
    (repo / "more.yaml").write_text("kind: on_demand_feature_view\nname: x\n")
    with FeatureStore(repo) as store, pytest.raises(Exception, match="Python-only"):
        store.plan()
