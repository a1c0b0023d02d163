"""A YAML ``entity:`` given as a join key that two entities share is refused as ambiguous.

The single-feature form (and every YAML view) may name its entity by join key; when more
than one entity has that key, loading the repo fails, naming the document, the view, the key
and every entity that has it, and nothing is registered.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from parity import DefinitionError, Entity, FeatureStore, FeatureView, Field
from parity.repo import load_repo
from parity.repo.yaml_form import resolve_entity_refs
from repo_utils import write_parquet, write_repo

ENTITIES = """
from parity import Entity, FileSource, Int64
buyer = Entity(name="buyer", join_keys=["user_id"], dtype=Int64)
seller = Entity(name="seller", join_keys=["user_id"], dtype=Int64)
shop = Entity(name="shop", join_keys=["shop_id"], dtype=Int64)
orders = FileSource(name="orders", path="data/orders.parquet")
"""

SINGLE = """
name: user_30d_purchase_count
entity: {key}
source: orders
dtype: Int64
"""


def repo(tmp_path: Path, key: str) -> Path:
    root = write_repo(
        tmp_path / "repo",
        {"entities.py": ENTITIES, "features/purchases.yaml": SINGLE.format(key=key)},
    )
    write_parquet(
        root / "data/orders.parquet",
        {
            "user_id": pa.array([1], pa.int64()),
            "shop_id": pa.array([1], pa.int64()),
            "event_timestamp": pa.array([0], pa.timestamp("us", tz="UTC")),
            "user_30d_purchase_count": pa.array([3], pa.int64()),
        },
    )
    return root


def test_a_single_feature_on_a_shared_join_key_is_refused_naming_both_entities(tmp_path):
    root = repo(tmp_path, "user_id")
    with pytest.raises(DefinitionError) as info:
        load_repo(root)
    text = str(info.value)
    for needle in (
        "features/purchases.yaml#1",
        "'user_30d_purchase_count'",
        "'user_id' is ambiguous",
        "'buyer'",
        "'seller'",
    ):
        assert needle in text, text
    with FeatureStore(root) as fs:
        with pytest.raises(DefinitionError, match="ambiguous"):
            fs.apply()
        assert fs.registry.revision() == 0 and not fs.registry.exists()


def test_naming_the_entity_or_an_unshared_key_still_works(tmp_path):
    for ref, entity in (("buyer", "buyer"), ("seller", "seller"), ("shop_id", "shop")):
        root = repo(tmp_path / ref, ref)
        views = [o for o in load_repo(root).objects if o.kind == "feature_view"]
        assert [v.entity_names for v in views] == [[entity]]  # type: ignore[attr-defined]


def test_resolving_a_shared_key_names_every_entity_that_has_it():
    entities = [
        Entity(name=n, join_keys=keys)
        for n, keys in (("a", ["k"]), ("b", ["k", "r"]), ("c", ["k"]))
    ]
    view = FeatureView(
        name="v", entities=["k"], source="s", schema=[Field(name="f", dtype="Int64")]
    )
    with pytest.raises(DefinitionError, match=r"'k' is ambiguous.*'a', 'b' and 'c'"):
        resolve_entity_refs(view, entities)
