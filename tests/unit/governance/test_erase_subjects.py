"""A data subject: keys checked against the entity's join keys, lineage to every view keyed by
the entity, and exactly the subject's rows and online keys matched (never another key's)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity.definitions import Entity, FeatureView, Field, FileSource
from parity.errors import GovernanceError
from parity.governance.stored_places import decode_key
from parity.governance.subjects import parse_keys, subject
from parity.online.encoding import encode_key
from parity.registry.catalog import Catalog
from parity.types import Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
merchant = Entity(name="merchant", join_keys=["merchant_id"], dtype=String)
loose = Entity(name="loose", join_keys=["loose_id"])
place = Entity(name="place", join_keys=["country", "city"], dtype=String)
src = FileSource(name="src", path="x.parquet", field_mapping={"uid": "user_id"})


def view(name: str, *entities: Entity) -> FeatureView:
    return FeatureView(
        name=name,
        entities=[e.name for e in entities],
        source="src",
        schema=[Field(name="x", dtype=Float64)],
    )


CATALOG = Catalog.of(
    [
        user,
        merchant,
        loose,
        place,
        src,
        view("by_user", user),
        view("by_merchant_user", merchant, user),
        view("by_merchant", merchant),
        view("by_place", place),
        view("by_loose", loose),
    ]
)


def test_lineage_reaches_every_view_keyed_by_the_entity_alone_or_with_others():
    s = subject(CATALOG, "user", [1])
    assert s.view_names == ("by_merchant_user", "by_user")
    exact = {v.view.name: (v.exact, v.positions) for v in s.views}
    assert exact == {"by_user": (True, (0,)), "by_merchant_user": (False, (1,))}
    assert s.source_columns(src) == ["uid"]


@pytest.mark.parametrize(
    ("entity", "keys", "message"),
    [
        (
            "user",
            ["1"],
            "key 0, join key 'user_id' is '1' (str), but the entity's join keys are int; pass int('1')",
        ),
        ("user", [1, None], "key 1, join key 'user_id' is null"),
        ("user", [True], "is True (bool)"),
        ("user", [1.5], "is 1.5 (float)"),
        ("user", [2**63], "outside Int64"),
        ("user", [], "give at least one key"),
        ("user", "12", "keys must be a list"),
        ("user", {"user_id": 1}, "keys must be a list"),
        ("merchant", [7], "is 7 (int), but the entity's join keys are str"),
        ("place", ["fr"], "a composite key is a dict of ['country', 'city']"),
        ("place", [{"country": "fr"}], "it lacks ['city']"),
        ("place", [{"country": "fr", "city": "x", "zip": 1}], "not ['zip']"),
        ("nobody", [1], "entity 'nobody' not found"),
    ],
)
def test_bad_keys_are_refused_naming_them(entity, keys, message):
    with pytest.raises(GovernanceError) as err:
        subject(CATALOG, entity, keys)
    assert message in str(err.value)


def test_keys_are_kept_once_in_order_and_an_undeclared_type_takes_ints_or_text():
    assert subject(CATALOG, "user", [3, 1, 3]).keys == ((3,), (1,))
    assert subject(CATALOG, "user", np.array([5, 6])).keys == ((5,), (6,))  # NumPy ints
    assert subject(CATALOG, "loose", [1, "a"]).keys == ((1,), ("a",))
    s = subject(CATALOG, "place", [{"city": "paris", "country": "fr"}])
    assert s.keys == (("fr", "paris"),)


def test_parse_keys_types_command_line_text_by_the_entity():
    assert parse_keys(CATALOG, "user", ["1", "22"]) == [1, 22]
    assert parse_keys(CATALOG, "merchant", ["007"]) == ["007"]  # text stays text
    assert parse_keys(CATALOG, "loose", ["1", "2"]) == [1, 2]
    assert parse_keys(CATALOG, "loose", ["1", "b"]) == ["1", "b"]
    assert parse_keys(CATALOG, "place", ["country=fr;city=paris"]) == [
        {"country": "fr", "city": "paris"}
    ]
    with pytest.raises(GovernanceError, match="'user_id' is an integer, not 'x'"):
        parse_keys(CATALOG, "user", ["x"])
    with pytest.raises(GovernanceError, match="must be country=VALUE;city=VALUE"):
        parse_keys(CATALOG, "place", ["fr"])


small_ints = st.integers(-5, 5)


@given(
    column=st.lists(st.one_of(st.none(), small_ints), max_size=30),
    keys=st.lists(small_ints, min_size=1, max_size=4),
    arrow_type=st.sampled_from([pa.int64(), pa.int32(), pa.int8()]),
)
def test_rows_of_marks_exactly_the_subjects_rows(column, keys, arrow_type):
    s = subject(CATALOG, "user", keys)
    table = pa.table({"uid": pa.array(column, arrow_type)})
    mask = s.rows_of(table, ["uid"]).to_pylist()
    assert mask == [v is not None and v in keys for v in column]


@given(
    rows=st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from("xyz")), max_size=20),
    keys=st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from("xyz")), min_size=1),
)
def test_rows_of_a_composite_entity_needs_every_join_key_to_match(rows, keys):
    s = subject(CATALOG, "place", [{"country": c, "city": t} for c, t in keys])
    table = pa.table({"country": [r[0] for r in rows], "city": [r[1] for r in rows]})
    assert s.rows_of(table, ["country", "city"]).to_pylist() == [r in keys for r in rows]


def test_rows_of_never_matches_across_kinds_nor_without_the_column():
    s = subject(CATALOG, "loose", [1])
    assert s.rows_of(pa.table({"loose_id": ["1", "2"]}), ["loose_id"]).to_pylist() == [
        False,
        False,
    ]
    assert s.rows_of(pa.table({"other": [1]}), ["loose_id"]) is None
    big = subject(CATALOG, "user", [300])  # does not fit int8: matches nothing
    assert big.rows_of(pa.table({"u": pa.array([44], pa.int8())}), ["u"]).to_pylist() == [False]


texts = st.text(alphabet=st.sampled_from(["a", "i", "s", "\x1f", "1", "é"]), max_size=6)


@given(
    stored=st.lists(st.tuples(texts, small_ints), min_size=1, max_size=12, unique=True),
    erased=st.lists(small_ints, min_size=1, max_size=3),
)
def test_owns_key_finds_a_composite_online_key_by_the_entitys_part_only(stored, erased):
    s = subject(CATALOG, "user", erased)
    vk = next(v for v in s.views if v.view.name == "by_merchant_user")
    parts = s.encoded_parts()
    for m, u in stored:
        key = encode_key([m, u], ["merchant_id", "user_id"])
        assert s.owns_key(key, vk, parts) == (u in erased), (m, u)


@given(
    st.tuples(
        st.text(max_size=5).filter(lambda t: "\x1f" not in t), st.integers(), st.binary(max_size=4)
    )
)
def test_decode_key_gives_back_the_encoded_values(values):
    names = ["a", "b", "c"]
    assert decode_key(encode_key(list(values), names), 3) == list(values)
