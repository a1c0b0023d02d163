"""The key-listing ability (``SupportsKeyScan``, what erase uses for views keyed by several
entities): every store that has it lists exactly the keys a view holds, each once, and none
of another view's or another project's. Runs on every store in ``backends.ONLINE_STORES``
that has the ability; a store without it is a marked gap (erase then finds such keys in the
offline rows, tests/integration/test_governance_erase.py)."""

from __future__ import annotations

import pytest
from backends import ONLINE_STORES, online_store_yaml, params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity import FeatureStore
from parity.online.base import OnlineView, RecordBatch, SupportsKeyScan
from parity.online.encoding import encode_key, encode_record
from repo_utils import write_repo

REDIS_DB = 9

VIEWS = [
    OnlineView("pairs", ("user_id", "merchant_id"), ("x",), None),
    OnlineView("pairs_2", ("user_id", "merchant_id"), ("x",), None),  # a name it prefixes
]


@pytest.fixture(scope="module", params=params("online_key_scan", ONLINE_STORES))
def online(request, tmp_path_factory):
    def make(project: str) -> FeatureStore:
        root = write_repo(tmp_path_factory.mktemp(f"scan_{request.param}"), {}, project=project)
        cfg = online_store_yaml(request.param, request, redis_db=REDIS_DB)
        (root / "parity.yaml").write_text(
            (root / "parity.yaml").read_text() + f"online_store: {cfg}\n"
        )
        return FeatureStore(root)

    mine, other = make("scan_a"), make("scan_b")
    mine.online.setup(VIEWS)
    other.online.setup(VIEWS)
    assert isinstance(mine.online, SupportsKeyScan)
    yield mine.online, other.online
    for s in (mine, other):
        s.online.drop_views([v.name for v in VIEWS])
        s.close()


def batch(keys: list[bytes]) -> RecordBatch:
    return RecordBatch(
        keys, [1] * len(keys), [None] * len(keys), [encode_record(1, None, {"x": 1.0})] * len(keys)
    )


key_values = st.tuples(st.integers(-3, 3), st.text(alphabet="ab*?[]\x1f", max_size=3))


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    here=st.sets(key_values, max_size=8),
    there=st.sets(key_values, max_size=4),
)
def test_scan_lists_exactly_the_views_keys(online, here, there):
    store, other_project = online
    pairs, pairs_2 = VIEWS
    store.drop_views(["pairs", "pairs_2"])
    other_project.drop_views(["pairs"])
    mine = [encode_key(list(k), pairs.join_keys) for k in here]
    theirs = [encode_key(list(k), pairs.join_keys) for k in there]
    store.write(pairs, batch(mine))
    store.write(pairs_2, batch(theirs))
    other_project.write(pairs, batch(theirs))
    listed = list(store.scan_keys(pairs))
    assert sorted(listed) == sorted(mine)  # each once, nothing of pairs_2 or project b
    assert sorted(store.scan_keys(pairs_2)) == sorted(theirs)
