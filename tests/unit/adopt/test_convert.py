"""Converting Feast objects: what maps, and that whatever depends on a left-out object is
left out with it, each with its reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity import types as T
from parity.adopt.convert import convert
from parity.adopt.model import (
    FeastEntity,
    FeastField,
    FeastFunction,
    FeastOnDemandView,
    FeastRepo,
    FeastService,
    FeastSource,
    FeastView,
)
from parity.adopt.types_map import Unsupported, entity_type, field_type

FN = FeastFunction(name="f", source="def f(df):\n    return df", imports=[], file="x.py")


def repo(tmp_path: Path, **parts) -> FeastRepo:
    base = FeastRepo(path=tmp_path / "feast", config={"project": "p"}, reader="static")
    base.entities = [FeastEntity(name="e", join_keys=["k"], value_type="INT64")]
    base.sources = [
        FeastSource(name="s", kind="file", type_name="FileSource", path="data/s.parquet",
                    timestamp_field="t"),
        FeastSource(name="bq", kind="other", type_name="BigQuerySource"),
    ]  # fmt: skip
    base.views = [
        FeastView(name="v", type_name="FeatureView", entities=["e"], source="s",
                  schema=[FeastField("a", "Int64"), FeastField("m", "Map"),
                          FeastField("b", "UnixTimestamp")], ttl=timedelta(hours=3)),
        FeastView(name="w", type_name="FeatureView", entities=["e"], source="bq",
                  schema=[FeastField("c", "Int64")]),
    ]  # fmt: skip
    for key, value in parts.items():
        setattr(base, key, value)
    return base


def odfv(name: str, sources, **kw) -> FeastOnDemandView:
    defaults = dict(
        request_sources=[], schema=[FeastField("out", "Float64")], mode="pandas", function=FN
    )
    return FeastOnDemandView(name=name, sources=sources, **{**defaults, **kw})


def reasons(converted) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for p in converted.problems:
        out.setdefault((p.kind, p.name), []).append(p.reason)
    return out


def test_views_sources_and_paths(tmp_path: Path):
    done = convert(repo(tmp_path), tmp_path / "out")
    (view,) = done.definitions["feature_views"]
    assert view["schema"] == [{"name": "a", "dtype": "Int64"}, {"name": "b", "dtype": "Timestamp"}]
    assert view["ttl"] == "3h"
    (source,) = done.definitions["sources"]
    assert source["path"] == str(tmp_path / "feast" / "data" / "s.parquet")
    why = reasons(done)
    assert why[("feature_view", "w")] == ["its source 'bq' is not converted"]
    assert "BigQuery tables" in why[("source", "bq")][0]
    assert "feature 'm' left out: Feast type Map" in why[("feature_view", "v")][0]
    assert done.definitions["entities"] == [{"name": "e", "join_keys": ["k"], "dtype": "Int64"}]


def test_remote_paths_stay_and_absolute_ones_too(tmp_path: Path):
    sources = [
        FeastSource(name="s", kind="file", type_name="FileSource", path="s3://b/x.parquet"),
        FeastSource(name="t", kind="file", type_name="FileSource", path="/abs/x.parquet"),
        FeastSource(name="d", kind="file", type_name="FileSource", path="x", file_format="delta"),
    ]
    done = convert(repo(tmp_path, sources=sources, views=[]), tmp_path / "out")
    assert [s["path"] for s in done.definitions["sources"]] == [
        "s3://b/x.parquet",
        "/abs/x.parquet",
    ]
    assert "delta files" in reasons(done)[("source", "d")][0]
    assert not done.useful  # no view converted: nothing would be written


def test_on_demand_views_depend_on_what_converted(tmp_path: Path):
    done = convert(
        repo(
            tmp_path,
            on_demand_views=[
                odfv("good", [("v", ("a", "b"))]),  # every converted feature: all of them
                odfv("on_bq", [("w", None)]),
                odfv("on_map", [("v", ("m",))]),
                odfv("agg", [("v", None)], aggregations=True),
                odfv("lost", [("v", None)], function=FeastFunction(name="<lambda>", source=None)),
                odfv(
                    "stored",
                    [("good", None)],
                    write_to_online_store=True,
                    function=FeastFunction(name="g", source="def g(df):\n    return df"),
                ),
                odfv("spark", [("v", None)], mode="spark"),
            ],
            services=[
                FeastService(name="svc", features=[("v", ("a", "m")), ("on_bq", None)]),
                FeastService(name="gone", features=[("w", None)]),
            ],
        ),
        tmp_path / "out",
    )
    why = reasons(done)
    assert why[("on_demand_feature_view", "on_bq")] == ["its source view 'w' is not converted"]
    assert "none of the features it reads of 'v'" in why[("on_demand_feature_view", "on_map")][0]
    assert why[("on_demand_feature_view", "agg")] == ["on-demand aggregations are not converted"]
    assert "cannot be recovered" in why[("on_demand_feature_view", "lost")][0]
    assert "write_to_online_store" in why[("on_demand_feature_view", "stored")][0]
    assert "mode 'spark'" in why[("on_demand_feature_view", "spark")][0]
    module = done.on_demand_module or ""
    assert "name='good'" in module and "name='stored'" in module  # reads another on-demand view
    assert "    sources=[\n        'v',\n" in module  # a selection of all features: the view
    assert "name='on_bq'" not in module
    (svc,) = done.definitions["feature_services"]
    assert svc["features"] == [{"view": "v", "features": ["a"]}]
    assert why[("feature_service", "svc")] == ["view 'on_bq' is not converted; left out"]
    assert why[("feature_service", "gone")] == ["none of its views is converted"]


def test_two_on_demand_views_of_one_function_name_keep_the_first(tmp_path: Path):
    done = convert(
        repo(tmp_path, on_demand_views=[odfv("one", [("v", None)]), odfv("two", [("v", None)])]),
        tmp_path / "out",
    )
    assert (
        "another view's function is also named 'f'"
        in reasons(done)[("on_demand_feature_view", "two")][0]
    )
    assert (done.on_demand_module or "").count("@on_demand_feature_view(") == 1


def test_python_batch_mode_gets_an_adapter_and_singleton_is_parity_python(tmp_path: Path):
    batch = odfv("batch", [("v", None)], mode="python")
    single = odfv(
        "single", [("v", None)], mode="python", singleton=True,
        function=FeastFunction(name="g", source="def g(row):\n    return row"),
    )  # fmt: skip
    module = convert(repo(tmp_path, on_demand_views=[batch, single]), tmp_path / "o")
    text = module.on_demand_module or ""
    assert (
        "def _parity_f(rows: _pd.DataFrame)" in text and "return _pd.DataFrame(f(columns)" in text
    )
    single_part = text[text.index("name='single'") :]
    assert "mode='python'" in single_part and "_parity_g" not in text
    compile(text, "on_demand.py", "exec")  # the module is valid Python


FEAST_TYPES = ["Int32", "Int64", "Float32", "Float64", "String", "Bool", "Bytes", "UnixTimestamp",
               "Json", "PdfBytes", "ImageBytes"]  # fmt: skip
UNSUPPORTED = ["Map", "ScalarMap", "Struct", "Uuid", "TimeUuid", "Decimal", "ZonedTimestamp",
               "Invalid", "Set(Int64)", "Array(Map)", "Array(Json)"]  # fmt: skip


@given(st.sampled_from(FEAST_TYPES), st.booleans())
def test_every_type_that_converts_is_a_parity_type(name: str, array: bool):
    feast = f"Array({name})" if array else name
    if array and name in ("Json", "PdfBytes", "ImageBytes"):
        with pytest.raises(Unsupported):
            field_type(feast)
        return
    parsed = T.parse(field_type(feast))
    assert isinstance(parsed, T.Array) == array


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_types_parity_lacks_are_refused_with_a_reason(name: str):
    with pytest.raises(Unsupported, match=f"Feast type {name.replace('(', '.').replace(')', '.')}"):
        field_type(name)


def test_entity_value_types():
    assert entity_type("INT64") == "Int64" and entity_type("FLOAT") == "Float32"
    assert entity_type(None) is None
    with pytest.raises(Unsupported):
        entity_type("STRING_LIST")
