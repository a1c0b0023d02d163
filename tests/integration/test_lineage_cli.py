"""``parity lineage`` on a small repo applied with the CLI: the table (and the root-cause
table of ``--upstream``), JSON, DOT and Mermaid; pushes moving a source's last data time;
unknown names and usage errors; and, with auth on, lineage as a ``describe``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from networkx.readwrite import json_graph

from cli_utils import parity, table_rows
from parity import FeatureStore
from parity.governance import tokens
from repo_utils import write_parquet, write_repo

FEATURES = """
from parity import (Aggregation, Entity, FeatureService, FeatureView, Field, FileSource,
                    Float64, Int64, Model, PushSource, RequestSource, on_demand_feature_view)

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
trips = FileSource(name="trips", path="data/trips.parquet", timestamp_field="ts",
                   field_mapping={"conv": "conv_rate"}, tags={"team": "core"})
stats = FeatureView(name="stats", entities=[driver], source=trips, tags={"team": "core"},
                    schema=[Field(name="conv_rate", dtype=Float64),
                            Field(name="acc_rate", dtype=Float64)])
ratings = FileSource(name="ratings", path="data/ratings.csv", timestamp_field="ts")
rating = FeatureView(name="rating", entities=[driver], source=ratings,
                     schema=[Field(name="stars", dtype=Float64)])
events_batch = FileSource(name="events_batch", path="data/events.parquet", timestamp_field="ts")
events = PushSource(name="events", batch_source=events_batch)
spend = FeatureView(name="spend", entities=[driver], source=events,
                    schema=[Field(name="amount", dtype=Float64)],
                    aggregations=[Aggregation(function="sum", column="amount", window="7d")])
req = RequestSource(name="req", schema=[Field(name="bonus", dtype=Float64)])


@on_demand_feature_view(sources=[stats[["conv_rate"]], req],
                        schema=[Field(name="boosted", dtype=Float64)])
def boosted(row):
    return {"boosted": (row["conv_rate"] or 0.0) + row["bonus"]}


ranking = FeatureService(name="ranking", features=[stats[["acc_rate"]], boosted, spend, rating])
ranker = Model("ranker", features=ranking)
"""
ROLES = """
kind: role
name: core_reader
permissions:
  - {actions: [describe], kinds: [feature_view, source, entity], tags: {team: core}}
  - {actions: [describe], kinds: [entity]}
"""


def day(d: int) -> datetime:
    return datetime(2024, 1, d, tzinfo=UTC)


def _times(*days: int) -> pa.Array:
    return pa.array([day(d) for d in days], pa.timestamp("us", tz="UTC"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write_repo(tmp_path / "repo", {"features.py": FEATURES})
    data = root / "data"
    write_parquet(
        data / "trips.parquet",
        {"driver_id": [1, 2], "ts": _times(1, 2), "conv": [0.1, 0.2], "acc_rate": [0.5, 0.6]},
    )
    write_parquet(
        data / "events.parquet", {"driver_id": [1, 2], "ts": _times(3, 4), "amount": [1.0, 2.0]}
    )
    (data / "ratings.csv").write_text(
        "driver_id,ts,stars\n1,2024-01-05T00:00:00Z,4.5\n2,2024-01-06T12:00:00Z,3.0\n"
    )
    parity("apply", "--repo", root)
    return root


def nodes_of(text: str) -> dict[str, list[str]]:
    """The lineage table's rows by node label: [arrow, distance, kind, node, type, via, next]."""
    return {row[3]: row for row in table_rows(text) if len(row) == 7}


def test_the_table_shows_both_ways_by_distance(repo: Path):
    out = parity("lineage", "stats:conv_rate", "--repo", repo).stdout
    assert "Lineage of feature stats:conv_rate (both, depth 3)" in out
    rows = nodes_of(out)
    assert rows["trips.conv"] == [
        "↑", "1", "column", "trips.conv", "Float64", "field_mapping conv -> conv_rate",
        "stats:conv_rate",
    ]  # fmt: skip
    assert rows["trips.ts"][1:3] == ["2", "column"] and rows["trips.ts"][5] == "timestamp"
    assert rows["stats:conv_rate"][:3] == ["●", "0", "feature"]
    assert rows["boosted"][:3] == ["↓", "1", "on demand feature view"]
    assert rows["ranking"][:2] == ["↓", "3"]
    assert "ranker" not in rows  # four edges away
    order = [r[3] for r in table_rows(out) if len(r) == 7]
    assert order.index("trips.conv") < order.index("stats:conv_rate") < order.index("ranking")
    assert "Sources of" not in out  # the root-cause table is for --upstream


def test_upstream_of_a_feature_adds_its_sources_and_their_last_data_time(repo: Path):
    out = parity("lineage", "stats.conv_rate", "--upstream", "--repo", repo).stdout
    assert "boosted" not in nodes_of(out)
    causes = {r[0]: r for r in table_rows(out) if len(r) == 6}
    assert causes["trips"] == [
        "trips", "file", "conv, driver_id, ts", "ts", "2024-01-02 00:00:00 UTC",
        "parquet statistics (1 file)",
    ]  # fmt: skip
    # a CSV has no statistics: one max in the offline engine
    out = parity("lineage", "rating:stars", "-u", "--repo", repo).stdout
    causes = {r[0]: r for r in table_rows(out) if len(r) == 6}
    assert causes["ratings"][4] == "2024-01-06 12:00:00 UTC"
    assert causes["ratings"][5] == "offline engine max (1 file)"


def test_pushes_move_a_push_sources_last_data_time(repo: Path):
    def causes() -> dict[str, list[str]]:
        out = parity("lineage", "spend:amount_sum_7d", "--upstream", "--repo", repo).stdout
        return {r[0]: r for r in table_rows(out) if len(r) == 6}

    before = causes()
    assert before["events"][4] == before["events_batch"][4] == "2024-01-04 00:00:00 UTC"
    assert before["events"][5] == "batch files: parquet statistics (1 file)"
    rows = {"driver_id": [1], "amount": [5.0]}
    with FeatureStore(repo) as store:
        store.push("events", pd.DataFrame({**rows, "ts": [day(20)]}), to="offline")
        reads = store.lineage("events", "downstream", 2)  # the Python face of the command
        assert reads.graph["root"] == "source:events"
        assert reads.nodes["feature_view:spend"]["distance"] == 1
    logged = causes()["events"]
    assert logged[4] == "2024-01-20 00:00:00 UTC" and logged[5].startswith("offline log:")
    with FeatureStore(repo) as store:
        store.push("events", pd.DataFrame({**rows, "ts": [day(25)]}), to="online")
    marked = causes()
    assert marked["events"][4] == "2024-01-25 00:00:00 UTC"
    assert marked["events"][5].startswith("freshness marks: newest of 1 view")
    assert marked["events_batch"][4] == "2024-01-04 00:00:00 UTC"  # its files did not change


def test_json_dot_and_mermaid(repo: Path):
    text = parity("lineage", "ranker", "--upstream", "--depth", "all", "-f", "json", "-r", repo)
    data = json.loads(text.stdout)
    graph = json_graph.node_link_graph(data, edges="edges")
    assert graph.graph["root"] == "model:ranker" and graph.graph["depth"] is None
    assert {"source:trips", "column:trips.conv", "request_field:req.bonus"} <= set(graph)
    assert graph.edges["column:events.amount", "feature:spend.amount_sum_7d"]["via"] == (
        "aggregation sum 7d"
    )
    again = parity("lineage", "ranker", "--upstream", "--depth", "all", "-f", "json", "-r", repo)
    assert again.stdout == text.stdout
    dot = parity("lineage", "trips", "--downstream", "-n", "2", "-f", "dot", "-r", repo).stdout
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert '"source:trips" -> "column:trips.conv" [label="column"];' in dot
    mermaid = parity("lineage", "trips.conv", "-d", "-f", "mermaid", "-r", repo).stdout
    assert mermaid.startswith("flowchart LR\n")
    assert '-->|"field_mapping conv -#62; conv_rate"|' in mermaid


def test_unknown_names_and_usage_errors(repo: Path):
    missing = parity("lineage", "stats:conv_rat", "--repo", repo, code=1)
    assert missing.stderr.startswith("error: feature 'stats:conv_rat' not found")
    assert "did you mean 'stats:conv_rate'" in missing.stderr
    assert (
        "'acc_rate' is a feature: stats:acc_rate"
        in parity("lineage", "acc_rate", "--repo", repo, code=1).stderr
    )
    both = parity("lineage", "stats", "--upstream", "--downstream", "--repo", repo, code=2)
    assert "give one of them" in both.stderr
    assert "not a whole number" in parity("lineage", "stats", "-n", "-1", "-r", repo, code=2).stderr
    assert (
        "'svg' is not one of" in parity("lineage", "stats", "-f", "svg", "-r", repo, code=2).stderr
    )
    empty = parity("lineage", "x", "--repo", repo.parent / "nowhere", code=1)
    assert "does not exist" in empty.stderr


def test_with_auth_on_lineage_is_a_describe(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "roles.yaml").write_text(ROLES)
    with (repo / "parity.yaml").open("a") as f:
        f.write("auth: {enabled: true}\n")
    monkeypatch.delenv("PARITY_TOKEN", raising=False)
    tokens.forget_cached()
    admin = parity("token", "create", "-p", "root", "--role", "admin", "--repo", repo)
    monkeypatch.setenv("PARITY_TOKEN", admin.stdout.split()[-1])
    parity("apply", "--repo", repo)
    reader = parity("token", "create", "-p", "bob", "--role", "core_reader", "--repo", repo)
    monkeypatch.setenv("PARITY_TOKEN", reader.stdout.split()[-1])

    shown = nodes_of(parity("lineage", "stats:conv_rate", "--repo", repo).stdout)
    assert {"trips.conv", "stats", "driver", "driver.driver_id"} <= set(shown)
    assert "boosted" not in shown and "ranking" not in shown  # not describable: left out
    denied = parity("lineage", "ranker", "--repo", repo, code=1)
    assert "'bob' (roles: core_reader) may not describe model 'ranker'" in denied.stderr
    hidden = parity("lineage", "boosted:boosted", "--repo", repo, code=1)
    assert "may not describe on_demand_feature_view 'boosted'" in hidden.stderr
