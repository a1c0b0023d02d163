"""Training snapshots end to end on a scaffolded repo (``parity init``): ``parity snapshot
create | list | show | verify | recreate`` and the store's methods; a snapshot recreated
identical, or not (naming the source file that changed), also after the live definitions
moved on; verify catching an edited and a deleted file; replace and the errors; snapshots in
the lineage graph, in a registry export and import, and reached by erase and restriction."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cli_utils import parity, table_rows
from parity import FeatureStore
from parity.errors import ObjectNotFoundError, SnapshotError
from parity.snapshots.digest import table_digest

PARITY = Path(sys.executable).parent / "parity"
VIEW = "driver_hourly_stats"
REFS = f"{VIEW}:conv_rate,avg_daily_trips,driver_rating:driver_rating"
ENTITIES = "data/driver_entities.parquet"
SOURCE = "data/driver_stats.parquet"
OLD_TTL = "ttl=timedelta(days=1)"

ON_DEMAND = """

from parity import on_demand_feature_view


@on_demand_feature_view(
    sources=[driver_hourly_stats[["conv_rate"]]],
    schema=[Field(name="conv_pct", dtype=Float64)],
)
def conv_pct(row):
    return {"conv_pct": None if row["conv_rate"] is None else row["conv_rate"] * 100}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    parity("init", "shop", "--dir", path)
    parity("apply", "--repo", path)
    return path


def create(repo: Path, name: str = "train_v1", *extra: str, code: int = 0) -> str:
    """``parity snapshot create`` of REFS; its stdout and stderr."""
    args = ["snapshot", "create", name, "--entities", repo / ENTITIES, "--features", REFS]
    return output(parity(*args, *extra, "--repo", repo, code=code))


def snapshot(repo: Path, name: str = "train_v1"):
    with FeatureStore(repo) as store:
        return store.get_snapshot(name)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new))


def output(result) -> str:
    return result.stdout + result.stderr


# -- create, list, show, verify, recreate -----------------------------------------------------


def test_a_snapshot_is_stored_content_addressed_and_recreated_identical(repo: Path):
    out = create(repo, "train_v1", "--description", "ranker v1")
    snap = snapshot(repo)
    assert f"Snapshot 'train_v1': {snap.rows} rows, 3 features, revision 1" in out
    path = repo / snap.path
    assert path.parent == repo / "data" / "snapshots" and path.name == f"{snap.digest}.parquet"
    stored = pq.read_table(path)
    assert table_digest(stored).sha256 == snap.digest  # the name is the rows' digest
    with FeatureStore(repo) as store:
        joined = store.get_historical_features(
            str(repo / ENTITIES), [f"{VIEW}:conv_rate", f"{VIEW}:avg_daily_trips",
                                   "driver_rating:driver_rating"],
        ).to_arrow()  # fmt: skip
    assert stored.equals(joined)
    assert snap.features == (f"{VIEW}:conv_rate", f"{VIEW}:avg_daily_trips",
                             "driver_rating:driver_rating")  # fmt: skip
    m = snap.manifest
    assert {(o["kind"], o["name"], o["version"]) for o in m["objects"]} == {
        ("feature_view", VIEW, "1.0.0"),
        ("feature_view", "driver_rating", "1.0.0"),
        ("entity", "driver", "1.0.0"),
        ("source", "driver_stats_source", "1.0.0"),
    }
    (source,) = m["sources"]
    (file,) = source["files"]
    assert file["path"] == SOURCE and file["how"] == "parquet-footer" and file["rows"] > 0
    assert file["size"] == (repo / SOURCE).stat().st_size
    entities = pq.read_table(repo / ENTITIES)
    assert m["entities"]["sha256"] == table_digest(entities).sha256
    assert m["entities"]["columns"] == entities.column_names
    assert [p["feature"] for p in m["profile"]] == ["conv_rate", "avg_daily_trips",
                                                     "driver_rating"]  # fmt: skip
    assert m["profile"][0]["rows"] == snap.rows

    listed = {r[0]: r for r in table_rows(parity("snapshot", "list", "--repo", repo).stdout)}
    assert listed["train_v1"][1:4] == [str(snap.rows), "3", "1"]
    assert listed["train_v1"][6] == snap.digest[:12] and listed["train_v1"][7] == "ranker v1"
    shown = parity("snapshot", "show", "train_v1", "--repo", repo).stdout
    assert snap.digest in shown and SOURCE in shown and "registry revision: 1" in shown
    doc = json.loads(parity("snapshot", "show", "train_v1", "--json", "--repo", repo).stdout)
    assert doc["digest"] == snap.digest and doc["manifest"]["objects"] == m["objects"]

    assert "verified" in parity("snapshot", "verify", "train_v1", "--repo", repo).stdout
    out = parity("snapshot", "recreate", "train_v1", "--repo", repo).stdout
    assert "identical" in out and "NOT" not in out


def test_a_changed_source_file_makes_recreate_report_not_identical_naming_it(repo: Path):
    create(repo)
    snap = snapshot(repo)
    stored = pq.read_table(repo / snap.path)
    first = next(r for r in stored.to_pylist() if r["conv_rate"] is not None)
    source = pq.read_table(repo / SOURCE)
    rows = source.to_pylist()
    (hit,) = [  # the source row the join picked for that entity row
        i for i, r in enumerate(rows)
        if r["driver_id"] == first["driver_id"] and r["conv_rate"] == first["conv_rate"]
    ]  # fmt: skip
    conv = source.column("conv_rate").to_pylist()
    conv[hit] = 123.0  # one value, and a new maximum: the footer's statistics move too
    i = source.schema.get_field_index("conv_rate")
    pq.write_table(source.set_column(i, "conv_rate", pa.array(conv, pa.float64())), repo / SOURCE)

    result = parity("snapshot", "recreate", "train_v1", "--repo", repo, code=1)
    out = output(result)
    assert "NOT identical" in out and "values changed in: conv_rate" in out
    assert f"changed: {SOURCE} (source driver_stats_source)" in out
    with FeatureStore(repo) as store:
        done = store.recreate_snapshot("train_v1")
    assert not done.identical and done.expected == snap.digest
    (change,) = done.changes
    assert (change.path, change.change) == (SOURCE, "changed")
    assert "footer (row-group statistics) differs" in change.detail
    assert snapshot(repo) == snap  # recreate changes nothing
    parity("snapshot", "verify", "train_v1", "--repo", repo)  # the snapshot itself is intact


def test_verify_names_an_edited_and_a_missing_file(repo: Path):
    create(repo)
    snap = snapshot(repo)
    path = repo / snap.path
    table = pq.read_table(path)
    i = table.schema.get_field_index("avg_daily_trips")
    trips = pc.fill_null(table.column(i), 0).to_pylist()
    trips[0] += 1
    pq.write_table(table.set_column(i, "avg_daily_trips", pa.array(trips, pa.int64())), path)
    out = output(parity("snapshot", "verify", "train_v1", "--repo", repo, code=1))
    assert "does not verify" in out and "values changed in: avg_daily_trips" in out
    with FeatureStore(repo) as store:
        check = store.verify_snapshot("train_v1")
        assert not check.ok and check.found not in (None, snap.digest)
        with pytest.raises(SnapshotError, match=r"its file .* changed"):
            store.recreate_snapshot("train_v1")
    path.unlink()
    out = output(parity("snapshot", "verify", "train_v1", "--repo", repo, code=1))
    assert f"the file {snap.path} is missing" in out
    out = output(parity("snapshot", "recreate", "train_v1", "--repo", repo, code=1))
    assert f"cannot be recreated: the file {snap.path} is missing" in out


def test_recreate_uses_the_definitions_of_the_snapshots_revision(repo: Path):
    create(repo)
    snap = snapshot(repo)
    # the live registry moves on: a one-second ttl nulls nearly every value
    edit(repo / "features.py", OLD_TTL, "ttl=timedelta(seconds=1)")
    parity("apply", "--allow-breaking", "--repo", repo)
    with FeatureStore(repo) as store:
        assert store.registry.revision() == 2
        refs = list(snap.features)
        live = store.get_historical_features(str(repo / ENTITIES), refs).to_arrow()
        assert table_digest(live).sha256 != snap.digest  # the live definitions differ
        done = store.recreate_snapshot("train_v1")
    assert done.identical and done.revision == 1 and not done.changes
    out = parity("snapshot", "recreate", "train_v1", "--repo", repo).stdout
    assert "recreated at revision 1" in out and "identical" in out


def test_replace_and_the_errors(repo: Path):
    create(repo)
    first = snapshot(repo)
    out = create(repo, code=1)
    assert "snapshot 'train_v1' already exists" in out and "--replace" in out
    assert snapshot(repo) == first
    parity("snapshot", "create", "train_v1", "--entities", repo / ENTITIES, "--features",
           f"{VIEW}:conv_rate", "--replace", "--repo", repo)  # fmt: skip
    second = snapshot(repo)
    assert second.digest != first.digest and second.features == (f"{VIEW}:conv_rate",)
    assert not (repo / first.path).exists() and (repo / second.path).exists()

    for command in ("show", "verify", "recreate"):
        out = output(parity("snapshot", command, "train_v2", "--repo", repo, code=1))
        assert "snapshot 'train_v2' not found" in out and "train_v1" in out
    with FeatureStore(repo) as store:
        with pytest.raises(ObjectNotFoundError):
            store.get_snapshot("nope")
        with pytest.raises(SnapshotError, match="snapshot name"):
            store.create_snapshot("bad name", str(repo / ENTITIES), [f"{VIEW}:conv_rate"])
    out = output(parity("snapshot", "create", "x", "--entities", repo / ENTITIES,
                        "--features", f"{VIEW}:nope", "--repo", repo, code=1))  # fmt: skip
    assert "nope" in out
    assert not (repo / "data" / "snapshots" / "x").exists()

    (repo / SOURCE).unlink()  # the source file it was made from, deleted
    out = output(parity("snapshot", "recreate", "train_v1", "--repo", repo, code=1))
    assert "source files it was made from were deleted" in out and SOURCE in out
    assert snapshot(repo) == second  # and nothing changed
    parity("snapshot", "verify", "train_v1", "--repo", repo)


# -- on-demand functions -----------------------------------------------------------------------


def test_on_demand_code_hashes_are_kept_and_a_changed_function_refuses_recreate(repo: Path):
    features = repo / "features.py"
    features.write_text(features.read_text() + ON_DEMAND)
    parity("apply", "--repo", repo)
    parity("snapshot", "create", "odfv", "--entities", repo / ENTITIES, "--features",
           "conv_pct:conv_pct", "--repo", repo)  # fmt: skip
    snap = snapshot(repo, "odfv")
    (fn,) = snap.manifest["functions"]
    with FeatureStore(repo) as store:
        odfv = store.get_on_demand_feature_view("conv_pct")
    assert fn == {"view": "conv_pct", "function": "features.py:conv_pct",
                  "code_hash": odfv.udf.source_hash}  # fmt: skip
    kinds = {o["kind"] for o in snap.manifest["objects"]}
    assert {"on_demand_feature_view", "feature_view", "entity", "source"} <= kinds
    # a fresh process imports the repo file: the same code, the same rows
    cmd = [str(PARITY), "snapshot", "recreate", "odfv", "--repo", str(repo)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    edit(features, "* 100}", "* 1000}")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "changed since it was applied" in done.stderr
    assert f"made with code hash {odfv.udf.source_hash[:12]}" in done.stderr


# -- lineage, export and import ----------------------------------------------------------------


def test_lineage_shows_snapshots_reading_the_features_they_hold(repo: Path):
    create(repo)
    rows = {r[3]: r for r in table_rows(parity("lineage", "train_v1", "--repo", repo).stdout)}
    assert rows["train_v1"][:3] == ["●", "0", "snapshot"]
    assert rows[f"{VIEW}:conv_rate"][:3] == ["↑", "1", "feature"]
    assert rows[f"{VIEW}:conv_rate"][5] == "snapshot"
    assert rows["driver_stats_source.conv_rate"][:3] == ["↑", "2", "column"]
    out = parity("lineage", f"{VIEW}:conv_rate", "--downstream", "--repo", repo).stdout
    rows = {r[3]: r for r in table_rows(out)}
    assert rows["train_v1"][:3] == ["↓", "1", "snapshot"]
    assert "train_v1" not in parity("lineage", f"{VIEW}:acc_rate", "-d", "--repo", repo).stdout
    with FeatureStore(repo) as store:
        graph = store.lineage("snapshot:train_v1", "upstream", 1)
    assert graph.nodes["snapshot:train_v1"]["kind"] == "snapshot"
    assert set(graph.predecessors("snapshot:train_v1")) == {
        f"feature:{VIEW}.conv_rate", f"feature:{VIEW}.avg_daily_trips",
        "feature:driver_rating.driver_rating",
    }  # fmt: skip


def test_a_registry_export_carries_snapshots_and_the_import_restores_them(
    repo: Path, tmp_path: Path
):
    from datetime import UTC, datetime

    from parity.registry.transfer import export_registry

    create(repo)
    snap = snapshot(repo)
    exported = tmp_path / "registry.json"
    parity("registry", "export", "--out", exported, "--repo", repo)
    doc = json.loads(exported.read_text())
    (row,) = doc["tables"]["parity_snapshots"]
    assert row["name"] == "train_v1" and row["digest"] == snap.digest
    assert doc["header"]["counts"]["parity_snapshots"] == 1

    restored = tmp_path / "restored"
    restored.mkdir()
    for name in ("parity.yaml", "features.py", "features.yaml"):
        shutil.copy(repo / name, restored / name)
    shutil.copytree(repo / "data", restored / "data")  # the snapshots' files travel here
    (restored / "data" / "registry.db").unlink()
    parity("registry", "import", exported, "--repo", restored)
    assert snapshot(restored) == snap
    parity("snapshot", "verify", "train_v1", "--repo", restored)
    assert "identical" in parity("snapshot", "recreate", "train_v1", "--repo", restored).stdout
    at = datetime(2026, 1, 2, tzinfo=UTC)
    with FeatureStore(repo) as a, FeatureStore(restored) as b:
        export_registry(a.registry, tmp_path / "a.json", exported_at=at)
        export_registry(b.registry, tmp_path / "b.json", exported_at=at)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


# -- erase and restriction -----------------------------------------------------------------------


def test_erase_rewrites_snapshots_as_new_files_that_verify(repo: Path):
    create(repo)
    create(repo, "same_rows")  # the same content: one file, two manifests
    before = snapshot(repo)
    assert snapshot(repo, "same_rows").digest == before.digest
    held = pq.read_table(repo / before.path).column("driver_id").to_pylist()
    hits = held.count(1001)
    assert hits

    out = parity("erase", "--entity", "driver", "--keys", "1001", "--dry-run", "--repo", repo)
    rows = {(r[0], r[1]): r for r in table_rows(out.stdout)}
    assert rows[("training_snapshot", "train_v1")][2] == str(hits)
    assert snapshot(repo) == before  # a dry run changes nothing

    out = parity("erase", "--entity", "driver", "--keys", "1001", "--repo", repo).stdout
    rows = {(r[0], r[1]): r for r in table_rows(out)}
    assert rows[("training_snapshot", "train_v1")][2:5] == [str(hits), "1", "erased"]
    assert rows[("training_snapshot", "same_rows")][2] == str(hits)
    after = snapshot(repo)
    assert after.rows == before.rows - hits and after.digest != before.digest
    assert snapshot(repo, "same_rows").digest == after.digest
    assert (repo / after.path).name == f"{after.digest}.parquet"
    assert not (repo / before.path).exists()  # no snapshot holds the old file
    kept = pq.read_table(repo / after.path)
    assert 1001 not in kept.column("driver_id").to_pylist()
    (note,) = after.erasures
    assert note["entity"] == "driver" and note["rows"] == hits and note["keys"] == 1
    assert note["previous_digest"] == before.digest and "1001" not in json.dumps(note)
    assert after.profile[0]["rows"] == after.rows
    parity("snapshot", "verify", "train_v1", "--repo", repo)
    assert "identical" in parity("snapshot", "recreate", "train_v1", "--repo", repo).stdout

    with FeatureStore(repo) as store:  # a data subject's export reaches snapshots too
        done = store.governance.export("driver", [1002], repo / "driver-1002.json")
    doc = json.loads((repo / "driver-1002.json").read_text())
    found = {p["target"]: p["rows"] for p in doc["places"] if p["place"] == "training_snapshot"}
    assert len(found["train_v1"]) == held.count(1002) == len(found["same_rows"])
    assert {r["driver_id"] for r in found["train_v1"]} == {1002}
    assert done.rows >= held.count(1002)


def test_restricted_keys_are_left_out_of_new_snapshots(repo: Path):
    parity("restrict", "--entity", "driver", "--keys", "1002", "--repo", repo)
    create(repo)
    snap = snapshot(repo)
    entities = pq.read_table(repo / ENTITIES).column("driver_id").to_pylist()
    held = pq.read_table(repo / snap.path).column("driver_id").to_pylist()
    assert entities.count(1002) and 1002 not in held
    assert len(held) == len(entities) - entities.count(1002)
    assert snap.manifest["entities"]["excluded_restricted"] == entities.count(1002)
    out = parity("snapshot", "show", "train_v1", "--repo", repo).stdout
    assert f"{entities.count(1002)} of restricted keys left out" in out


def test_with_auth_restricted_keys_stay_out_unless_admin_and_listings_follow_describe(
    repo: Path,
):
    from parity import PermissionDeniedError
    from parity.governance import tokens

    (repo / "roles.yaml").write_text(
        "roles:\n"
        "  - {name: trainer, permissions: [{actions: [describe, read_offline]}]}\n"
        "  - {name: outsider, permissions: [{actions: [describe], kinds: [feature_view],"
        " names: [driver_profile]}]}\n"
    )
    with (repo / "parity.yaml").open("a") as f:
        f.write("auth: {enabled: true}\n")
    tokens.forget_cached()
    root = FeatureStore(repo).governance.create_token("root", ["admin"]).token
    with FeatureStore(repo, principal=root) as admin:
        admin.apply()
        trainer = admin.governance.create_token("ann", ["trainer"]).token
        outsider = admin.governance.create_token("bob", ["outsider"]).token
        admin.governance.restrict("driver", [1002], reason="ticket 7")
        everything = admin.create_snapshot("as_admin", str(repo / ENTITIES), [f"{VIEW}:conv_rate"])
    entities = pq.read_table(repo / ENTITIES).column("driver_id").to_pylist()
    assert everything.rows == len(entities)  # admin: restricted keys included
    with FeatureStore(repo, principal=trainer) as store:
        snap = store.create_snapshot("as_trainer", str(repo / ENTITIES), [f"{VIEW}:conv_rate"])
        assert snap.created_by == "ann"
        assert snap.manifest["entities"]["excluded_restricted"] == entities.count(1002)
        assert {s.name for s in store.list_snapshots()} == {"as_admin", "as_trainer"}
    held = pq.read_table(repo / snap.path).column("driver_id").to_pylist()
    assert 1002 not in held and len(held) == len(entities) - entities.count(1002)
    with FeatureStore(repo, principal=outsider) as store:
        assert store.list_snapshots() == []
        with pytest.raises(PermissionDeniedError):
            store.get_snapshot("as_trainer")
        with pytest.raises(PermissionDeniedError):
            store.verify_snapshot("as_trainer")
