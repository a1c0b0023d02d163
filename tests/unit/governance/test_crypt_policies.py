"""Apply-time policies (``parity.governance.policies``): each ``governance:`` rule per object
and per field, encrypt=True's own rules whatever ``governance`` says, and ``apply`` refusing
with every violation named while ``plan`` lists them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from parity import (
    Aggregation,
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    String,
    on_demand_feature_view,
)
from parity.cli.app import app
from parity.errors import ValidationError
from parity.governance.policies import violations
from repo_utils import write_repo

RULES = ("require_owner", "require_classification", "require_description")


def store_with(tmp_path: Path, *, rules: dict[str, bool] | None = None, keys: bool = False):
    root = write_repo(tmp_path / "repo", {})
    extra = ""
    if rules:
        extra += (
            "governance: {" + ", ".join(f"{k}: {str(v).lower()}" for k, v in rules.items()) + "}\n"
        )
    if keys:
        extra += "encryption: { key_env: PARITY_TEST_UNUSED_KEYS }\n"
    (root / "parity.yaml").write_text((root / "parity.yaml").read_text() + extra)
    return FeatureStore(root)


def objects(*, owner: str = "", description: str = "", classification: str | None = None) -> list:
    kw = {"owner": owner, "description": description}
    driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64, **kw)
    src = FileSource(name="src", path="data/src.parquet", **kw)
    fields = [
        Field(name="rate", dtype=Float64, description=description, classification=classification),
        Field(name="city", dtype=String, description=description, classification=classification),
    ]
    view = FeatureView(name="stats", entities=[driver], source=src, schema=fields, **kw)
    service = FeatureService(name="svc", features=[view], **kw)
    return [driver, src, view, service]


def test_nothing_is_required_by_default(tmp_path):
    assert violations(store_with(tmp_path), objects()) == []


def test_each_rule_names_each_object_and_field(tmp_path):
    store = store_with(tmp_path, rules=dict.fromkeys(RULES, True))
    found = violations(store, objects())
    owners = {(v.kind, v.name) for v in found if v.rule == "require_owner"}
    assert owners == {
        ("entity", "driver"),
        ("source", "src"),
        ("feature_view", "stats"),
        ("feature_service", "svc"),
    }
    described = {(v.name, v.field) for v in found if v.rule == "require_description"}
    assert ("stats", "rate") in described and ("stats", "city") in described
    assert ("driver", None) in described
    classified = {(v.name, v.field) for v in found if v.rule == "require_classification"}
    assert classified == {("stats", "rate"), ("stats", "city")}
    text = [str(v) for v in found]
    assert "feature view 'stats', field 'rate': no classification" in " ".join(text)
    ok = objects(owner="team-a", description="what it is", classification="public")
    assert violations(store, ok) == []


@settings(deadline=None, max_examples=40)
@given(
    st.fixed_dictionaries({r: st.booleans() for r in RULES}),
    st.sampled_from(["", "  ", "team"]),
    st.sampled_from(["", "described"]),
    st.sampled_from([None, "pii", "public"]),
)
def test_a_violation_exactly_when_a_rule_is_on_and_unmet(
    tmp_path_factory, rules, owner, description, classification
):
    store = store_with(tmp_path_factory.mktemp("p"), rules=rules)
    found = violations(
        store, objects(owner=owner, description=description, classification=classification)
    )
    by_rule = {r: [v for v in found if v.rule == r] for r in RULES}
    assert bool(by_rule["require_owner"]) == (rules["require_owner"] and not owner.strip())
    assert bool(by_rule["require_description"]) == (
        rules["require_description"] and not description
    )
    assert bool(by_rule["require_classification"]) == (
        rules["require_classification"] and classification is None
    )


def test_view_level_pii_counts_as_declared_and_aggregations_take_their_column(tmp_path):
    store = store_with(tmp_path, rules={"require_classification": True})
    driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
    src = FileSource(name="src", path="data/src.parquet")
    pii_view = FeatureView(
        name="v", entities=[driver], source=src, pii=True, schema=[Field(name="a", dtype=Int64)]
    )
    agg = FeatureView(
        name="agg",
        entities=[driver],
        source=src,
        schema=[Field(name="amount", dtype=Float64)],
        aggregations=[
            Aggregation(column="amount", function="sum", window=timedelta(days=1)),
            Aggregation(function="count", window=timedelta(days=1)),
        ],
    )
    found = violations(store, [driver, src, pii_view, agg])
    assert [(v.name, v.field) for v in found] == [("agg", "amount")]
    assert f"aggregation {agg.aggregations[0].output_name!r} reads" in found[0].message


def test_encrypt_rules_hold_without_governance(tmp_path):
    store = store_with(tmp_path)  # no encryption section, no governance rules
    driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
    src = FileSource(name="src", path="data/src.parquet")
    plain = FeatureView(
        name="plain",
        entities=[driver],
        source=src,
        schema=[Field(name="name", dtype=String, encrypt=True)],
    )
    agg = FeatureView(
        name="agg",
        entities=[driver],
        source=src,
        schema=[Field(name="amount", dtype=Float64, encrypt=True)],
        aggregations=[Aggregation(column="amount", function="sum", window=timedelta(days=1))],
    )

    @on_demand_feature_view(
        sources=[plain[["name"]]], schema=[Field(name="upper", dtype=String, encrypt=True)]
    )
    def upper(row):
        return {"upper": row["name"].upper()}

    found = {
        (v.name, v.field): v.message for v in violations(store, [driver, src, plain, agg, upper])
    }
    assert "needs keys" in found["plain", "name"]
    assert "aggregated view" in found["agg", "amount"]
    assert "on-demand output" in found["upper", "upper"]
    with_keys = store_with(tmp_path / "k", keys=True)
    left = {(v.name, v.field) for v in violations(with_keys, [driver, src, plain, agg, upper])}
    assert left == {("agg", "amount"), ("upper", "upper")}  # keys fix only the first


REPO = """
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64
driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64, owner="ops")
src = FileSource(name="src", path="data/src.parquet", owner="ops")
stats = FeatureView(name="stats", entities=[driver], source=src,
                    schema=[Field(name="rate", dtype=Float64)])
"""


def test_plan_lists_and_apply_refuses(tmp_path):
    import pyarrow as pa

    from repo_utils import write_parquet

    root = write_repo(tmp_path / "repo", {"features.py": REPO})
    (root / "parity.yaml").write_text(
        (root / "parity.yaml").read_text()
        + "governance: { require_owner: true, require_classification: true }\n"
    )
    write_parquet(
        root / "data/src.parquet",
        pa.table(
            {
                "driver_id": pa.array([1], pa.int64()),
                "event_timestamp": pa.array([0], pa.timestamp("us", tz="UTC")),
                "rate": [0.5],
            }
        ),
    )
    runner = CliRunner()
    planned = runner.invoke(app, ["plan", "--repo", str(root)])
    assert planned.exit_code == 0, planned.output
    assert "Policy violations (2)" in planned.output
    assert "require_owner" in planned.output and "require_classification" in planned.output
    applied = runner.invoke(app, ["apply", "--repo", str(root)])
    assert applied.exit_code == 1
    with FeatureStore(root) as store:
        with pytest.raises(ValidationError) as err:
            store.apply()
        problems = err.value.problems
        assert "feature view 'stats': no owner (governance.require_owner)" in problems
        assert any(
            p.startswith("feature view 'stats', field 'rate': no classification") for p in problems
        )
        assert not store.registry.exists() or store.list_feature_views() == []
    (root / "features.py").write_text(
        REPO.replace(
            'schema=[Field(name="rate", dtype=Float64)]',
            'owner="ops", schema=[Field(name="rate", dtype=Float64, classification="public")]',
        )
    )
    assert runner.invoke(app, ["apply", "--repo", str(root)]).exit_code == 0
    with FeatureStore(root) as store:
        assert [v.name for v in store.list_feature_views()] == ["stats"]
