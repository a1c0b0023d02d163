"""Impact analysis reaches training snapshots, on a scaffolded repo (``parity init``) with a
SQLite and a PostgreSQL registry: a breaking change to a view a snapshot holds (a removed
feature it holds, a shortened ttl) shows the snapshot as BREAKS in ``store.plan`` and in
``parity plan``; a compatible change shows it compatible; a change to a view it does not
hold does not reach it; a major change to the service it was made from breaks it; one held
through an on-demand view is reached through that view; and a broken snapshot alone never
makes ``apply`` refuse (nor is it noted as an override)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from test_discovery import POSTGRES_URL, configure, pg_schema  # noqa: F401 (a fixture)
from test_snapshots import ENTITIES, ON_DEMAND
from test_versions import SERVICE, VIEW, edited, schema_without

from cli_utils import parity
from parity import FeatureService, Field, Int64
from parity.registry.impact import SNAPSHOT, Impact
from parity.snapshots.lineage import KIND
from parity.store import FeatureStore

HELD = [f"{VIEW}:conv_rate", f"{VIEW}:avg_daily_trips", "driver_rating:driver_rating"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def repo(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The scaffold applied, with three snapshots: ``train_v1`` (HELD), ``train_acc``
    (``VIEW:acc_rate`` only) and ``served_v1`` (made from the service SERVICE)."""
    path = tmp_path / "shop"
    parity("init", "shop", "--dir", path)
    if request.param == "postgres":
        schema = request.getfixturevalue("pg_schema")
        configure(path, registry={"url": POSTGRES_URL, "schema": schema})
    parity("apply", "--repo", path)
    with FeatureStore(path) as store:
        backend = {"sqlite": "sqlite", "postgres": "postgresql"}[request.param]
        assert store.registry.url.get_backend_name() == backend
        entities = str(path / ENTITIES)
        store.create_snapshot("train_v1", entities, HELD)
        store.create_snapshot("train_acc", entities, [f"{VIEW}:acc_rate"])
        store.create_snapshot("served_v1", entities, store.get_feature_service(SERVICE))
    return path


def snapshots_reached(impact: Impact) -> dict[str, tuple[bool, str]]:
    return {r.name: (r.breaking, r.why) for r in impact.reached if r.kind == SNAPSHOT}


def digest(store: FeatureStore, name: str) -> str:
    return store.get_snapshot(name).digest[:12]


def test_the_kind_is_lineages():
    assert SNAPSHOT == KIND == "snapshot"


def test_a_removed_feature_breaks_the_snapshots_holding_it_and_apply_is_not_refused(repo: Path):
    with FeatureStore(repo) as store:
        assert {s.name for s in store.list_snapshots()} == {"train_v1", "train_acc", "served_v1"}
        fewer = edited(store, VIEW, schema_=schema_without(store, VIEW, "acc_rate"))
        planned = store.plan([fewer])
        (impact,) = planned.impacts
        assert impact.bump == "major"
        assert snapshots_reached(impact) == {
            "train_acc": (True, f"holds feature_view '{VIEW}':acc_rate, which breaks"),
            "train_v1": (False, ""),  # holds conv_rate and avg_daily_trips, not acc_rate
            "served_v1": (False, ""),
        }
        (acc,) = [r for r in impact.reached if r.name == "train_acc"]
        assert (acc.distance, acc.detail) == (1, digest(store, "train_acc"))
        assert [(r.kind, r.breaking) for r in impact.reached if r.kind != SNAPSHOT] == [
            ("feature_service", False)
        ]
        assert not impact.blocks and not planned.breaking, "a snapshot is no consumer"
        assert f"-> snapshot train_acc ({acc.detail}): BREAKS (holds" in planned.render()

        done = store.apply([fewer])  # not refused: only a snapshot breaks
        assert done.revision == 2
        (applied,) = done.impacts
        assert snapshots_reached(applied)["train_acc"][0] is True
        assert not store.history(VIEW)[-1].note, "no override to note"
        # the snapshot is made again from its revision's definitions, as before
        assert store.recreate_snapshot("train_acc").identical


def test_a_shortened_ttl_breaks_every_snapshot_holding_the_view_in_the_cli_plan(repo: Path):
    features = repo / "features.py"
    text = features.read_text()
    assert text.count("ttl=timedelta(days=1)") == 1
    features.write_text(text.replace("ttl=timedelta(days=1)", "ttl=timedelta(hours=2)"))
    with FeatureStore(repo) as store:
        (impact,) = store.plan().impacts
        digests = {n: digest(store, n) for n in ("train_v1", "train_acc", "served_v1")}
    held = f"holds feature_view '{VIEW}'"
    assert snapshots_reached(impact) == {
        "train_v1": (True, f"{held}:avg_daily_trips, conv_rate, which break"),
        "train_acc": (True, f"{held}:acc_rate, which breaks"),
        "served_v1": (True, f"{held}:avg_daily_trips, conv_rate, which break"),
    }
    assert impact.blocks  # the service breaks, as before

    out = parity("plan", "--repo", repo).stdout
    assert f"~ feature_view {VIEW} (major)" in out
    assert f"-> feature service {SERVICE}: BREAKS" in out
    assert "reaches 4 downstream object(s):" in out
    for name, why in [
        ("train_acc", f"{held}:acc_rate, which breaks"),
        ("train_v1", f"{held}:avg_daily_trips, conv_rate, which break"),
        ("served_v1", f"{held}:avg_daily_trips, conv_rate, which break"),
    ]:
        assert f"-> snapshot {name} ({digests[name]}): BREAKS ({why})" in out
    assert "1 breaking change(s) reach a feature service or a model" in out
    refused = parity("apply", "--repo", repo, code=1)  # the service refuses it, as before
    assert f"breaks feature_service '{SERVICE}'" in refused.stderr
    assert "snapshot" not in refused.stderr


def test_compatible_changes_reach_the_snapshots_as_compatible(repo: Path):
    with FeatureStore(repo) as store:
        more = [*store.get_feature_view(VIEW).schema, Field(name="lifetime_trips", dtype=Int64)]
        for change in (
            edited(store, VIEW, schema_=more),  # a new feature: minor
            edited(store, VIEW, description="How active a driver is."),  # patch
        ):
            (impact,) = store.plan([change]).impacts
            assert impact.bump in ("minor", "patch")
            assert snapshots_reached(impact) == dict.fromkeys(
                ("train_v1", "train_acc", "served_v1"), (False, "")
            )
    features = repo / "features.py"
    text = features.read_text()
    features.write_text(
        text.replace('"How active and reliable a driver has been lately."', '"Driver activity."')
    )
    out = parity("plan", "--repo", repo).stdout
    assert f"~ feature_view {VIEW} (patch)" in out
    assert "-> snapshot train_acc (" in out and ": compatible" in out
    assert "BREAKS" not in out


def test_a_change_to_a_view_a_snapshot_does_not_hold_does_not_reach_it(repo: Path):
    with FeatureStore(repo) as store:
        shorter = edited(store, "driver_rating", ttl=timedelta(hours=1))
        (impact,) = store.plan([shorter]).impacts
        assert impact.bump == "major"
        assert snapshots_reached(impact) == {
            "train_v1": (True, "holds feature_view 'driver_rating':driver_rating, which breaks"),
            "served_v1": (True, "holds feature_view 'driver_rating':driver_rating, which breaks"),
        }  # train_acc holds nothing of driver_rating
        profile = edited(store, "driver_profile", ttl=timedelta(days=1))
        (impact,) = store.plan([profile]).impacts
        assert impact.bump == "major" and impact.reached == ()


def test_a_major_change_to_the_service_a_snapshot_was_made_from_breaks_only_that_one(repo: Path):
    with FeatureStore(repo) as store:
        fewer = FeatureService(
            name=SERVICE, features=[f"{VIEW}:conv_rate", "driver_rating"]
        )  # avg_daily_trips removed: major
        planned = store.plan([fewer])
        (impact,) = planned.impacts
        assert (impact.kind, impact.bump) == ("feature_service", "major")
        assert snapshots_reached(impact) == {
            "served_v1": (True, f"made from feature_service '{SERVICE}', which breaks")
        }
        assert not planned.breaking
        wider = FeatureService(
            name=SERVICE,
            features=[f"{VIEW}:conv_rate", f"{VIEW}:avg_daily_trips", f"{VIEW}:acc_rate",
                      "driver_rating"],
        )  # fmt: skip
        (impact,) = store.plan([wider]).impacts
        assert impact.bump == "minor"
        assert snapshots_reached(impact) == {"served_v1": (False, "")}
        store.apply([fewer])  # not refused
        assert store.get_feature_service(SERVICE) == fewer


def test_a_snapshot_of_an_on_demand_view_is_reached_through_it(repo: Path):
    features = repo / "features.py"
    features.write_text(features.read_text() + ON_DEMAND)
    parity("apply", "--repo", repo)
    with FeatureStore(repo) as store:
        store.create_snapshot("train_pct", str(repo / ENTITIES), ["conv_pct:conv_pct"])
        (impact,) = store.plan([edited(store, VIEW, ttl=timedelta(hours=2))]).impacts
        reached = {(r.kind, r.name): (r.distance, r.breaking) for r in impact.reached}
        assert reached[("on_demand_feature_view", "conv_pct")] == (1, True)
        assert reached[(SNAPSHOT, "train_pct")] == (2, True)
        assert snapshots_reached(impact)["train_pct"] == (
            True, "holds on_demand_feature_view 'conv_pct':conv_pct, which breaks"
        )  # fmt: skip
        fewer = edited(store, VIEW, schema_=schema_without(store, VIEW, "acc_rate"))
        (impact,) = store.plan([fewer]).impacts
        assert snapshots_reached(impact)["train_pct"] == (False, "")  # it reads conv_rate


def test_without_snapshots_the_plan_is_as_before(tmp_path: Path):
    path = tmp_path / "shop"
    parity("init", "shop", "--dir", path)
    parity("apply", "--repo", path)
    with FeatureStore(path) as store:
        (impact,) = store.plan([edited(store, VIEW, ttl=timedelta(hours=2))]).impacts
        assert [(r.kind, r.name, r.breaking, r.detail) for r in impact.reached] == [
            ("feature_service", SERVICE, True, "")
        ]
