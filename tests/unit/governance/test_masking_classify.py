"""Classification along dependencies: an on-demand output is as sensitive as the most
sensitive input it reads unless it says lower with a reason; an aggregate is as sensitive as
its column; apply refuses masks a type cannot take and unexplained lowerings, naming the
view and the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity import FeatureStore
from parity.definitions import (
    Entity,
    FeatureView,
    Field,
    FileSource,
    RequestSource,
    on_demand_feature_view,
)
from parity.errors import ValidationError
from parity.governance.classify import LEVELS, Classifier, problems
from parity.registry.catalog import Catalog
from parity.types import Float64, Int64, String
from repo_utils import write_parquet, write_repo

LEVEL_NAMES = list(LEVELS)
user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
src = FileSource(name="src", path="data/u.parquet")


def _view(classes: dict[str, str | None], purposes: dict[str, tuple[str, ...]] | None = None):
    purposes = purposes or {}
    return FeatureView(
        name="profile",
        entities=[user],
        source=src,
        schema=[
            Field(name=n, dtype=String, classification=c, purposes=purposes.get(n))
            for n, c in classes.items()
        ],
    )


def _odfv(inputs, out: Field, request: list[Field] | None = None):
    sources = [inputs]
    if request:
        sources.append(RequestSource(name="req", schema=request))

    @on_demand_feature_view(sources=sources, schema=[out], name="derived")
    def derived(row):
        return {out.name: None}

    return derived


@given(levels=st.lists(st.sampled_from([None, *LEVEL_NAMES]), min_size=1, max_size=5))
def test_an_undeclared_output_is_the_highest_of_its_inputs(levels: list) -> None:
    names = [f"f{i}" for i in range(len(levels))]
    view = _view(dict(zip(names, levels, strict=True)))
    odfv = _odfv(view, Field(name="out", dtype=String))
    catalog = Catalog.of([user, src, view, odfv])
    want = max((lv or "public" for lv in levels), key=LEVELS.__getitem__)
    assert Classifier(catalog).of("derived", "out").classification == want
    assert problems(catalog) == []


@given(
    levels=st.lists(st.sampled_from(LEVEL_NAMES), min_size=1, max_size=4),
    declared=st.sampled_from(LEVEL_NAMES),
    reason=st.booleans(),
)
def test_a_lower_declaration_needs_a_reason(levels: list, declared: str, reason: bool) -> None:
    names = [f"f{i}" for i in range(len(levels))]
    view = _view(dict(zip(names, levels, strict=True)))
    out = Field(
        name="out",
        dtype=String,
        classification=declared,
        classification_reason="aggregated beyond identification" if reason else None,
    )
    catalog = Catalog.of([user, src, view, _odfv(view, out)])
    top = max(levels, key=LEVELS.__getitem__)
    found = problems(catalog)
    got = Classifier(catalog).of("derived", "out").classification
    if LEVELS[declared] >= LEVELS[top] or reason:
        assert found == [] and got == declared
    else:
        assert len(found) == 1
        assert (
            "'derived'" in found[0] and "'out'" in found[0] and "classification_reason" in found[0]
        )
        assert got == top  # still served as its inputs are


def test_propagation_follows_chains_and_request_fields() -> None:
    view = _view({"email": "pii", "city": None})
    first = _odfv(
        view[["city"]],
        Field(name="out", dtype=String),
        [Field(name="card", dtype=String, classification="pci")],
    )

    @on_demand_feature_view(
        sources=[first], schema=[Field(name="again", dtype=String)], name="second"
    )
    def second(row):
        return {"again": None}

    catalog = Catalog.of([user, src, view, first, second])
    c = Classifier(catalog)
    assert c.of("derived", "out").classification == "pci"  # from the request field
    assert c.of("second", "again").classification == "pci"  # through the chain
    only_city = _odfv(view[["city"]], Field(name="out", dtype=String))
    assert (
        Classifier(Catalog.of([user, src, view, only_city])).of("derived", "out").classification
        == "public"
    )


def test_purposes_are_those_every_input_allows() -> None:
    view = _view(
        {"a": "pii", "b": "pii", "c": None},
        {"a": ("fraud", "support"), "b": ("fraud", "marketing")},
    )
    odfv = _odfv(view, Field(name="out", dtype=String, purposes=("fraud", "support", "billing")))
    s = Classifier(Catalog.of([user, src, view, odfv])).of("derived", "out")
    assert s.purposes == frozenset({"fraud"})
    assert Classifier(Catalog.of([user, src, view, odfv])).of("profile", "c").purposes is None


def test_an_aggregate_is_as_sensitive_as_its_column() -> None:
    events = FeatureView(
        name="spend",
        entities=[user],
        source=src,
        schema=[
            Field(name="merchant", dtype=String, classification="pci", mask="truncate:2"),
            Field(name="amount", dtype=Float64),
        ],
        aggregations=[
            {"column": "merchant", "function": "last", "window": "1d"},
            {"column": "merchant", "function": "count", "window": "1d"},
            {"column": "amount", "function": "sum", "window": "1d"},
        ],
    )
    c = Classifier(Catalog.of([user, src, events]))
    names = [f.name for f in events.features]
    last, count, total = (c.of("spend", n) for n in names)
    assert (last.classification, last.mask) == ("pci", "truncate:2")
    assert (count.classification, count.mask) == ("pci", "null")  # truncate cannot mask a count
    assert total.classification == "public"


DEFS = """
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
src = FileSource(name="src", path="data/u.parquet")
profile = FeatureView(name="profile", entities=[user], source=src,
    schema=[Field(name="score", dtype=Float64, pii=True, mask=MASK)])
"""


@pytest.mark.parametrize("mask", ["'truncate:3'", "'hash'"])
def test_apply_refuses_a_mask_the_type_cannot_take(tmp_path: Path, mask: str) -> None:
    root = write_repo(tmp_path / "repo", {"features.py": DEFS.replace("MASK", mask)})
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    write_parquet(
        root / "data/u.parquet", {"user_id": [1], "event_timestamp": [t0], "score": [0.5]}
    )
    with FeatureStore(root) as store, pytest.raises(ValidationError) as info:
        store.apply()
    (problem,) = info.value.problems
    assert "feature view 'profile'" in problem and "'score'" in problem and "Float64" in problem
    with FeatureStore(root) as store:
        assert store.list_feature_views() == []  # nothing applied


YAML = """
kind: entity
name: user
join_keys: [user_id]
dtype: Int64
---
kind: source
name: src
path: data/u.parquet
---
kind: feature_view
name: profile
entities: [user]
source: src
schema:
  - { name: email, dtype: String, pii: true, mask: "truncate:2", lawful_basis: consent,
      purposes: [fraud, support] }
  - { name: card, dtype: String, classification: pci, mask: hash }
---
name: phone
entity: user
source: src
dtype: String
pii: true
mask: "truncate:3"
purposes: [support]
"""


def test_yaml_fields_carry_classification_masks_and_purposes(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", {"features.yaml": YAML})
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    write_parquet(
        root / "data/u.parquet",
        {
            "user_id": [1],
            "event_timestamp": [t0],
            "email": ["a@b"],
            "card": ["4111"],
            "phone": ["1"],
        },
    )
    with FeatureStore(root) as store:
        store.apply()
        c = Classifier(store.catalog())
    email = c.of("profile", "email")
    assert (email.classification, email.mask, email.purposes) == (
        "pii",
        "truncate:2",
        frozenset({"fraud", "support"}),
    )
    assert (c.of("profile", "card").classification, c.of("profile", "card").mask) == ("pci", "hash")
    phone = c.of("phone", "phone")
    assert (phone.classification, phone.mask, phone.purposes) == (
        "pii",
        "truncate:3",
        frozenset({"support"}),
    )


def test_a_pii_view_makes_its_unclassified_fields_pii() -> None:
    view = FeatureView(
        name="profile",
        entities=[user],
        source=src,
        pii=True,
        schema=[
            Field(name="name", dtype=String, mask="truncate:1"),
            Field(name="country", dtype=String, classification="public"),
            Field(name="card", dtype=String, classification="pci"),
        ],
    )
    c = Classifier(Catalog.of([user, src, view]))
    assert (c.of("profile", "name").classification, c.of("profile", "name").mask) == (
        "pii",
        "truncate:1",
    )
    assert c.of("profile", "country").classification == "public"  # said so explicitly
    assert c.of("profile", "card").classification == "pci"


def test_an_unknown_input_or_an_unfilled_aggregate_column_is_left_to_apply() -> None:
    odfv = _odfv("nowhere", Field(name="out", dtype=String))
    assert problems(Catalog.of([user, src, odfv])) == []  # check_on_demand names it
    events = FeatureView(
        name="spend",
        entities=[user],
        source=src,
        schema=[],
        aggregations=[{"column": "amount", "function": "sum", "window": "1d"}],
    )
    odfv = _odfv(events, Field(name="out", dtype=String))
    catalog = Catalog.of([user, src, events, odfv])
    assert problems(catalog) == []
    assert Classifier(catalog).of("spend", events.aggregations[0].output_name).mask == "null"
