"""Encryption at rest end to end, on the SQLite and Redis online stores: ``encrypt=True``
values are not plaintext in the online store or the offline log (raw bytes read), every read
path gives them back exactly (Python and HTTP online reads, historical retrieval,
materialization from the log, monitoring), rotation keeps every value readable while it
runs and after the old key is gone, and a wrong or missing key is a clear error."""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.contract.backends import online_store_yaml, params
from typer.testing import CliRunner

from parity import FeatureStore
from parity.cli.app import app
from parity.errors import ConfigError, EncryptionError
from parity.governance.keys import status
from parity.offline import log
from repo_utils import write_parquet, write_repo

REDIS_DB = 11  # this module's own database number on the shared local Redis
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
T = NOW - timedelta(hours=1)
TS = pa.timestamp("us", tz="UTC")
REFS = ["people:name", "people:score", "people:seen", "people:qty"]

DEFS = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64, PushSource, String, Timestamp
person = Entity(name="person", join_keys=["person_id"], dtype=Int64)
src = FileSource(name="src", path="data/src.parquet")
push = PushSource(name="push", batch_source=src)
people = FeatureView(name="people", entities=[person], source=push, ttl=timedelta(days=30),
    schema=[Field(name="name", dtype=String, classification="pii", encrypt=True),
            Field(name="score", dtype=Float64, encrypt=True),
            Field(name="seen", dtype=Timestamp, encrypt=True),
            Field(name="qty", dtype=Int64)])
"""


def keyfile(root: Path, active: str, keys: dict[str, str]) -> None:
    (root / "keys.json").write_text(json.dumps({"active": active, "keys": keys}))


def make_repo(root: Path, online: str) -> tuple[Path, dict[str, str]]:
    write_repo(root, {"features.py": DEFS})
    keys = {"k1": base64.b64encode(os.urandom(32)).decode()}
    keyfile(root, "k1", keys)
    (root / "parity.yaml").write_text(
        (root / "parity.yaml").read_text()
        + f"online_store: {online}\nencryption: {{ key_file: keys.json }}\n"
    )
    write_parquet(
        root / "data/src.parquet",
        pa.table(
            {
                "person_id": pa.array([1], pa.int64()),
                "event_timestamp": pa.array([T - timedelta(days=1)], TS),
                "name": ["batch-person"],
                "score": [0.125],
                "seen": pa.array([T], TS),
                "qty": pa.array([7], pa.int64()),
            }
        ),
    )
    return root, keys


@pytest.fixture(params=params("online_store", ["sqlite", "redis"]))
def repo(request, tmp_path):
    online = online_store_yaml(request.param, request, redis_db=REDIS_DB)
    root, keys = make_repo(tmp_path / "repo", online)
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.apply()
    yield root, keys, request.param
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.teardown()


def rows(ids, names, scores, *, at=T):
    return {
        "person_id": list(ids),
        "event_timestamp": [at] * len(ids),
        "name": list(names),
        "score": list(scores),
        "seen": [at] * len(ids),
        "qty": [3] * len(ids),
    }


def raw_online(fs: FeatureStore, kind: str) -> bytes:
    """Every byte the online store holds for the project."""
    if kind == "sqlite":
        path = fs.online.path
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
    prefix = fs.config.online_store.key_prefix + fs.project + ":"
    keys = list(client.scan_iter(match=prefix + "*"))
    assert keys, "nothing stored under the project's prefix"
    return b"".join(v for v in client.mget(keys) if v is not None)


def raw_log(root: Path) -> bytes:
    files = log.log_files(root / "data" / "offline_log")
    assert files
    return b"".join(p.read_bytes() for p in files)


def historical(fs: FeatureStore, ids) -> list[dict]:
    frame = pd.DataFrame({"person_id": list(ids), "event_timestamp": [NOW] * len(ids)})
    return fs.get_historical_features(frame, REFS).to_arrow().to_pylist()


def test_values_at_rest_are_not_plaintext_and_every_path_reads_them(repo):
    root, _, kind = repo
    secret = f"secret-{uuid.uuid4().hex}"
    score = 0.7071067811865476
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.push("push", rows([2], [secret], [score]), to="online_and_offline")
        online = fs.get_online_features(REFS, entities={"person_id": [2]}).to_dict()
        assert online["name"] == [secret] and online["score"] == [score]
        assert online["seen"] == [T] and online["qty"] == [3]
        # not plaintext: the string, nor the float as msgpack (online) or Parquet (log) has it
        at_rest = raw_online(fs, kind)
        assert secret.encode() not in at_rest
        assert struct.pack(">d", score) not in at_rest
        assert b"\x01\x02k1" in at_rest  # sealed values, tagged with their key id
        in_log = raw_log(root)
        assert secret.encode() not in in_log
        assert struct.pack("<d", score) not in in_log
        # historical retrieval reads the log (decrypted) and the batch file alike
        got = {r["person_id"]: r for r in historical(fs, [1, 2])}
        assert got[2]["name"] == secret and got[2]["score"] == score
        assert got[1]["name"] == "batch-person" and got[1]["score"] == 0.125
        # materialization reads the log through the engine and writes sealed values
        fs.teardown()
        fs.materialize(NOW - timedelta(days=3), NOW)
        again = fs.get_online_features(REFS, entities={"person_id": [1, 2]}).to_dict()
        assert again["name"] == ["batch-person", secret]
        assert again["score"] == [0.125, score]
        assert secret.encode() not in raw_online(fs, kind)


def test_the_serving_log_leaves_encrypted_features_out(repo, tmp_path):
    import pyarrow.parquet as pq

    from parity.monitoring.serving_log import FEATURES_KEY, ServingLog

    root, _, _ = repo
    secret = f"secret-{uuid.uuid4().hex}"
    folder = tmp_path / "serving_log"
    served = ServingLog(folder, sample_rate=1.0)
    with FeatureStore(root, clock=lambda: NOW, hooks=[served]) as fs:
        fs.push("push", rows([2], [secret], [0.5]), to="online")
        assert fs.get_online_features(REFS, entities={"person_id": [2]}).to_dict()["name"] == [
            secret
        ]
    served.close()
    files = sorted(folder.rglob("*.parquet"))
    assert files
    for path in files:
        assert secret.encode() not in path.read_bytes()
        table = pq.read_table(path, partitioning=None)
        assert "qty" in table.column_names and table.column("qty").to_pylist() == [3]
        assert not {"name", "score", "seen"} & set(table.column_names)
        assert b"people:qty" in table.schema.metadata[FEATURES_KEY]
        assert b"people:name" not in table.schema.metadata[FEATURES_KEY]


def test_monitoring_reads_plaintext(repo):
    root, _, _ = repo
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.push("push", rows([2, 3], ["a", "b"], [1.0, 3.0]), to="offline")
        offline = fs.profile("people", NOW - timedelta(days=3), NOW, save=False).to_pandas()
        fs.push("push", rows([2, 3], ["a", "b"], [1.0, 3.0]), to="online")
        online = fs.profile("people", online=True, save=False).to_pandas()
    # offline: the batch file's row and the two pushed; online: the two pushed there
    assert offline.set_index("feature").loc["score", "mean"] == pytest.approx(4.125 / 3)
    assert online.set_index("feature").loc["score", "mean"] == pytest.approx(2.0)


@settings(
    deadline=None,
    max_examples=15,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.text(max_size=30), st.floats(allow_nan=False, allow_infinity=False)),
        min_size=1,
        max_size=8,
    )
)
def test_every_value_reads_back_exactly_on_every_path(tmp_path_factory, values):
    root, _ = make_repo(
        tmp_path_factory.mktemp("hyp") / "repo", "{ type: sqlite, path: data/online.db }"
    )
    ids = list(range(10, 10 + len(values)))
    names = [v[0] for v in values]
    scores = [v[1] for v in values]
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.apply()
        fs.push("push", rows(ids, names, scores), to="online_and_offline")
        online = fs.get_online_features(REFS, entities={"person_id": ids}).to_dict()
        assert online["name"] == names and online["score"] == scores
        got = {r["person_id"]: r for r in historical(fs, ids)}
        assert [got[i]["name"] for i in ids] == names
        assert [got[i]["score"] for i in ids] == scores
        fs.teardown()
        fs.materialize(NOW - timedelta(days=3), NOW)
        assert fs.get_online_features(REFS, entities={"person_id": ids}).to_dict() == online
    shutil.rmtree(root)


def test_rotation_keeps_every_value_readable(repo):
    root, keys, _ = repo
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.push("push", rows([2, 3], ["two", "three"], [2.0, 3.0]), to="online_and_offline")
    keys = {**keys, "k2": base64.b64encode(os.urandom(32)).decode()}
    keyfile(root, "k2", keys)  # the new key active, the old one still listed
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.push("push", rows([4], ["four"], [4.0]), to="online_and_offline")
        before = status(fs)
        assert before.values_under("k1") > 0 and before.values_under("k2") > 0
        mixed = fs.get_online_features(REFS, entities={"person_id": [2, 3, 4]}).to_dict()
        assert mixed["name"] == ["two", "three", "four"]
        done = fs.governance.rotate_keys()
        assert done.active == "k2"
        places = {(p.place, p.name): p for p in done.places}
        assert places["online", "people"].examined == 3
        assert places["online", "people"].rewritten == 2  # the k1 records; k2's stayed
        assert places["offline_log", "push"].examined == 2
        assert places["offline_log", "push"].rewritten == 1
        after = status(fs)
        assert after.values_under("k1") == 0
        assert after.values_under("k2") == before.values_under("k1") + before.values_under("k2")
        assert fs.governance.rotate_keys().rewritten == 0  # nothing left to do
    keyfile(root, "k2", {"k2": keys["k2"]})  # the old key gone
    with FeatureStore(root, clock=lambda: NOW) as fs:
        online = fs.get_online_features(REFS, entities={"person_id": [2, 3, 4]}).to_dict()
        assert online == mixed
        got = {r["person_id"]: r["name"] for r in historical(fs, [1, 2, 3, 4])}
        assert got == {1: "batch-person", 2: "two", 3: "three", 4: "four"}


def test_rotation_encrypts_values_stored_before_encrypt_was_set(tmp_path):
    root, _ = make_repo(tmp_path / "repo", "{ type: sqlite, path: data/online.db }")
    plain = (root / "features.py").read_text().replace("encrypt=True", "encrypt=False")
    (root / "features.py").write_text(plain)
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.apply()
        fs.push("push", rows([2], ["was-plain"], [2.5]), to="online_and_offline")
        assert b"was-plain" in raw_log(root)
    (root / "features.py").write_text(DEFS)
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.apply()
        fs.push("push", rows([3], ["sealed"], [3.5]), to="online_and_offline")
        # the log holds a plaintext file and a sealed one: both read
        got = {r["person_id"]: r["name"] for r in historical(fs, [2, 3])}
        assert got == {2: "was-plain", 3: "sealed"}
        # online too: the plaintext value is served until rotation seals it
        legacy = fs.get_online_features(REFS, entities={"person_id": [2, 3]}).to_dict()
        assert legacy["name"] == ["was-plain", "sealed"]
        before = status(fs)
        assert sum(u.plaintext for u in before.usage) > 0
        fs.governance.rotate_keys()
        assert sum(u.plaintext for u in status(fs).usage) == 0
        assert b"was-plain" not in raw_log(root)
        assert b"was-plain" not in raw_online(fs, "sqlite")
        assert fs.get_online_features(REFS, entities={"person_id": [2]}).to_dict()["name"] == [
            "was-plain"
        ]


def test_wrong_or_missing_key_is_a_clear_error(repo):
    root, keys, _ = repo
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.push("push", rows([2], ["two"], [2.0]), to="online_and_offline")
    wrong = base64.b64encode(os.urandom(32)).decode()
    keyfile(root, "k1", {"k1": wrong})
    with FeatureStore(root, clock=lambda: NOW) as fs:
        with pytest.raises(EncryptionError, match=r"key 'k1'.*not the one that sealed it") as err:
            fs.get_online_features(REFS, entities={"person_id": [2]})
        assert "view 'people', encrypted features (name, score, seen)" in str(err.value)
        with pytest.raises(EncryptionError, match="offline log of source 'push'") as err2:
            historical(fs, [2])
        for e in (err, err2):
            assert wrong not in str(e.value) and keys["k1"] not in str(e.value)
    keyfile(root, "k9", {"k9": wrong})
    with (
        FeatureStore(root, clock=lambda: NOW) as fs,
        pytest.raises(EncryptionError, match="sealed with key 'k1', which the keyring"),
    ):
        fs.get_online_features(REFS, entities={"person_id": [2]})
    (root / "keys.json").unlink()
    with FeatureStore(root, clock=lambda: NOW) as fs:
        # a view's records are opened whole: any of its features needs the keys
        for refs in (REFS, ["people:qty"]):
            with pytest.raises(ConfigError, match=r"key_file keys.json.*cannot read"):
                fs.get_online_features(refs, entities={"person_id": [2]})


def test_cli_keys_rotate_and_status(tmp_path):
    root, keys = make_repo(tmp_path / "repo", "{ type: sqlite, path: data/online.db }")
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.apply()
        fs.push("push", rows([2], ["two"], [2.0]), to="online_and_offline")
    keyfile(root, "k2", {**keys, "k2": base64.b64encode(os.urandom(32)).decode()})
    runner = CliRunner()
    shown = runner.invoke(app, ["keys", "status", "--repo", str(root)])
    assert shown.exit_code == 0, shown.output
    assert "active: k2" in shown.output and "people" in shown.output
    for secret in keys.values():
        assert secret not in shown.output
    rotated = runner.invoke(app, ["keys", "rotate", "--repo", str(root)])
    assert rotated.exit_code == 0, rotated.output
    assert "Rotated to key 'k2'" in rotated.output
    assert "2 record(s) or file(s) re-encrypted" in rotated.output
    keyfile(root, "k3", {"k3": base64.b64encode(os.urandom(32)).decode()})
    gone = runner.invoke(app, ["keys", "status", "--repo", str(root)])
    assert gone.exit_code == 3  # values sealed with a key the keyring lacks
    assert "k2" in gone.output


def test_http_reads_decrypt(tmp_path):
    from tests.integration.test_server import Server, columns, online

    root, _ = make_repo(tmp_path / "repo", "{ type: sqlite, path: data/online.db }")
    with FeatureStore(root) as fs:
        fs.apply()
        fs.push("push", rows([2], ["over-http"], [0.5], at=datetime.now(UTC)), to="online")
    srv = Server(root)
    try:
        answer = online(srv, features=REFS, entities={"person_id": [2]})
        got = columns(answer)
        assert got["name"]["values"] == ["over-http"]
        assert got["score"]["values"] == [0.5]
    finally:
        assert srv.stop() == 0, srv.output()


@pytest.mark.parametrize("kind", params("online_store", ["sqlite", "redis"]))
def test_the_sealed_store_keeps_the_key_scan_ability(kind, request, tmp_path):
    # what the scan lists is the contract suite's (tests/contract/test_online_key_scan.py);
    # here: the encrypting wrapper still offers it, so rotation and erase reach every key
    from parity.online.base import OnlineView, RecordBatch, SupportsKeyScan
    from parity.online.encoding import encode_record

    online = online_store_yaml(kind, request, redis_db=REDIS_DB)
    root, _ = make_repo(tmp_path / "repo", online)
    with FeatureStore(root, clock=lambda: NOW) as fs:
        store = fs.online.inner
        assert isinstance(store, SupportsKeyScan) and isinstance(fs.online, SupportsKeyScan)
        a = OnlineView("a", ("id",), ("x",), None)
        keys = [b"i%d" % i for i in range(1_234)]
        records = [encode_record(1, None, {"x": 1}) for _ in keys]
        store.write(a, RecordBatch(list(keys), [1] * len(keys), [None] * len(keys), records))
        assert sorted(fs.online.scan_keys(a)) == sorted(keys)
        store.drop_views(["a"])
        assert list(fs.online.scan_keys(a)) == []


def test_export_gives_the_subject_plaintext_from_every_place(repo, tmp_path):
    """A data subject's export is readable: encrypted values come out decrypted, from the
    online store and the offline log alike."""
    root, _, _ = repo
    secret = f"secret-{uuid.uuid4().hex}"
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.push("push", rows([4], [secret], [0.375]), to="online_and_offline")
        fs.governance.export("person", [4], tmp_path / "subject.json")
    text = (tmp_path / "subject.json").read_text()
    assert "\\u0001\\u0002k1" not in text and "AQJrMQ" not in text  # no sealed value
    doc = json.loads(text)
    places = {p["place"]: p["rows"] for p in doc["places"]}
    assert [r["name"] for r in places["online"]] == [secret]
    assert [r["score"] for r in places["online"]] == [0.375]
    assert [r["name"] for r in places["offline_log"]] == [secret]


def test_erase_keeps_the_other_keys_encrypted_and_readable(repo):
    root, _, _ = repo
    keep, gone = f"keep-{uuid.uuid4().hex}", f"gone-{uuid.uuid4().hex}"
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.push("push", rows([5, 6], [keep, gone], [0.5, 0.25]), to="online_and_offline")
        fs.governance.erase("person", [6])
        got = {r["person_id"]: r for r in historical(fs, [5, 6])}
        assert got[5]["name"] == keep and got[5]["score"] == 0.5
        assert got[6]["name"] is None
        in_log = raw_log(root)
        assert keep.encode() not in in_log and gone.encode() not in in_log
