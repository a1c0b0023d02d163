"""``store.governance.export`` and ``parity export``: everything Parity holds about some keys
(online values, offline-log rows, serving-log rows, batch source rows), exactly those keys'
rows, in JSON or Parquet."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from erase_repo import NOW, make_repo

from cli_utils import parity
from parity import FeatureStore
from parity.errors import GovernanceError


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("export") / "repo")


def by_place(doc: dict) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for part in doc["places"]:
        target = "serving" if part["place"] == "serving_log" else part["target"]
        out.setdefault((part["place"], target), []).extend(part["rows"])
    return out


def test_json_holds_every_place_and_only_those_keys(repo: Path, tmp_path: Path):
    with FeatureStore(repo, clock=lambda: NOW) as store:
        result = store.governance.export("user", [2, 3], tmp_path / "subject.json")
    doc = json.loads((tmp_path / "subject.json").read_text())
    assert doc["entity"] == "user" and doc["keys"] == [{"user_id": 2}, {"user_id": 3}]
    assert doc["exported_at"] == NOW.isoformat()
    parts = by_place(doc)
    for rows in parts.values():
        assert {r["user_id"] for r in rows} <= {2, 3}
    online = parts[("online", "user_stats")]
    assert sorted((r["user_id"], r["amount"]) for r in online) == [(2, 23.0), (3, 35.0)]
    assert online[0]["event_timestamp"] == (NOW - timedelta(hours=1)).isoformat()
    pairs = {(r["user_id"], r["merchant_id"]) for r in parts[("online", "user_merchant")]}
    assert pairs == {(u, m) for u in (2, 3) for m in ("m1", "m2")}
    assert len(parts[("offline_log", "events")]) == 8  # 2 pushes x 2 users x 2 merchants
    assert len(parts[("serving_log", "serving")]) == 6
    assert len(parts[("batch_source", "events_file")]) == 4
    profiles = parts[("batch_source", "profiles")]
    assert sorted(r["city"] for r in profiles) == ["city 2"] * 2 + ["city 3"] * 2
    assert result.rows == sum(len(r) for r in parts.values()) == 2 + 4 + 8 + 6 + 4 + 4
    assert result.format == "json"


def test_parquet_is_one_typed_table_with_the_same_rows(repo: Path, tmp_path: Path):
    with FeatureStore(repo, clock=lambda: NOW) as store:
        as_json = store.governance.export("user", [1], tmp_path / "a.json")
        as_parquet = store.governance.export("user", [1], tmp_path / "a.data", format="parquet")
    table = pq.read_table(tmp_path / "a.data")
    assert as_parquet.format == "parquet" and table.num_rows == as_json.rows
    assert [(c.place, c.target, c.rows) for c in as_parquet.counts] == [
        (c.place, c.target, c.rows) for c in as_json.counts
    ]
    online = table.filter(pc.equal(table["__place"], "online"))
    stats = online.column("online.user_stats.amount").drop_null().to_pylist()
    assert stats == [10.0 + 1]  # user 1's newest event, second merchant (see erase_repo.rows)
    assert str(table.schema.field("offline_log.events.event_timestamp").type).startswith(
        "timestamp"
    )


def test_bad_format_and_bad_keys_write_nothing(repo: Path, tmp_path: Path):
    with FeatureStore(repo, clock=lambda: NOW) as store:
        with pytest.raises(GovernanceError, match="export format 'xml': use json or parquet"):
            store.governance.export("user", [1], tmp_path / "a.xml")
        with pytest.raises(GovernanceError, match="is 'x' \\(str\\)"):
            store.governance.export("user", ["x"], tmp_path / "a.json")
    assert list(tmp_path.iterdir()) == []


def test_the_cli_writes_the_file(repo: Path, tmp_path: Path):
    out = tmp_path / "u4.json"
    result = parity("export", "--entity", "user", "--keys", "4", "--out", out, "-r", repo)
    assert f"to {out} (json)" in result.stdout
    assert json.loads(out.read_text())["keys"] == [{"user_id": 4}]
    assert isinstance(datetime.fromisoformat(json.loads(out.read_text())["exported_at"]), datetime)
