"""The static reader: a Feast repo's Python read from its syntax, never run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from feast_repos import write_files
from parity.adopt import FeastImportError, read_feast_repo
from parity.adopt.static_reader import read_static

CONFIG = {"feature_store.yaml": "project: p\nregistry: data/registry.db\n"}


def static(tmp_path: Path, files: dict[str, str]):
    return read_static(write_files(tmp_path / "repo", {**CONFIG, **files}).resolve())


def test_it_never_runs_the_files(tmp_path: Path):
    marker = tmp_path / "ran"
    repo = static(
        tmp_path,
        {
            "defs.py": f"""\
                open({str(marker)!r}, "w").write("ran")
                from feast import Entity
                driver = Entity(name="driver", join_keys=["driver_id"])
            """
        },
    )
    assert [e.name for e in repo.entities] == ["driver"]
    assert not marker.exists()


def test_aliases_module_imports_and_imports_between_repo_files(tmp_path: Path):
    repo = static(
        tmp_path,
        {
            "entities.py": """\
                import feast
                from feast import ValueType

                driver = feast.Entity(name="driver", join_keys=["driver_id"],
                                      value_type=ValueType.INT64, tags={"a": "b"})
            """,
            "views.py": """\
                import datetime
                from feast import FeatureView as FV, Field, FileSource
                from feast.types import Array, Float32 as F32, Int64
                from entities import driver

                NAME = "stats"
                src = FileSource(name=f"{NAME}_src", path="data/x.parquet",
                                 timestamp_field="ts")
                stats = FV(
                    name=NAME,
                    entities=[driver],
                    source=src,
                    ttl=datetime.timedelta(hours=1, minutes=30),
                    schema=[Field(name="driver_id", dtype=Int64),
                            Field(name="rate", dtype=F32, description="d"),
                            Field(name="emb", dtype=Array(F32))],
                )
            """,
        },
    )
    (entity,) = repo.entities
    assert (entity.name, entity.join_keys, entity.value_type, entity.tags) == (
        "driver",
        ["driver_id"],
        "INT64",
        {"a": "b"},
    )
    (view,) = repo.views
    assert view.source == "stats_src"
    assert view.ttl == timedelta(hours=1, minutes=30)
    # the entity's join key is not a feature, as in Feast
    assert [(f.name, f.dtype) for f in view.schema] == [
        ("rate", "Float32"),
        ("emb", "Array(Float32)"),
    ]
    assert [s.path for s in repo.sources] == ["data/x.parquet"]


def test_projections_request_sources_and_on_demand_functions(tmp_path: Path):
    repo = static(
        tmp_path,
        {
            "defs.py": """\
                import numpy as np
                from feast import Entity, FeatureService, FeatureView, Field, FileSource
                from feast import RequestSource
                from feast.on_demand_feature_view import on_demand_feature_view
                from feast.types import Float64, Int64

                e = Entity(name="e", join_keys=["k"])
                v = FeatureView(name="v", entities=[e], schema=[Field(name="a", dtype=Int64),
                                Field(name="b", dtype=Int64)],
                                source=FileSource(name="s", path="d.parquet", timestamp_field="t"))

                @on_demand_feature_view(
                    sources=[v[["a"]], RequestSource(name="r", schema=[Field(name="x", dtype=Int64)])],
                    schema=[Field(name="y", dtype=Float64)],
                    mode="python",
                    singleton=True,
                )
                def plus(row):
                    # a comment kept as written
                    return {"y": np.float64(row["a"] + row["x"])}

                svc = FeatureService(name="svc", features=[v[["b"]], plus])
            """
        },
    )
    (odfv,) = repo.on_demand_views
    assert odfv.sources == [("v", ("a",))]
    assert [(r.name, [f.name for f in r.schema]) for r in odfv.request_sources] == [("r", ["x"])]
    assert (odfv.mode, odfv.singleton) == ("python", True)
    assert odfv.function.source == (
        "def plus(row):\n    # a comment kept as written\n"
        '    return {"y": np.float64(row["a"] + row["x"])}'
    )
    assert odfv.function.imports == ["import numpy as np"]
    (svc,) = repo.services
    assert svc.features == [("v", ("b",)), ("plus", None)]
    assert [s.name for s in repo.sources] == ["s"]  # an inline source is collected


def test_what_code_computes_is_listed_with_the_file_and_line(tmp_path: Path):
    repo = static(
        tmp_path,
        {
            "defs.py": """\
                from feast import Entity, FeatureView, Field, FileSource
                from helpers import make_schema, view_name

                e = Entity(name="e", join_keys=["k"])
                src = FileSource(name="s", path="d.parquet", timestamp_field="t")
                v = FeatureView(name="v", entities=[e], source=src, schema=make_schema())
                w = FeatureView(name=view_name(), entities=[e], source=src, schema=[])
            """
        },
    )
    assert repo.views == []
    reasons = {p.name: p.reason for p in repo.problems}
    assert "schema: make_schema() is computed (defs.py, line 6)" in reasons["v"]
    assert "install" in reasons["v"] or "Feast installed" in reasons["v"]
    assert reasons["(defs.py, line 7)"].startswith("its name is computed (view_name())")


def test_a_file_that_does_not_parse_is_named(tmp_path: Path):
    with pytest.raises(FeastImportError, match=r"bad\.py: cannot be parsed"):
        static(tmp_path, {"bad.py": "x = (\n"})


def test_feastignore_and_feasts_own_skips_are_followed(tmp_path: Path):
    repo = static(
        tmp_path,
        {
            ".feastignore": "ignored/\n",
            "defs.py": "from feast import Entity\na = Entity(name='a', join_keys=['a'])\n",
        },
    )
    root = repo.path
    (root / "ignored").mkdir()
    (root / "ignored" / "x.py").write_text("from feast import Entity\nb = Entity(name='b')\n")
    (root / "__init__.py").write_text("from feast import Entity\nc = Entity(name='c')\n")
    assert [e.name for e in read_static(root).entities] == ["a"]


def test_a_path_that_is_not_a_feast_repo_is_refused(tmp_path: Path):
    with pytest.raises(FeastImportError, match="no such folder"):
        read_feast_repo(tmp_path / "missing", use_feast=False)
    (tmp_path / "project" / "feature_repo").mkdir(parents=True)
    (tmp_path / "project" / "feature_repo" / "feature_store.yaml").write_text("project: x\n")
    with pytest.raises(FeastImportError, match=r"found one in .*feature_repo: give that folder"):
        read_feast_repo(tmp_path / "project", use_feast=False)
    (tmp_path / "noproj").mkdir()
    (tmp_path / "noproj" / "feature_store.yaml").write_text("registry: r.db\n")
    with pytest.raises(FeastImportError, match=r"feature_store\.yaml: project: required"):
        read_feast_repo(tmp_path / "noproj", use_feast=False)


def test_helpers_a_function_uses_beside_it_are_named(tmp_path: Path):
    repo = static(
        tmp_path,
        {
            "defs.py": """\
                from feast import Entity, FeatureView, Field, FileSource
                from feast.on_demand_feature_view import on_demand_feature_view
                from feast.types import Float64

                SCALE = 2.0

                def scale(x):
                    return x * SCALE

                e = Entity(name="e", join_keys=["k"])
                v = FeatureView(name="v", entities=[e], schema=[Field(name="a", dtype=Float64)],
                                source=FileSource(name="s", path="d.parquet", timestamp_field="t"))

                @on_demand_feature_view(sources=[v], schema=[Field(name="b", dtype=Float64)])
                def scaled(inputs):
                    out = inputs[["a"]].rename(columns={"a": "b"})
                    return scale(out)
            """
        },
    )
    (odfv,) = repo.on_demand_views
    assert odfv.function.helpers == ["scale"]  # SCALE is scale's business, `out` is local
