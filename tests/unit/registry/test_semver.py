"""Semantic versions: every rule of the README's table, by example (a table-driven test that
reads the README's table itself, so the two cannot drift), and the bump arithmetic."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from parity.errors import DefinitionError
from parity.registry.diff import diff_specs
from parity.registry.semver import FIRST, SemVer, classify, next_version, parse

README = Path(__file__).resolve().parents[3] / "README.md"

ENTITY = {"name": "driver", "description": "", "owner": "", "tags": {},
          "join_keys": ["driver_id"], "dtype": "Int64"}  # fmt: skip
SOURCE = {"name": "trips", "description": "", "owner": "", "tags": {}, "source_type": "file",
          "timestamp_field": "ts", "created_timestamp_field": None, "field_mapping": {},
          "path": "data/trips.parquet", "file_format": "parquet"}  # fmt: skip
VIEW = {
    "name": "stats", "description": "", "owner": "", "tags": {}, "entities": ["driver"],
    "source": "trips", "ttl": "1d", "online": True, "sla": None, "pii": False,
    "schema": [
        {"name": "conv_rate", "dtype": "Float32", "description": "", "tags": {}, "pii": False},
        {"name": "trips", "dtype": "Int32", "description": "", "tags": {}, "pii": False},
        {"name": "tags_seen", "dtype": "Array(Int32)", "description": "", "tags": {}, "pii": False},
    ],
}  # fmt: skip
AGG = {**VIEW, "ttl": None, "hop": "1h",
       "aggregations": [{"function": "sum", "window": "7d", "column": "trips"}]}  # fmt: skip
ODFV = {
    "name": "plus", "description": "", "owner": "", "tags": {}, "mode": "python",
    "sources": [{"view": "stats", "features": ["conv_rate"]}],
    "request_sources": [{"name": "req", "description": "", "owner": "", "tags": {},
                         "schema": [{"name": "val", "dtype": "Float64", "description": "",
                                     "tags": {}, "pii": False}]}],
    "schema": [{"name": "out", "dtype": "Float64", "description": "", "tags": {}, "pii": False}],
    "udf": {"module": "features", "qualname": "plus", "file": "features.py", "source_hash": "a" * 64},
}  # fmt: skip
SERVICE = {"name": "svc", "description": "", "owner": "", "tags": {},
           "features": [{"view": "stats", "features": ["conv_rate", "trips"]},
                        {"view": "plus", "features": None}]}  # fmt: skip
MODEL = {"name": "ranker", "description": "", "owner": "", "tags": {}, "features": "svc"}
ROLE = {"name": "reader", "description": "", "owner": "", "tags": {},
        "permissions": [{"actions": ["read_online"], "kinds": ["*"], "names": ["*"]}]}  # fmt: skip

Edit = Callable[[dict[str, Any]], None]


def field(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in spec["schema"] if f["name"] == name)


def add_field(spec: dict[str, Any]) -> None:
    spec["schema"].append(dict(spec["schema"][0], name="new_one"))


def drop_field(spec: dict[str, Any]) -> None:
    spec["schema"].pop()


def setter(path: str, value: Any) -> Edit:
    def edit(spec: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node = spec
        for part in head:
            if part.startswith("@"):  # a schema item by name
                node = next(f for f in node if f["name"] == part[1:])
            else:
                node = node[part]
        node[last] = value

    return edit


# For each row of the README's table: examples (kind, spec before, the edit).
CASES: dict[str, list[tuple[str, dict[str, Any], Edit]]] = {
    "a field removed (a feature, an on-demand output, a request field)": [
        ("feature_view", VIEW, drop_field),
        ("on_demand_feature_view", dict(ODFV, schema=[*ODFV["schema"], dict(ODFV["schema"][0], name="b")]), drop_field),
    ],
    "a field's type changed to another kind or narrowed": [
        ("feature_view", VIEW, setter("schema.@conv_rate.dtype", "String")),
        ("feature_view", VIEW, setter("schema.@trips.dtype", "Float32")),
        ("feature_view", {**VIEW, "schema": [dict(VIEW["schema"][0], dtype="Float64")]},
         setter("schema.@conv_rate.dtype", "Float32")),
    ],
    "entities, join keys or an entity's key type changed": [
        ("feature_view", VIEW, setter("entities", ["driver", "rider"])),
        ("entity", ENTITY, setter("join_keys", ["driver_key"])),
        ("entity", ENTITY, setter("dtype", "String")),
    ],
    "a view's source, or a source's columns or location changed (field mapping, timestamp fields, path, format)": [
        ("feature_view", VIEW, setter("source", "trips_v2")),
        ("source", SOURCE, setter("field_mapping", {"cr": "conv_rate"})),
        ("source", SOURCE, setter("timestamp_field", "event_ts")),
        ("source", SOURCE, setter("path", "data/other.parquet")),
        ("source", SOURCE, setter("file_format", "csv")),
    ],
    "an aggregation changed or removed, or the hop changed": [
        ("feature_view", AGG, lambda s: s["aggregations"][0].update(window="30d")),
        ("feature_view", AGG, lambda s: s["aggregations"][0].update(function="max")),
        ("feature_view", AGG, lambda s: s["aggregations"][0].update(column="conv_rate")),
        ("feature_view", {**AGG, "aggregations": [*AGG["aggregations"], {"function": "count", "window": "1d"}]},
         lambda s: s["aggregations"].pop(0)),
        ("feature_view", AGG, setter("hop", "5m")),
    ],
    "an on-demand view's function body, inputs or mode changed": [
        ("on_demand_feature_view", ODFV, lambda s: s["udf"].update(source_hash="b" * 64)),
        ("on_demand_feature_view", ODFV, setter("sources", [{"view": "stats", "features": None}])),
        ("on_demand_feature_view", ODFV, setter("mode", "pandas")),
    ],
    "ttl shortened, or set where there was none": [
        ("feature_view", VIEW, setter("ttl", "2h")),
        ("feature_view", {**VIEW, "ttl": None}, setter("ttl", "30d")),
    ],
    "online serving turned off": [("feature_view", VIEW, setter("online", False))],
    "a view or feature removed from a service (or narrowed from all features to a list)": [
        ("feature_service", SERVICE, lambda s: s["features"].pop(1)),
        ("feature_service", SERVICE, lambda s: s["features"][0]["features"].pop()),
        ("feature_service", SERVICE, lambda s: s["features"][1].update(features=["out"])),
    ],
    "a model reads another service": [("model", MODEL, setter("features", "svc2"))],
    "lifecycle set to retired or draft": [
        ("feature_view", VIEW, setter("lifecycle", {"state": "retired", "reason": "", "successor": "v2"})),
        ("feature_view", {**VIEW, "lifecycle": {"state": "deprecated", "reason": "", "successor": None}},
         lambda s: s["lifecycle"].update(state="retired")),
        ("feature_service", SERVICE, setter("lifecycle", {"state": "draft", "reason": "", "successor": None})),
    ],
    "lifecycle set to active or deprecated, or its reason or successor changed": [
        ("feature_view", VIEW, setter("lifecycle", {"state": "deprecated", "reason": "old", "successor": None})),
        ("feature_view", {**VIEW, "lifecycle": {"state": "draft", "reason": "", "successor": None}},
         lambda s: s["lifecycle"].update(state="active")),
        ("feature_view", {**VIEW, "lifecycle": {"state": "deprecated", "reason": "", "successor": None}},
         lambda s: s["lifecycle"].update(reason="draft", successor="v2")),
    ],
    "a field added (a feature, an output)": [
        ("feature_view", VIEW, add_field),
        ("on_demand_feature_view", ODFV, add_field),
    ],
    "a field's type widened (Int32 to Int64, Float32 to Float64, Int32 to Float64, arrays of those)": [
        ("feature_view", VIEW, setter("schema.@trips.dtype", "Int64")),
        ("feature_view", VIEW, setter("schema.@conv_rate.dtype", "Float64")),
        ("feature_view", VIEW, setter("schema.@trips.dtype", "Float64")),
        ("feature_view", VIEW, setter("schema.@tags_seen.dtype", "Array(Int64)")),
    ],
    "an aggregation added": [
        ("feature_view", AGG, lambda s: s["aggregations"].append({"function": "count", "window": "1d"})),
    ],
    "ttl longer, or removed": [
        ("feature_view", VIEW, setter("ttl", "7d")),
        ("feature_view", VIEW, setter("ttl", None)),
    ],
    "online serving turned on": [("feature_view", {**VIEW, "online": False}, setter("online", True))],
    "a view or feature added to a service": [
        ("feature_service", SERVICE, lambda s: s["features"].append({"view": "other", "features": None})),
        ("feature_service", SERVICE, lambda s: s["features"][0]["features"].append("tags_seen")),
        ("feature_service", SERVICE, lambda s: s["features"][0].update(features=None)),
    ],
    "anything else: classification, mask, pii, a role's permissions": [
        ("feature_view", VIEW, setter("schema.@conv_rate.classification", "pii")),
        ("feature_view", VIEW, setter("schema.@conv_rate.mask", "hash")),
        ("feature_view", VIEW, setter("pii", True)),
        ("role", ROLE, lambda s: s["permissions"][0]["actions"].append("read_offline")),
    ],
    "description, owner, tags, SLA, a field's description or tags, checks, drift, retention, lawful basis, purposes, encrypt": [
        ("feature_view", VIEW, setter("description", "new words")),
        ("feature_view", VIEW, setter("owner", "someone")),
        ("feature_view", VIEW, setter("tags", {"team": "x"})),
        ("feature_view", VIEW, setter("sla", {"freshness": "1h", "availability": "99%"})),
        ("feature_view", VIEW, setter("schema.@conv_rate.description", "share")),
        ("feature_view", VIEW, setter("schema.@conv_rate.tags", {"a": "b"})),
        ("feature_view", VIEW, setter("schema.@conv_rate.checks", {"not_null": True})),
        ("feature_view", VIEW, setter("drift", {"psi": 0.2})),
        ("feature_view", VIEW, setter("retention", "365d")),
        ("feature_view", VIEW, setter("schema.@conv_rate.lawful_basis", "consent")),
        ("feature_view", VIEW, setter("schema.@conv_rate.purposes", ["fraud"])),
        ("feature_view", VIEW, setter("schema.@conv_rate.encrypt", True)),
        ("source", SOURCE, setter("owner", "data-eng")),
    ],
}  # fmt: skip


def readme_rules() -> dict[str, str]:
    text = README.read_text()
    start = text.index("| change | bump |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1]
    return rows


def test_the_readme_table_is_the_table_tested() -> None:
    rules = readme_rules()
    assert set(rules) == set(CASES)
    assert set(rules.values()) == {"major", "minor", "patch"}


@pytest.mark.parametrize(
    ("rule", "example"),
    [(rule, i) for rule, examples in CASES.items() for i in range(len(examples))],
)
def test_each_rule_bumps_as_the_readme_says(rule: str, example: int) -> None:
    kind, before, edit = CASES[rule][example]
    after = copy.deepcopy(before)
    edit(after)
    diff = diff_specs(before, after)
    assert diff, f"{rule}: the example changes nothing"
    bump, reasons = classify(kind, diff)
    assert bump == readme_rules()[rule], [r.render() for r in reasons]


def test_the_strongest_change_wins_and_resets_the_lower_parts() -> None:
    after = copy.deepcopy(VIEW)
    after["description"] = "x"  # patch
    add_field(after)  # minor
    assert classify("feature_view", diff_specs(VIEW, after))[0] == "minor"
    drop_field(after)
    drop_field(after)  # a field removed: major
    assert classify("feature_view", diff_specs(VIEW, after))[0] == "major"
    v = SemVer(1, 4, 2)
    assert (str(v.bumped("patch")), str(v.bumped("minor")), str(v.bumped("major"))) == (
        "1.4.3",
        "1.5.0",
        "2.0.0",
    )


def test_versions_across_create_update_delete_and_create_again() -> None:
    assert next_version("feature_view", "create", None, ()) == FIRST
    patch = diff_specs(VIEW, {**VIEW, "owner": "x"})
    v = next_version("feature_view", "update", FIRST, patch)
    assert str(v) == "1.0.1"
    assert next_version("feature_view", "delete", v, ()) == v  # the record keeps its version
    assert str(next_version("feature_view", "create", v, (), deleted=True)) == "2.0.0"


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
def test_parse_reads_what_str_writes(major: int, minor: int, patch: int) -> None:
    v = SemVer(major, minor, patch)
    assert parse(str(v)) == v
    assert v < v.bumped("patch") < v.bumped("minor") < v.bumped("major")


@pytest.mark.parametrize("text", ["1.2", "v1.2.0", "1.02.0", "1.2.0-rc1", "", "one"])
def test_parse_refuses_what_is_not_a_version(text: str) -> None:
    with pytest.raises(DefinitionError, match=re.escape(repr(text))):
        parse(text)


@given(
    st.lists(
        st.sampled_from(sorted({r for rules in [CASES] for r in rules})), min_size=1, max_size=4
    )
)
def test_a_combined_change_bumps_by_its_strongest_rule(rules: list[str]) -> None:
    """Changes to one view, each from a different rule: the bump is the strongest one's."""
    order = {"patch": 0, "minor": 1, "major": 2}
    view_rules = [r for r in rules if CASES[r][0][0] == "feature_view" and CASES[r][0][1] is VIEW]
    if not view_rules:
        return
    rules_once = list(dict.fromkeys(view_rules))
    touched: list[set[str]] = []
    for rule in rules_once:  # each rule's own top-level keys: rules editing one key conflict
        alone = copy.deepcopy(VIEW)
        CASES[rule][0][2](alone)
        touched.append({c.path.split(".")[0].split("[")[0] for c in diff_specs(VIEW, alone)})
    assume(all(not (a & b) for i, a in enumerate(touched) for b in touched[i + 1 :]))
    after = copy.deepcopy(VIEW)
    for rule in rules_once:
        CASES[rule][0][2](after)
    diff = diff_specs(VIEW, after)
    if not diff:
        return
    want = max((readme_rules()[r] for r in rules_once), key=order.__getitem__)
    assert classify("feature_view", diff)[0] == want
