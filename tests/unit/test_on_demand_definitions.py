"""On-demand feature views as definitions: specs, function locations and hashes, checks of
the dependency graph, and the transform runner's errors."""

from __future__ import annotations

import sys
from datetime import timedelta

import pyarrow as pa
import pytest

from parity import (
    DefinitionError,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    OnDemandFeatureView,
    RequestSource,
    String,
    TransformationError,
    on_demand_feature_view,
)
from parity.definitions import from_spec, on_demand
from parity.query.on_demand import run_views
from parity.query.plan import FeaturePlan, plan_features
from parity.registry.catalog import Catalog
from parity.registry.validation import check_on_demand, check_references, collect, cycles
from parity.repo.functions import resolve_function


def plan_on_demand(features, catalog, full_feature_names=False) -> FeaturePlan | None:
    """The plan of a request when it has on-demand views to run, else None."""
    plan = plan_features(features, catalog, full_feature_names=full_feature_names)
    return plan if plan.steps else None


driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
stats = FeatureView(
    name="stats",
    entities=[driver],
    source=FileSource(name="src", path="x.parquet"),
    schema=[Field(name="conv", dtype=Float64), Field(name="city", dtype=String)],
    ttl=timedelta(days=1),
)
req = RequestSource(name="req", schema=[Field(name="val", dtype=Int64)])


@on_demand_feature_view(sources=[stats[["conv"]], req], schema=[Field(name="out", dtype=Float64)])
def plus(row):
    return {"out": row["conv"] + row["val"]}


def odfv(name: str, sources: list, **kw) -> OnDemandFeatureView:
    return OnDemandFeatureView(
        name=name, sources=sources, schema=[Field(name=f"{name}_x", dtype=Float64)], udf=_f, **kw
    )


def _f(row):
    return {}


def test_spec_names_location_hash_and_sources_never_code():
    spec = plus.to_spec()
    assert spec["udf"] == {
        "module": __name__,
        "qualname": "plus",
        "file": None,
        "source_hash": on_demand.function_hash(resolve_function(plus)),
    }
    assert spec["sources"] == [{"view": "stats", "features": ["conv"]}]
    assert spec["request_sources"] == [
        {
            "name": "req",
            "schema": [Field(name="val", dtype=Int64).model_dump(mode="json")],
            "description": "",
        }
    ]
    assert spec["mode"] == "python"
    back = from_spec("on_demand_feature_view", spec)
    assert back.to_spec() == spec
    assert resolve_function(back) is resolve_function(
        plus
    )  # found by location and hash in this process
    assert plus.depends_on == ["view stats", "request req"]


def test_hash_ignores_comments_docstrings_and_decorators_not_code():
    def a(row):
        return {"x": row["y"] + 1}

    first = a

    @staticmethod
    def a(row):
        """Documented."""
        # a comment
        return {"x": (row["y"] + 1)}

    def c(row):
        return {"x": row["y"] + 2}

    h = on_demand.function_hash
    assert h(first) == h(a.__func__)
    assert h(first) != h(c)


def test_functions_must_be_defs_with_source():
    with pytest.raises(DefinitionError, match="lambda"):
        OnDemandFeatureView(
            name="x", sources=[stats], schema=[Field(name="o", dtype=Int64)], udf=lambda r: r
        )
    with pytest.raises(DefinitionError, match="function defined with def"):
        OnDemandFeatureView(
            name="x", sources=[stats], schema=[Field(name="o", dtype=Int64)], udf=len
        )
    ns: dict = {}
    exec("def made(row):\n    return row\n", ns)
    with pytest.raises(
        DefinitionError, match=r"on_demand_feature_view 'x'.*cannot read the source"
    ):
        OnDemandFeatureView(
            name="x", sources=[stats], schema=[Field(name="o", dtype=Int64)], udf=ns["made"]
        )


def test_definition_errors_name_the_view():
    with pytest.raises(DefinitionError, match="at least one output"):
        odfv("a", [stats]).model_copy()  # fine
        OnDemandFeatureView(name="a", sources=[stats], schema=[], udf=_f)
    with pytest.raises(DefinitionError, match="listed twice"):
        odfv("a", [stats, stats[["conv"]]])
    with pytest.raises(DefinitionError, match=r"reads itself \(a -> a\)"):
        odfv("a", ["a"])
    with pytest.raises(DefinitionError, match="mode"):
        odfv("a", [stats], mode="spark")
    with pytest.raises(DefinitionError, match="sources"):
        odfv("a", [42])


def test_a_function_loaded_by_module_is_checked_against_its_hash(tmp_path, monkeypatch):
    mod = tmp_path / "od_mod_for_test.py"
    mod.write_text(
        "from parity import Field, Float64, on_demand_feature_view\n"
        "@on_demand_feature_view(sources=['stats'], schema=[Field(name='o', dtype=Float64)])\n"
        "def f(row):\n    return {'o': row['conv']}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import od_mod_for_test

    spec = od_mod_for_test.f.to_spec()
    on_demand._KNOWN.clear()
    fresh = from_spec("on_demand_feature_view", spec)
    assert resolve_function(fresh)({"conv": 2.0}) == {"o": 2.0}  # imported by module name
    changed = {**spec, "udf": {**spec["udf"], "source_hash": "0" * 64}}
    with pytest.raises(
        DefinitionError, match=r"'f'.*od_mod_for_test:f changed since it was applied"
    ):
        resolve_function(from_spec("on_demand_feature_view", changed))
    gone = {**spec, "udf": {**spec["udf"], "module": "no_such_module_xyz"}}
    with pytest.raises(
        DefinitionError, match=r"'f': cannot import its function no_such_module_xyz:f"
    ):
        resolve_function(from_spec("on_demand_feature_view", gone))
    sys.modules.pop("od_mod_for_test", None)


def test_local_functions_resolve_only_in_process():
    def local(row):
        return {"o": 1.0}

    view = OnDemandFeatureView(
        name="loc", sources=[stats], schema=[Field(name="o", dtype=Float64)], udf=local
    )
    spec = view.to_spec()
    assert "<locals>" in spec["udf"]["qualname"]
    assert resolve_function(from_spec("on_demand_feature_view", spec)) is local
    on_demand._KNOWN.clear()
    with pytest.raises(DefinitionError, match="defined inside another cannot be imported"):
        resolve_function(from_spec("on_demand_feature_view", spec))


def world(*objs) -> Catalog:
    return Catalog.of([driver, stats.source, stats, *objs], revision=1, project="p")


def test_graph_checks_name_the_problem():
    a = odfv("a", ["b"])
    b = odfv("b", ["c"])
    c = odfv("c", ["a", stats])
    assert cycles(world(a, b, c)) == ["a -> b -> c -> a"]
    assert any("cycle: a -> b -> c -> a" in p for p in check_on_demand(world(a, b, c)))
    clash = odfv(
        "x",
        [
            stats,
            FeatureView(
                name="s2",
                entities=[driver],
                source="src",
                schema=[Field(name="conv", dtype=Float64)],
            ),
        ],
    )
    problems = check_on_demand(world(clash, clash.input_objects[1]))
    assert problems == [
        "on-demand feature view 'x': input column 'conv' comes from view 'stats' and from view 's2'; select features with view[[...]]"
    ]
    assert check_on_demand(world(odfv("y", ["nope", "stats:zzz"]))) == [
        "on-demand feature view 'y': depends on 'nope', which is not a feature view or on-demand feature view",
        "on-demand feature view 'y': view 'stats' has no feature 'zzz' (it has ['conv', 'city'])",
    ]
    same = odfv("stats", [req])
    assert "a feature view has the same name" in check_on_demand(world(same))[0]
    assert check_on_demand(world(plus)) == []
    svc = FeatureService(name="svc", features=[plus, "plus:out"])
    assert check_references(world(plus, svc)) == []
    assert check_references(world(FeatureService(name="s", features=["plus:zz"]), plus))


def test_collect_pulls_in_views_given_as_objects():
    top = odfv("top", [plus, stats])
    ordered, problems = collect([top])
    assert problems == []
    assert {(o.kind, o.name) for o in ordered} == {
        ("on_demand_feature_view", "top"),
        ("on_demand_feature_view", "plus"),
        ("feature_view", "stats"),
        ("entity", "driver"),
        ("source", "src"),
    }


def test_catalog_graph_up_and_down():
    svc = FeatureService(name="svc", features=[plus])
    w = world(plus, svc)
    assert w.upstream(plus) == [("feature_view", "stats")]
    assert w.downstream("feature_view", "stats") == [("on_demand_feature_view", "plus")]
    assert w.downstream("on_demand_feature_view", "plus") == [("feature_service", "svc")]


# -- running -------------------------------------------------------------------------------


def run(view: OnDemandFeatureView, conv: list, val: list):
    plan = plan_on_demand([f"{view.name}:{f}" for f in view.feature_names], world(view))
    assert plan is not None
    columns = {"stats__conv": pa.array(conv, pa.float64())}
    return run_views(plan.steps, columns, {"val": val}, len(conv), None)


def make(fn, schema, mode="python") -> OnDemandFeatureView:
    return OnDemandFeatureView(
        name="t", sources=[stats[["conv"]], req], schema=schema, mode=mode, udf=fn
    )


def test_python_outputs_are_cast_and_checked():
    def ok(row):
        return {"o": row["val"], "extra": "ignored"}

    out = run(make(ok, [Field(name="o", dtype=Float64)]), [1.0, None], [2, 3])
    assert out["t__o"].type == pa.float64() and out["t__o"].to_pylist() == [2.0, 3.0]

    def wrong_type(row):
        return {"o": "text"}

    with pytest.raises(TransformationError, match=r"'t'.*output 'o' is declared Float64.*string"):
        run(make(wrong_type, [Field(name="o", dtype=Float64)]), [1.0], [1])

    def float_for_int(row):
        return {"o": 1.5}

    with pytest.raises(TransformationError, match="declared Int64"):
        run(make(float_for_int, [Field(name="o", dtype=Int64)]), [1.0], [1])

    def missing(row):
        return {"p": 1}

    with pytest.raises(TransformationError, match=r"did not return \['o'\].*returned \['p'\]"):
        run(make(missing, [Field(name="o", dtype=Int64)]), [1.0], [1])

    def not_dict(row):
        return 3

    with pytest.raises(TransformationError, match="returned int, not a dict"):
        run(make(not_dict, [Field(name="o", dtype=Int64)]), [1.0], [1])

    def boom(row):
        return {"o": row["conv"] / 0}

    with pytest.raises(
        TransformationError,
        match=r"on-demand feature view 't' \(function .*boom\) raised ZeroDivisionError.*entity row 0",
    ) as err:
        run(make(boom, [Field(name="o", dtype=Float64)]), [1.0], [1])
    assert isinstance(err.value.__cause__, ZeroDivisionError)


def test_pandas_mode_checks_rows_and_columns():
    def ok(df):
        return df.assign(o=df["conv"] * df["val"])

    out = run(make(ok, [Field(name="o", dtype=Float64)], "pandas"), [1.5, 2.0], [2, 3])
    assert out["t__o"].to_pylist() == [3.0, 6.0]

    def short(df):
        return df.head(1).assign(o=1.0)

    with pytest.raises(TransformationError, match="returned 1 rows for 2"):
        run(make(short, [Field(name="o", dtype=Float64)], "pandas"), [1.5, 2.0], [2, 3])

    def no_col(df):
        return df

    with pytest.raises(TransformationError, match=r"did not return column\(s\) \['o'\]"):
        run(make(no_col, [Field(name="o", dtype=Float64)], "pandas"), [1.5], [2])

    def not_frame(df):
        return [1]

    with pytest.raises(TransformationError, match="not a DataFrame"):
        run(make(not_frame, [Field(name="o", dtype=Float64)], "pandas"), [1.5], [2])


def test_plain_requests_are_left_alone():
    w = world(plus)
    assert plan_on_demand(["stats:conv"], w) is None
    assert plan_on_demand(["stats:conv"], world()) is None
    plan = plan_on_demand(["plus:out", "stats:city"], w, full_feature_names=True)
    assert plan is not None
    assert plan.fetched_refs == ("stats:city", "stats:conv")
    assert [o.name for o in plan.outputs] == ["plus__out", "stats__city"]
