"""The spec diff: examples of its paths, and its invariants over random nested specs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity.definitions import FeatureService, FeatureView, Field
from parity.registry.diff import (
    ABSENT,
    FieldChange,
    apply_changes,
    diff_specs,
    format_path,
    format_value,
    parse_path,
)


def view(**kw: Any) -> dict[str, Any]:
    fields = kw.pop("fields", [("conv_rate", "Float32"), ("trips", "Int64")])
    base = {"entities": ["driver"], "source": "src", "ttl": "2h"}
    schema = [Field(name=n, dtype=t) for n, t in fields]
    return FeatureView(name="driver_stats", schema=schema, **{**base, **kw}).to_spec()


def test_identical_specs_have_no_diff():
    assert diff_specs(view(), view()) == ()


def test_scalar_and_nested_changes_have_dotted_paths():
    old = view(tags={"team": "a"})
    new = view(ttl="4h", tags={"team": "b", "tier": "1"})
    assert diff_specs(old, new) == (
        FieldChange("tags.team", "a", "b"),
        FieldChange("tags.tier", ABSENT, "1"),
        FieldChange("ttl", "2h", "4h"),
    )


def test_list_items_with_a_name_are_matched_by_name():
    old = view()
    new = view(fields=[("conv_rate", "Float64"), ("trips", "Int64"), ("acc", "Float32")])
    changes = diff_specs(old, new)
    assert [c.path for c in changes] == ["schema[conv_rate].dtype", "schema[acc]"]
    assert changes[1].added and changes[1].new["dtype"] == "Float32"
    removed = diff_specs(old, view(fields=[("trips", "Int64")]))
    assert [(c.path, c.removed) for c in removed] == [("schema[conv_rate]", True)]


def test_service_projections_are_matched_by_view():
    old = FeatureService(name="s", features=["a:x", "b"]).to_spec()
    new = FeatureService(name="s", features=["a:x,y", "b"]).to_spec()
    assert [c.path for c in diff_specs(old, new)] == ["features[a].features[1]"]


def test_other_lists_are_matched_by_index():
    changes = diff_specs({"keys": ["a", "b"]}, {"keys": ["a", "c", "d"]})
    assert changes == (FieldChange("keys[1]", "b", "c"), FieldChange("keys[2]", ABSENT, "d"))


def test_reordered_named_items_are_one_change_of_the_whole_list():
    old = view()
    new = view(fields=[("trips", "Int64"), ("conv_rate", "Float32")])
    [change] = diff_specs(old, new)
    assert change.path == "schema"
    assert apply_changes(old, [change]) == new


def test_types_are_compared_strictly():
    assert diff_specs({"a": 1}, {"a": 1.0}) == (FieldChange("a", 1, 1.0),)
    assert diff_specs({"a": True}, {"a": 1}) == (FieldChange("a", True, 1),)


def test_odd_keys_are_quoted_in_paths():
    changes = diff_specs({"tags": {"a.b c": "x"}}, {"tags": {"a.b c": "y"}})
    assert changes[0].path == 'tags["a.b c"]'
    assert parse_path('tags["a.b c"]') == [("key", "tags"), ("key", "a.b c")]
    assert parse_path("schema[conv_rate].dtype") == [
        ("key", "schema"),
        ("key", "conv_rate"),
        ("key", "dtype"),
    ]
    assert parse_path("keys[3]") == [("key", "keys"), ("index", 3)]
    with pytest.raises(ValueError, match="bad spec path"):
        parse_path("a..b")


def test_rendering_is_readable():
    assert FieldChange("ttl", "2h", "4h").render() == "ttl: 2h -> 4h"
    assert FieldChange("tags.x", ABSENT, "1").render() == '+ tags.x: "1"'
    assert FieldChange("ttl", None, "4h").render() == "ttl: null -> 4h"
    assert FieldChange("d", "", "x").render() == 'd: "" -> x'
    assert format_value({"a": [1, True]}) == '{"a": [1, true]}'


def test_field_changes_round_trip_through_json():
    changes = [FieldChange("a", ABSENT, 1), FieldChange("b", [1], ABSENT), FieldChange("c", 1, 2)]
    stored = json.loads(json.dumps([c.to_dict() for c in changes]))
    assert [FieldChange.from_dict(d) for d in stored] == changes


# -- properties -----------------------------------------------------------------------------

keys = st.one_of(st.sampled_from(["name", "view", "dtype", "tags", "ttl"]), st.text(max_size=6))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda x: x + 0.0),  # no -0.0
    st.text(max_size=4),
)


def _named(children: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Lists of dicts keyed by a name, like a view's schema: exercises matching by key."""
    item = st.fixed_dictionaries({"name": st.sampled_from("abcde")}, optional={"v": children})
    return st.lists(item, max_size=5, unique_by=lambda d: d["name"])


values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
        _named(children),
    ),
    max_leaves=12,
)
specs = st.dictionaries(keys, values, max_size=6)


@st.composite
def _edited(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with a few random edits: dropped, changed and added keys or items."""
    if isinstance(value, dict):
        out = {k: draw(_edited(v)) for k, v in value.items() if draw(st.integers(0, 5))}
        out.update(draw(st.dictionaries(keys, values, max_size=1)))
        return out
    if isinstance(value, list):
        out = [draw(_edited(v)) for v in value if draw(st.integers(0, 5))]
        out += draw(st.lists(values, max_size=1))
        if draw(st.integers(0, 9)) == 0:
            out = draw(st.permutations(out))
        return out
    return draw(values) if draw(st.integers(0, 3)) == 0 else value


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_applying_the_diff_rebuilds_an_edited_spec(data: st.DataObject):
    a = data.draw(specs)
    b = data.draw(_edited(a))
    assert _canon(apply_changes(a, diff_specs(a, b))) == _canon(b)


@settings(deadline=None)
@given(specs)
def test_a_spec_has_no_diff_with_itself(a: dict[str, Any]):
    assert diff_specs(a, a) == ()


@settings(max_examples=150, deadline=None)
@given(specs, specs)
def test_applying_the_diff_rebuilds_the_new_spec(a: dict[str, Any], b: dict[str, Any]):
    before = _canon(a)
    changes = diff_specs(a, b)
    assert (changes == ()) == (before == _canon(b))
    assert _canon(apply_changes(a, changes)) == _canon(b)
    assert _canon(a) == before  # the input was left alone


@settings(deadline=None)
@given(specs, specs)
def test_the_diff_survives_storage(a: dict[str, Any], b: dict[str, Any]):
    stored = json.loads(json.dumps([c.to_dict() for c in diff_specs(a, b)]))
    assert _canon(apply_changes(a, [FieldChange.from_dict(d) for d in stored])) == _canon(b)


@given(st.lists(st.one_of(st.tuples(st.just("key"), st.text(max_size=5)),
                          st.tuples(st.just("index"), st.integers(0, 99))), max_size=5))  # fmt: skip
def test_paths_parse_back(tokens: list[tuple[str, Any]]):
    assert parse_path(format_path(tokens)) == tokens


def _canon(value: Any) -> str:
    """JSON text with sorted keys: tells 1, 1.0 and true apart, ignores dict order only."""
    return json.dumps(value, sort_keys=True)
