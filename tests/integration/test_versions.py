"""Semantic versions, impact analysis and rollback on a scaffolded repo, through the Python
API and the CLI: a breaking change to a served view is refused and allowed with the
override (which the history keeps), old versions are described, diffed and rolled back,
and models are consumers impact analysis reaches."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cli_utils import parity
from parity import FeatureService, Field, Float64, Model, on_demand_feature_view
from parity.errors import DefinitionError, ObjectNotFoundError, ValidationError
from parity.store import FeatureStore

VIEW = "driver_hourly_stats"
SERVICE = "driver_activity"  # reads conv_rate and avg_daily_trips of VIEW


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    parity("init", "shop", "--dir", path)
    parity("apply", "--repo", path, "--author", "alice")
    return path


def edited(store: FeatureStore, name: str, **changes: object):
    return store.get_feature_view(name).model_copy(update=changes)


def schema_without(store: FeatureStore, name: str, feature: str) -> list[Field]:
    return [f for f in store.get_feature_view(name).schema if f.name != feature]


def test_a_breaking_change_to_a_served_view_is_refused_then_allowed_and_recorded(repo: Path):
    with FeatureStore(repo) as store:
        shorter = edited(store, VIEW, ttl=timedelta(hours=2))
        planned = store.plan([shorter])
        (impact,) = planned.impacts
        assert (impact.kind, impact.name, impact.bump) == ("feature_view", VIEW, "major")
        assert [(r.kind, r.name, r.breaking) for r in impact.reached] == [
            ("feature_service", SERVICE, True)
        ]
        assert planned.breaking == (impact,)
        with pytest.raises(ValidationError, match=f"feature_service '{SERVICE}'") as refused:
            store.apply([shorter])
        assert "--allow-breaking" in str(refused.value)
        assert [r.version for r in store.history(VIEW)] == ["1.0.0"], "refused: nothing written"
        done = store.apply([shorter], allow_breaking=True)
        assert done.revision == 2 and done.breaking
        last = store.history(VIEW)[-1]
        assert (last.version, last.number, last.bump) == ("2.0.0", 2, "major")
        assert last.note == f"applied with --allow-breaking; breaks feature_service:{SERVICE}"


def test_a_compatible_change_is_applied_and_bumps_minor_or_patch(repo: Path):
    with FeatureStore(repo) as store:
        store.apply([edited(store, VIEW, ttl=timedelta(days=3))])  # longer: minor
        store.apply([edited(store, VIEW, description="How active a driver is.")])  # patch
        assert [(r.version, r.bump) for r in store.history(VIEW)] == [
            ("1.0.0", ""),
            ("1.1.0", "minor"),
            ("1.1.1", "patch"),
        ]
        assert all(not r.note for r in store.history(VIEW))


def test_removing_a_feature_breaks_only_the_services_that_read_it(repo: Path):
    with FeatureStore(repo) as store:
        # acc_rate is not in the service, which selects conv_rate and avg_daily_trips
        planned = store.plan([edited(store, VIEW, schema_=schema_without(store, VIEW, "acc_rate"))])
        (impact,) = planned.impacts
        assert impact.bump == "major"
        assert [(r.name, r.breaking) for r in impact.reached] == [(SERVICE, False)]
        assert not planned.breaking
        store.apply([edited(store, VIEW, schema_=schema_without(store, VIEW, "acc_rate"))])
        assert store.history(VIEW)[-1].version == "2.0.0"
        # a service taking every feature of the view is broken by a removed one
        everything = FeatureService(name="all_stats", features=[VIEW])
        store.apply([everything])
        fewer = edited(store, VIEW, schema_=schema_without(store, VIEW, "conv_rate"))
        with pytest.raises(ValidationError) as refused:
            store.apply([fewer, FeatureService(name=SERVICE, features=[f"{VIEW}:avg_daily_trips"])])
        assert "feature_service 'all_stats'" in str(refused.value)
        assert f"feature_service '{SERVICE}'" not in str(refused.value), "it no longer reads it"


def test_models_are_consumers_impact_reaches(repo: Path):
    (repo / "models.yaml").write_text(
        f"kind: model\nname: ranker\nfeatures: {SERVICE}\nowner: ranking-ml\n"
        "description: ranks drivers\n"
    )
    parity("apply", "--repo", repo)
    with FeatureStore(repo) as store:
        assert store.get_model("ranker") == Model(
            "ranker", features=SERVICE, owner="ranking-ml", description="ranks drivers"
        )
        planned = store.plan([edited(store, VIEW, ttl=timedelta(hours=1))])
        reached = {(r.kind, r.name): r.breaking for r in planned.impacts[0].reached}
        assert reached == {("feature_service", SERVICE): True, ("model", "ranker"): True}
        with pytest.raises(ValidationError, match="unknown feature service 'nope'"):
            store.apply([Model("other", features="nope")])
    out = parity("plan", "--repo", repo).stdout
    assert "No changes" in out


def test_cli_plan_apply_history_describe_diff_and_rollback(repo: Path):
    features = repo / "features.py"
    text = features.read_text()
    features.write_text(text.replace("ttl=timedelta(days=1)", "ttl=timedelta(hours=2)"))
    plan = parity("plan", "--repo", repo).stdout
    assert f"~ feature_view {VIEW} (major)" in plan
    assert f"-> feature service {SERVICE}: BREAKS" in plan
    assert "--allow-breaking" in plan
    refused = parity("apply", "--repo", repo, code=1)
    assert f"breaks feature_service '{SERVICE}'" in refused.stderr
    parity("apply", "--repo", repo, "--allow-breaking", "--author", "bob")
    history = parity("history", VIEW, "--repo", repo).stdout
    rows = [line.split()[1:4] for line in history.splitlines() if line.startswith("version ")]
    assert rows == [["1.0.0", "new", "create"], ["2.0.0", "major", "update"]]
    assert f"note: applied with --allow-breaking; breaks feature_service:{SERVICE}" in history
    old = parity("describe", f"{VIEW}@1.0.0", "--repo", repo).stdout
    assert old.splitlines()[0] == f"feature_view {VIEW}@1.0.0"
    assert "ttl: 1d" in old
    diff = parity("diff", VIEW, "1.0.0", "2.0.0", "--repo", repo).stdout
    assert "ttl: 1d -> 2h" in diff and "[major: ttl shortened]" in diff
    back = parity("rollback", VIEW, "--to", "1.0.0", "--repo", repo).stdout
    assert "now at version 2.1.0 (rollback to 1.0.0)" in back
    with FeatureStore(repo) as store:
        assert store.get_feature_view(VIEW).ttl == timedelta(days=1)
        last = store.history(VIEW)[-1]
        assert (last.version, last.note, last.number) == ("2.1.0", "rollback to 1.0.0", 3)
    unknown = parity("describe", f"{VIEW}@9.9.9", "--repo", repo, code=1)
    assert "its versions are 1.0.0, 2.0.0, 2.1.0" in unknown.stderr
    bad = parity("diff", VIEW, "1.0", "2.0.0", "--repo", repo, code=1)
    assert "'1.0' is not a version" in bad.stderr


def test_rollback_to_a_version_whose_dependencies_are_gone_is_refused(repo: Path):
    with FeatureStore(repo) as store:
        old_source = store.get_data_source("driver_stats_source")
        first = old_source.model_copy(update={"name": "rating_source_a"})
        second = old_source.model_copy(update={"name": "rating_source_b"})
        store.apply([first, second])
        view = store.get_feature_view("driver_rating")
        store.apply([view.model_copy(update={"source": "rating_source_a"})], allow_breaking=True)
        store.apply([view.model_copy(update={"source": "rating_source_b"})], allow_breaking=True)
        assert [r.version for r in store.history("driver_rating")] == ["1.0.0", "2.0.0", "3.0.0"]
        kept = [o for o in store.catalog(fresh=True).all() if o.name != "rating_source_a"]
        store.apply(kept, delete_missing=True)  # rating_source_a is gone
        revision = store.registry.revision()
        with pytest.raises(ValidationError, match="unknown source 'rating_source_a'"):
            store.rollback("driver_rating", "2.0.0", allow_breaking=True)
        assert store.registry.revision() == revision, "refused: nothing written"
        with pytest.raises(
            ObjectNotFoundError, match=r"its versions are 1\.0\.0, 2\.0\.0, 3\.0\.0"
        ):
            store.rollback("driver_rating", "9.0.0")
        with pytest.raises(DefinitionError, match="not a version"):
            store.rollback("driver_rating", "latest")
        store.rollback("driver_rating", "1.0.0", allow_breaking=True)  # its source is there
        assert store.get_feature_view("driver_rating").source_name == "driver_stats_source"


def test_an_on_demand_views_code_is_kept_and_diffed(repo: Path):
    @on_demand_feature_view(
        sources=[f"{VIEW}:conv_rate"], schema=[Field(name="doubled", dtype=Float64)]
    )
    def doubled(inputs):
        return {"doubled": inputs["conv_rate"] * 2}

    @on_demand_feature_view(
        sources=[f"{VIEW}:conv_rate"], schema=[Field(name="doubled", dtype=Float64)]
    )
    def doubled_v2(inputs):
        return {"doubled": inputs["conv_rate"] * 3}

    with FeatureStore(repo) as store:
        store.apply([doubled])
        second = doubled_v2.model_copy(update={"name": "doubled"})
        store.apply([second])
        records = store.history("doubled")
        assert [r.version for r in records] == ["1.0.0", "2.0.0"]  # a new function body
        assert records[0].code is not None and "* 2" in records[0].code
        found = store.diff("doubled", "1.0.0", "2.0.0")
        assert '-    return {"doubled": inputs["conv_rate"] * 2}' in found.code_diff
        assert '+    return {"doubled": inputs["conv_rate"] * 3}' in found.code_diff
        assert [c.path for c in found.changes] == ["udf.qualname", "udf.source_hash"]
