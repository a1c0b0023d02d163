"""Discovery on a scaffolded repo (``parity init``): ``parity search`` and its filters; usage
counted from Python reads (online and historical) and from HTTP reads, written by the
feature server on its interval and at shutdown (its warm-up not counted); ``parity describe``
showing it; ``parity unused --days``; with auth on, only what the caller may describe; and
all of it on a PostgreSQL registry, where two writers add their counts at once."""

from __future__ import annotations

import getpass
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from test_server import Server, online, wait_for

from cli_utils import parity, table_rows
from parity import FeatureStore, PermissionDeniedError
from parity.governance import tokens

POSTGRES_URL = os.environ.get(
    "PARITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
VIEW = "driver_hourly_stats"
SERVICE = "driver_activity"
ROLES = """
kind: role
name: ranking_reader
permissions:
  - {actions: [describe, read_online], kinds: [feature_view], tags: {team: ranking}}
"""


def configure(repo: Path, **sections: object) -> None:
    """Set top-level sections of the repo's parity.yaml."""
    path = repo / "parity.yaml"
    config = yaml.safe_load(path.read_text())
    config.update(sections)
    path.write_text(yaml.safe_dump(config))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    parity("init", "shop", "--dir", path)
    parity("apply", "--repo", path)
    return path


def entity_frame(repo: Path) -> pd.DataFrame:
    return pd.read_parquet(repo / "data" / "driver_entities.parquet")


def python_reads(repo: Path, principal: str = "alice", clock: datetime | None = None) -> int:
    """Online reads (two of two features, one through the service) and one historical read
    as ``principal``; returns the historical read's rows."""
    now = None if clock is None else (lambda: clock)
    with FeatureStore(repo, principal=principal, clock=now) as store:
        refs = [f"{VIEW}:conv_rate", f"{VIEW}:avg_daily_trips"]
        store.get_online_features(refs, entities={"driver_id": [1001, 1002]})
        store.get_online_features(refs, entities={"driver_id": [1003]})
        store.get_online_features(SERVICE, entities={"driver_id": [1001]})
        frame = entity_frame(repo)
        return store.get_historical_features(frame, [f"{VIEW}:conv_rate"]).to_arrow().num_rows


# -- search ---------------------------------------------------------------------------------


def test_search_ranks_filters_and_prints_json(repo: Path) -> None:
    rows = table_rows(parity("search", "conv", "--repo", repo).stdout)
    assert rows[0][:2] == ["feature view", VIEW] and rows[0][3] == "conv_rate"
    assert rows[1][:2] == ["feature service", SERVICE]
    assert "driver_hourly_stats:conv_rate" in rows[1][3]

    rows = table_rows(parity("search", "share offers", "--repo", repo).stdout)
    assert [r[1] for r in rows] == [VIEW]  # the feature's description: "Share of offers..."
    rows = table_rows(parity("search", "driver", "--kind", "service", "--repo", repo).stdout)
    assert [r[:2] for r in rows] == [["feature service", SERVICE]]
    rows = table_rows(parity("search", "--tag", "team=ranking", "--repo", repo).stdout)
    assert [r[1] for r in rows] == [VIEW]
    rows = table_rows(parity("search", "driver", "--owner", "data-eng", "--repo", repo).stdout)
    assert [r[1] for r in rows] == ["driver_stats_source"]
    assert len(table_rows(parity("search", "driver", "-n", "2", "--repo", repo).stdout)) == 2

    found = json.loads(parity("search", "rating stars", "--json", "--repo", repo).stdout)
    assert found[0]["name"] == "driver_rating" and found[0]["kind"] == "feature_view"
    assert "**stars**" in found[0]["snippet"] and found[0]["features"] == ["driver_rating"]
    assert "Nothing registered matches" in parity("search", "zebra", "--repo", repo).stdout


def test_search_refuses_what_it_cannot_do(repo: Path) -> None:
    assert "give words" in parity("search", "--repo", repo, code=2).stderr
    assert (
        "roles are not searched" in parity("search", "x", "-k", "role", "-r", repo, code=2).stderr
    )
    assert "KEY=VALUE" in parity("search", "x", "--tag", "team", "--repo", repo, code=2).stderr
    missing = parity("search", "x", "--repo", repo.parent / "nowhere", code=1)
    assert "does not exist" in missing.stderr


def test_search_sees_a_new_revision(repo: Path) -> None:
    with FeatureStore(repo) as store:
        assert store.search("loyalty") == []
        (repo / "loyalty.yaml").write_text(
            "kind: feature_view\nname: loyalty_points\nentities: [driver]\n"
            "source: driver_stats_source\nschema: [{name: conv_rate, dtype: Float64}]\n"
            "description: Points drivers earn.\n"
        )
        store.apply()
        assert [h.name for h in store.search("loyalty")] == ["loyalty_points"]


def test_with_auth_on_search_returns_only_what_the_caller_may_describe(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "roles.yaml").write_text(ROLES)
    with (repo / "parity.yaml").open("a") as f:
        f.write("auth: {enabled: true}\n")
    monkeypatch.delenv("PARITY_TOKEN", raising=False)
    tokens.forget_cached()
    admin = parity("token", "create", "-p", "root", "--role", "admin", "--repo", repo)
    monkeypatch.setenv("PARITY_TOKEN", admin.stdout.split()[-1])
    parity("apply", "--repo", repo)
    everything = {r[1] for r in table_rows(parity("search", "driver", "--repo", repo).stdout)}
    assert {VIEW, "driver_profile", SERVICE, "driver"} <= everything
    reader = parity("token", "create", "-p", "bob", "--role", "ranking_reader", "--repo", repo)
    monkeypatch.setenv("PARITY_TOKEN", reader.stdout.split()[-1])

    shown = {r[1] for r in table_rows(parity("search", "driver", "--repo", repo).stdout)}
    assert shown == {VIEW}
    with FeatureStore(repo) as store:
        assert [h.name for h in store.search("driver")] == [VIEW]
        assert {u.view for u in store.unused(90)} == {VIEW}  # only views bob may describe
        with pytest.raises(PermissionDeniedError, match="may not describe"):
            store.usage("driver_profile")
        assert store.usage(VIEW).reads == 0


# -- usage from Python reads ------------------------------------------------------------------


def test_python_reads_are_counted_and_describe_shows_them(repo: Path) -> None:
    rows = python_reads(repo, "alice")
    python_reads(repo, "bob")
    with FeatureStore(repo) as store:
        report = store.usage(VIEW)
        assert (report.reads_online, report.keys_online) == (6, 8)
        assert (report.reads_offline, report.rows_offline) == (2, 2 * rows)
        consumers = {c.consumer: c for c in report.consumers}
        assert set(consumers) == {"alice", "bob", f"service:{SERVICE}"}
        assert (consumers["alice"].reads_online, consumers["alice"].reads_offline) == (2, 1)
        assert consumers[f"service:{SERVICE}"].reads_online == 2
        features = {f.feature: f for f in report.features}
        assert features["conv_rate"].reads_online == 6 and features["conv_rate"].reads_offline == 2
        assert "acc_rate" not in features
        service = store.usage(SERVICE)
        assert [(c.consumer, c.reads) for c in service.consumers] == [("alice", 1), ("bob", 1)]
        assert store.usage("driver_rating").reads_online == 2  # through the service
        assert store.usage("driver").reads == 0  # an entity: nothing counted

    out = parity("describe", VIEW, "--repo", repo).stdout
    assert "usage: 6 reads online (8 keys), 2 offline" in out
    assert "top consumers: alice (3), bob (3), service:driver_activity (2)" in out
    assert "reads by feature: conv_rate 8, avg_daily_trips 6" in out
    assert "never read: acc_rate" in out
    out = parity("describe", SERVICE, "--repo", repo).stdout
    assert "usage: 2 reads online (2 keys)" in out and "alice (1), bob (1)" in out
    assert "usage:" not in parity("describe", "driver", "--repo", repo).stdout
    profile = parity("describe", "driver_profile", "--repo", repo).stdout
    assert "usage: no reads recorded" in profile


CHECKED = """
from parity import Field, Float64, Int64, RequestSource, on_demand_feature_view

request = RequestSource(name="check_request", schema=[Field(name="boom", dtype=Int64)])


@on_demand_feature_view(sources=["driver_hourly_stats:conv_rate", request],
                        schema=[Field(name="checked", dtype=Float64)])
def checked(row):
    if row["boom"]:
        raise ValueError("boom")
    return {"checked": 1.0}
"""


def test_failed_reads_are_not_counted_and_on_demand_reads_are(repo: Path) -> None:
    from parity import TransformationError

    (repo / "checked.py").write_text(CHECKED)
    parity("apply", "--repo", repo)
    with FeatureStore(repo, principal="alice") as store:
        for boom in (0, 0, 1):
            entities = {"driver_id": [1001, 1002], "boom": [boom, boom]}
            if boom:
                with pytest.raises(TransformationError):
                    store.get_online_features(["checked:checked"], entities=entities)
            else:
                store.get_online_features(["checked:checked"], entities=entities)
        with pytest.raises(Exception, match="lack"):
            store.get_online_features([f"{VIEW}:conv_rate"], entities={"other": [1]})
        report = store.usage("checked")
        assert report.kind == "on_demand_feature_view"
        assert (report.reads_online, report.keys_online) == (2, 4)
        assert [(f.feature, f.reads_online) for f in report.features] == [("checked", 2)]
        assert store.usage(VIEW).reads == 0  # read only for the on-demand view's input


def test_monitoring_reads_are_not_counted(repo: Path) -> None:
    parity("materialize-incremental", "now", "--repo", repo)
    parity("profile", VIEW, "--online", "--repo", repo)
    with FeatureStore(repo) as store:
        assert store.usage(VIEW).reads == 0


def test_usage_off_counts_nothing(repo: Path) -> None:
    configure(repo, usage={"enabled": False})
    python_reads(repo)
    with FeatureStore(repo) as store:
        assert store.usage(VIEW).reads == 0


# -- usage from HTTP reads --------------------------------------------------------------------


def test_the_server_writes_usage_on_its_interval_and_at_shutdown(repo: Path) -> None:
    user = getpass.getuser()
    configure(repo, usage={"flush_seconds": 0.2})
    server = Server(repo)
    try:
        wait_for(lambda: server.client.get("/ready").status_code == 200, "ready", server.output)
        for _ in range(3):
            online(server, feature_service=SERVICE, entities={"driver_id": [1001, 1002]})
        for _ in range(2):
            online(server, features=[f"{VIEW}:conv_rate"], entities={"driver_id": [1003]})
        with FeatureStore(repo) as store:  # written while the server runs: the interval
            wait_for(lambda: store.usage(VIEW).reads_online == 5, "5 reads", server.output)
            report = store.usage(VIEW)  # exactly 5: the warm-up's sample reads not counted
            assert {c.consumer: c.reads for c in report.consumers} == {
                f"service:{SERVICE}": 3,
                user: 2,
            }
            assert report.keys_online == 8
            assert [(c.consumer, c.reads) for c in store.usage(SERVICE).consumers] == [(user, 3)]
    finally:
        assert server.stop() == 0

    configure(repo, usage={"flush_seconds": 3600})  # nothing before the shutdown
    server = Server(repo)
    try:
        wait_for(lambda: server.client.get("/ready").status_code == 200, "ready", server.output)
        for _ in range(4):
            online(server, features=[f"{VIEW}:acc_rate"], entities={"driver_id": [1001]})
    finally:
        assert server.stop() == 0
    with FeatureStore(repo) as store:
        features = {f.feature: f.reads_online for f in store.usage(VIEW).features}
        assert features["acc_rate"] == 4 and store.usage(VIEW).reads_online == 9


# -- unused -----------------------------------------------------------------------------------


def test_unused_weighs_selections_and_reads_within_days(repo: Path) -> None:
    now = datetime.now(UTC)
    python_reads(repo)  # what the service selects, and acc_rate not
    with FeatureStore(repo, principal="old", clock=lambda: now - timedelta(days=200)) as store:
        store.get_online_features(["driver_profile:city"], entities={"driver_id": [1001]})

    out = parity("unused", "--repo", repo).stdout
    rows = {r[0]: r for r in table_rows(out)}
    assert set(rows) == {"acc_rate", "city", "lifetime_trips"}
    assert rows["city"][1] == "driver_profile" and rows["city"][2] == "ml-platform@example.com"
    assert rows["city"][3].startswith((now - timedelta(days=200)).strftime("%Y-%m-%d"))
    assert rows["lifetime_trips"][3] == "never" and rows["acc_rate"][3] == "never"
    assert rows["acc_rate"][4].endswith(("minute", "minutes", "now"))  # applied just now
    assert "3 unused features" in out and "data minimisation" in out
    assert "Every feature of driver_profile is unused" in " ".join(out.split())

    rows = {r[0] for r in table_rows(parity("unused", "--days", "365", "--repo", repo).stdout)}
    assert rows == {"acc_rate", "lifetime_trips"}  # city was read 200 days ago
    found = json.loads(parity("unused", "--days", "365", "--json", "--repo", repo).stdout)
    assert [(u["view"], u["feature"]) for u in found] == [
        (VIEW, "acc_rate"),
        ("driver_profile", "lifetime_trips"),
    ]
    assert all(u["last_read_at"] is None and u["state"] == "active" for u in found)

    with FeatureStore(repo) as store:
        store.get_online_features(
            [f"{VIEW}:acc_rate", "driver_profile:lifetime_trips"], entities={"driver_id": [1001]}
        )
        assert [u.ref for u in store.unused(days=90)] == ["driver_profile:city"]
        assert store.unused(days=365) == []
    done = parity("unused", "--days", "365", "--repo", repo).stdout
    assert "Every feature is selected by a service or was read in the last 365 days" in done
    assert "greater than or equal to 0" in parity("unused", "-d", "-1", "-r", repo, code=2).stderr


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A schema nobody created yet (Parity creates it at the first apply), dropped after;
    PostgreSQL not answering fails the test."""
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # a clear failure, never a skip
        engine.dispose()
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required: {exc}", pytrace=False)
    name = f"parity_test_disco_{uuid.uuid4().hex[:10]}"
    yield name
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    engine.dispose()


@pytest.mark.postgres
def test_discovery_on_a_postgres_registry(tmp_path: Path, pg_schema: str) -> None:
    repo = tmp_path / "shop"
    parity("init", "shop", "--dir", repo)
    configure(repo, registry={"url": POSTGRES_URL, "schema": pg_schema})
    parity("apply", "--repo", repo)

    rows = table_rows(parity("search", "conv", "--repo", repo).stdout)
    assert rows[0][:2] == ["feature view", VIEW]
    python_reads(repo, "alice")

    def reads(who: str, n: int) -> Callable[[], None]:
        def run() -> None:
            with FeatureStore(repo, principal=who) as store:
                for _ in range(n):
                    store.get_online_features([f"{VIEW}:conv_rate"], entities={"driver_id": [1]})

        return run

    workers = [threading.Thread(target=reads(w, 25)) for w in ("carol", "carol", "dave")]
    for t in workers:
        t.start()
    for t in workers:
        t.join()  # three stores write the same rows at once: every count is added
    with FeatureStore(repo) as store:
        report = store.usage(VIEW)
        consumers = {c.consumer: c.reads_online for c in report.consumers}
        assert consumers == {"alice": 2, "carol": 50, "dave": 25, f"service:{SERVICE}": 1}
        assert {f.feature: f.reads_online for f in report.features}["conv_rate"] == 78
        assert report.reads_offline == 1
    out = parity("describe", VIEW, "--repo", repo).stdout
    assert "usage: 78 reads online" in out and "carol (50)" in out
    rows = {r[0] for r in table_rows(parity("unused", "--repo", repo).stdout)}
    assert rows == {"acc_rate", "city", "lifetime_trips"}
