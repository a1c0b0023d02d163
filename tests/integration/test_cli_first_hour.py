"""A new user's first hour in the shell, on a repo made by `parity init`: `get`, `historical
--out -`, `push`, `list` at 80 columns, `history` old → new; and the small things the same
hour hits from Python: ISO text for materialize, `PushSource(batch_source="name")`, the
repr of an online response. Every answer is checked against the store's own."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli_utils import parity, table_rows
from parity.cli.changes import describe_changes
from parity.cli.scaffold import ENTITIES_FILE, STATS_FILE
from parity.errors import RetrievalError, ValidationError
from parity.store import FeatureStore
from repo_utils import write_parquet, write_repo

VIEW = "driver_hourly_stats"
LIVE = "driver_live_stats"
PUSH = "driver_stats_push"
PUSH_PY = f"""\
from parity import FeatureView, Field, Float64, Int64, PushSource

{PUSH} = PushSource(name="{PUSH}", batch_source="driver_stats_source")
{LIVE} = FeatureView(
    name="{LIVE}",
    entities=["driver"],
    source={PUSH},
    schema=[Field(name="conv_rate", dtype=Float64), Field(name="avg_daily_trips", dtype=Int64)],
    ttl="1d",
)
"""


def scaffold(root: Path) -> Path:
    repo = root / "shop"
    parity("init", "shop", "--dir", repo)
    return repo


@pytest.fixture(scope="module")
def online_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`parity init`, `apply`, `materialize-incremental now`: what the README's first steps do."""
    repo = scaffold(tmp_path_factory.mktemp("first-hour"))
    parity("apply", "--repo", repo)
    parity("materialize-incremental", "now", "--repo", repo)
    return repo


@pytest.fixture
def push_repo(tmp_path: Path) -> Path:
    repo = scaffold(tmp_path)
    (repo / "push.py").write_text(PUSH_PY)
    parity("apply", "--repo", repo)
    return repo


def sample_drivers(repo: Path) -> list[int]:
    return sorted(set(pq.read_table(repo / STATS_FILE)["driver_id"].to_pylist()))


def micros(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# -- parity get ---------------------------------------------------------------------------


def test_get_json_is_the_stores_answer_with_ages(online_repo: Path):
    drivers = [*sample_drivers(online_repo)[:2], 424242]
    refs = [f"{VIEW}:conv_rate", f"{VIEW}:avg_daily_trips"]
    args = [a for d in drivers for a in ("--entity", f"driver_id={d}")]
    before = datetime.now(UTC)
    out = parity("get", f"{VIEW}:conv_rate,avg_daily_trips", *args, "--json", "--repo", online_repo)
    after = datetime.now(UTC)
    rows = json.loads(out.stdout)
    with FeatureStore(online_repo) as store:
        want = store.get_online_features(refs, entity_rows=[{"driver_id": d} for d in drivers])
    stamps = want.event_timestamps
    assert [r["entity"] for r in rows] == [{"driver_id": d} for d in drivers]
    for i, row in enumerate(rows):
        assert list(row["features"]) == ["conv_rate", "avg_daily_trips"]
        for name, got in row["features"].items():
            assert got["value"] == want.values[name][i]
            assert got["status"] == want.statuses[name][i]
            ts = stamps[name][i]
            assert got["event_timestamp"] == (None if ts is None else ts.isoformat())
            if ts is None:
                assert got["age_seconds"] is None
            else:  # now - event time, now taken while the command ran
                low, high = (micros(t) - micros(ts) for t in (before, after))
                assert low <= got["age_seconds"] * 1e6 <= high + 1
    assert rows[-1]["features"]["conv_rate"]["event_timestamp"] is None  # the unknown driver


def test_get_table_shows_each_feature_with_value_status_and_age(online_repo: Path):
    driver = sample_drivers(online_repo)[0]
    out = parity(
        "get", f"{VIEW}:conv_rate", "driver_profile:city", "-e", f"driver_id={driver}",
        "-e", "driver_id=424242", "--repo", online_repo,
    ).stdout  # fmt: skip
    with FeatureStore(online_repo) as store:
        want = store.get_online_features(
            [f"{VIEW}:conv_rate", "driver_profile:city"],
            entities={"driver_id": [driver, 424242]},
        )
    rows = table_rows(out)
    assert [r[1] for r in rows] == ["conv_rate", "city"] * 2
    assert [r[0] for r in rows] == [str(driver), "", "424242", ""]
    for k, row in enumerate(rows):
        i, name = divmod(k, 2)[0], row[1]
        value = want.values[name][i]
        assert row[2] == (
            "null" if value is None else repr(value) if isinstance(value, float) else str(value)
        )
        assert row[3] == want.statuses[name][i]
        assert (row[4] == "-") == (want.event_micros[name][i] is None)


def test_get_reads_a_service_like_the_store(online_repo: Path):
    driver = sample_drivers(online_repo)[-1]
    rows = json.loads(
        parity("get", "--service", "driver_activity", "-e", f"driver_id={driver}", "--json",
               "--full-feature-names", "--repo", online_repo).stdout
    )  # fmt: skip
    with FeatureStore(online_repo) as store:
        want = store.get_online_features(
            "driver_activity", entities={"driver_id": [driver]}, full_feature_names=True
        )
    got = rows[0]["features"]
    assert list(got) == list(want.values)
    assert [v["value"] for v in got.values()] == [v[0] for v in want.values.values()]
    assert [v["status"] for v in got.values()] == [s[0] for s in want.statuses.values()]


def test_get_refuses_entity_text_that_does_not_convert(online_repo: Path):
    for entity, words in [
        ("driver_id=abc", ["'driver_id'", "Int64", "'abc'", "not an integer"]),
        ("driver_id=1.5", ["'driver_id'", "not an integer"]),
        ("driver_id=9223372036854775808", ["'driver_id'", "outside Int64"]),
        ("driver_id", ["KEY=VALUE"]),
    ]:
        err = parity("get", f"{VIEW}:conv_rate", "-e", entity, "--repo", online_repo, code=1)
        assert err.stderr.startswith("error: ")
        assert all(w in err.stderr for w in words), err.stderr
    mixed = parity(
        "get", f"{VIEW}:conv_rate", "-e", "driver_id=1", "-e", "driver_id=2,x=3",
        "--repo", online_repo, code=1,
    )  # fmt: skip
    assert "same keys" in mixed.stderr
    usage = parity("get", "-e", "driver_id=1", "--repo", online_repo, code=2).stderr
    assert "give feature references" in usage


def test_get_types_several_keys_of_one_row_by_their_entities(tmp_path: Path):
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    write_parquet(
        tmp_path / "repo/data/trips.parquet",
        {
            "driver_id": pa.array([1, 2], pa.int64()),
            "customer_id": ["5", "05"],
            "event_timestamp": pa.array([now, now], pa.timestamp("us", tz="UTC")),
            "trips": pa.array([10, 20], pa.int64()),
        },
    )
    repo = write_repo(
        tmp_path / "repo",
        {
            "defs.py": """
            from parity import Entity, FeatureView, Field, FileSource, Int64, String
            driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
            customer = Entity(name="customer", join_keys=["customer_id"], dtype=String)
            trips = FeatureView(name="trips", entities=[driver, customer], ttl="30d",
                source=FileSource(name="trips_src", path="data/trips.parquet"),
                schema=[Field(name="trips", dtype=Int64)])
            """
        },
    )
    parity("apply", "--repo", repo)
    parity("materialize-incremental", "now", "--repo", repo)
    rows = json.loads(
        parity("get", "trips:trips", "-e", "driver_id=1,customer_id=5",
               "-e", "customer_id=05,driver_id=2", "-e", "driver_id=1,customer_id=05",
               "--json", "--repo", repo).stdout
    )  # fmt: skip
    with FeatureStore(repo) as store:
        want = store.get_online_features(
            ["trips:trips"],
            entity_rows=[
                {"driver_id": 1, "customer_id": "5"},
                {"driver_id": 2, "customer_id": "05"},
                {"driver_id": 1, "customer_id": "05"},
            ],
        )
    assert [r["entity"]["customer_id"] for r in rows] == ["5", "05", "05"]  # text stays text
    assert [r["features"]["trips"]["value"] for r in rows] == want.values["trips"]
    assert [r["features"]["trips"]["status"] for r in rows] == want.statuses["trips"]
    assert want.values["trips"][:2] == [10, 20]


# -- parity historical --out - -----------------------------------------------------------


def test_historical_to_stdout_is_csv_when_piped_and_a_table_when_asked(online_repo: Path):
    refs = f"{VIEW}:conv_rate,avg_daily_trips"
    base = ["historical", "-e", online_repo / ENTITIES_FILE, "-f", refs, "--out", "-"]
    with FeatureStore(online_repo) as store:
        want = store.get_historical_features(
            online_repo / ENTITIES_FILE, [f"{VIEW}:conv_rate", f"{VIEW}:avg_daily_trips"]
        ).to_arrow()
    piped = parity(*base, "--repo", online_repo)
    got = list(csv.DictReader(io.StringIO(piped.stdout)))
    assert len(got) == want.num_rows and list(got[0]) == want.column_names
    assert [r["driver_id"] for r in got] == [str(v) for v in want["driver_id"].to_pylist()]
    assert [float(r["conv_rate"]) if r["conv_rate"] else None for r in got] == want[
        "conv_rate"
    ].to_pylist()
    assert f"Printed {want.num_rows} rows" in piped.stderr  # the summary is not in the data
    shown = parity(*base, "--format", "table", "--limit", "3", "--repo", online_repo).stdout
    rows = table_rows(shown)
    assert len(rows) == 3
    assert [r[0] for r in rows] == [str(v) for v in want["driver_id"].to_pylist()[:3]]
    assert f"the first 3 of {want.num_rows} rows" in shown
    assert (
        "table is printed"
        in parity(
            *base[:-1], "x.parquet", "--format", "table", "--repo", online_repo, code=2
        ).stderr
    )


# -- parity push ---------------------------------------------------------------------------


def recent(n: int) -> list[datetime]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    return [start + timedelta(minutes=i) for i in range(n)]


def live_values(repo: Path, drivers: list[int]):
    with FeatureStore(repo) as store:
        return store.get_online_features(
            [f"{LIVE}:conv_rate", f"{LIVE}:avg_daily_trips"], entities={"driver_id": drivers}
        )


def offline_files(repo: Path) -> list[Path]:
    return sorted((repo / "data/offline_log").rglob("*.parquet"))


def test_push_csv_typed_by_the_views(push_repo: Path, tmp_path: Path):
    times = recent(2)
    path = tmp_path / "rows.csv"
    path.write_text(
        "driver_id,event_timestamp,conv_rate,avg_daily_trips,note\n"
        f"7001,{times[0].isoformat()},0.25,3,first\n"
        f"7002,{times[1]:%Y-%m-%d %H:%M:%S},,04,second\n"  # naive = UTC; an empty cell is null
    )
    out = parity("push", PUSH, path, "--repo", push_repo).stdout
    assert f"Pushed 2 row(s) from {path} to {PUSH} (online)" in out
    assert "ignored columns (no view reads them): note" in out
    resp = live_values(push_repo, [7001, 7002])
    assert resp.values == {"conv_rate": [0.25, None], "avg_daily_trips": [3, 4]}
    assert resp.statuses["conv_rate"] == ["present", "present"]
    assert resp.event_timestamps["conv_rate"] == times
    assert offline_files(push_repo) == []  # online only


def test_push_parquet_and_json_forms_with_a_push_id(push_repo: Path, tmp_path: Path):
    times = recent(6)
    pq.write_table(
        pa.table({
            "driver_id": pa.array([7101], pa.int64()),
            "event_timestamp": pa.array(times[:1], pa.timestamp("us", tz="UTC")),
            "conv_rate": [0.5], "avg_daily_trips": pa.array([1], pa.int64()),
        }),
        tmp_path / "rows.parquet",
    )  # fmt: skip
    iso = [t.isoformat() for t in times]
    (tmp_path / "records.json").write_text(json.dumps([
        {"driver_id": 7102, "event_timestamp": iso[1], "conv_rate": 1, "avg_daily_trips": 2},
    ]))  # fmt: skip
    (tmp_path / "columns.json").write_text(json.dumps({
        "driver_id": [7103, 7104], "event_timestamp": iso[2:4],
        "conv_rate": [0.1, None], "avg_daily_trips": [3, 4],
    }))  # fmt: skip
    (tmp_path / "lines.jsonl").write_text(
        "\n".join(
            json.dumps(
                {"driver_id": d, "event_timestamp": t, "conv_rate": 0.7, "avg_daily_trips": 5}
            )
            for d, t in ((7105, iso[4]), (7106, iso[5]))
        )
    )
    for name in ("rows.parquet", "records.json", "columns.json", "lines.jsonl"):
        parity("push", PUSH, tmp_path / name, "--repo", push_repo)
    drivers = [7101, 7102, 7103, 7104, 7105, 7106]
    resp = live_values(push_repo, drivers)
    assert resp.values["conv_rate"] == [0.5, 1.0, 0.1, None, 0.7, 0.7]
    assert resp.values["avg_daily_trips"] == [1, 2, 3, 4, 5, 5]
    assert resp.event_timestamps["conv_rate"] == times
    first = parity("push", PUSH, tmp_path / "records.json", "--to", "online_and_offline",
                   "--push-id", "orders-42", "--repo", push_repo).stdout  # fmt: skip
    assert "push id: orders-42" in first
    logged = offline_files(push_repo)
    assert [p.name for p in logged] == ["push-orders-42.parquet"]
    again = parity("push", PUSH, tmp_path / "records.json", "--to", "online_and_offline",
                   "--push-id", "orders-42", "--repo", push_repo).stdout  # fmt: skip
    assert "made before: nothing written twice" in again
    assert offline_files(push_repo) == logged


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("bad.csv", "driver_id,event_timestamp,conv_rate,avg_daily_trips\n"
         "7201,{t0},0.1,1\n7202,{t1},abc,2\n", ["row 1", "'conv_rate'", "'abc'", "Float64"]),
        ("bad_time.csv", "driver_id,event_timestamp,conv_rate,avg_daily_trips\n"
         "7201,{t0},0.1,1\n7202,yesterday,0.2,2\n", ["row 1", "'event_timestamp'", "'yesterday'"]),
        ("bad_key.csv", "driver_id,event_timestamp,conv_rate,avg_daily_trips\n"
         "7201,{t0},0.1,1\nx7,{t1},0.2,2\n", ["row 1", "'driver_id'", "Int64"]),
        ("bad.json", '[{{"driver_id": 7201, "event_timestamp": "{t0}", "conv_rate": 0.1, '
         '"avg_daily_trips": 1}}, {{"driver_id": 7202, "event_timestamp": "{t1}", '
         '"conv_rate": 0.2, "avg_daily_trips": 2.5}}]', ["row 1", "'avg_daily_trips'", "2.5"]),
        ("null_key.json", '{{"driver_id": [7201, null], "event_timestamp": ["{t0}", "{t1}"], '
         '"conv_rate": [0.1, 0.2], "avg_daily_trips": [1, 2]}}', ["row 1", "'driver_id'", "null"]),
        ("broken.json", '[{{"driver_id": 7201,', ["not JSON"]),
        ("missing.csv", None, ["is not a file"]),
    ],
)  # fmt: skip
def test_push_refuses_a_bad_file_or_row_and_writes_nothing(
    push_repo: Path, tmp_path: Path, name: str, text: str | None, words: list[str]
):
    t0, t1 = (t.isoformat() for t in recent(2))
    path = tmp_path / name
    if text is not None:
        path.write_text(text.format(t0=t0, t1=t1))
    err = parity("push", PUSH, path, "--to", "online_and_offline", "--repo", push_repo, code=1)
    assert err.stderr.startswith("error: ")
    assert all(w in err.stderr for w in words), err.stderr
    assert live_values(push_repo, [7201, 7202]).statuses["conv_rate"] == ["missing", "missing"]
    assert offline_files(push_repo) == []


def test_push_to_a_source_that_is_not_a_push_source(push_repo: Path, tmp_path: Path):
    (tmp_path / "x.csv").write_text("driver_id\n1\n")
    err = parity("push", "driver_stats_source", tmp_path / "x.csv", "--repo", push_repo, code=1)
    assert "not a push source" in err.stderr
    err = parity("push", "nope", tmp_path / "x.csv", "--repo", push_repo, code=1)
    assert "'nope' not found" in err.stderr


# -- PushSource(batch_source="name") --------------------------------------------------------


def test_a_push_source_names_its_batch_source_in_python_and_yaml(push_repo: Path):
    (push_repo / "push.yaml").write_text(
        "kind: source\ntype: push\nname: yaml_push\nbatch_source: driver_stats_source\n"
    )
    parity("apply", "--repo", push_repo)
    with FeatureStore(push_repo) as store:
        batch = store.get_data_source("driver_stats_source")
        for name in (PUSH, "yaml_push"):
            src = store.get_data_source(name)
            assert src.batch_source == batch  # the registered source, resolved at apply
            assert (src.timestamp_field, src.created_timestamp_field) == (
                batch.timestamp_field,
                batch.created_timestamp_field,
            )
        # the offline side reads the batch source's files: the sample data is there
        hist = store.get_historical_features(
            push_repo / ENTITIES_FILE, [f"{LIVE}:conv_rate"]
        ).to_arrow()
        want = store.get_historical_features(
            push_repo / ENTITIES_FILE, [f"{VIEW}:conv_rate"]
        ).to_arrow()
        assert hist["conv_rate"].to_pylist() == want["conv_rate"].to_pylist()
    assert "No changes" in parity("apply", "--repo", push_repo).stdout


@pytest.mark.parametrize(
    ("batch", "words"),
    [("nope", ["'nope' is not a source", "driver_stats_source"]),
     ("other_push", ["'other_push' is a push source", "name a file source"])],
)  # fmt: skip
def test_a_batch_source_name_that_matches_no_file_source_is_refused_at_apply(
    push_repo: Path, batch: str, words: list[str]
):
    with FeatureStore(push_repo) as store:
        revision = store.registry.revision()
    (push_repo / "more.yaml").write_text(
        "kind: source\ntype: push\nname: other_push\nbatch_source: driver_stats_source\n---\n"
        f"kind: source\ntype: push\nname: broken_push\nbatch_source: {batch}\n"
    )
    err = parity("apply", "--repo", push_repo, code=1).stderr
    assert "push source 'broken_push'" in err
    assert all(w in err for w in words), err
    with FeatureStore(push_repo) as store:
        assert store.registry.revision() == revision
        with pytest.raises(ValidationError, match="broken_push"):
            from parity import PushSource

            store.apply([PushSource(name="broken_push", batch_source="nope")])


# -- list at 80 columns, history old → new --------------------------------------------------


def test_list_views_fits_80_columns_and_keeps_what_matters(online_repo: Path):
    narrow = CliRunner(env={"COLUMNS": "80"})
    out = parity("list", "views", "--repo", online_repo, runner=narrow).stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    with FeatureStore(online_repo) as store:
        views = store.list_feature_views()
    words = set(out.replace("│", " ").replace(",", " ").split())
    for view in views:
        assert view.name in words
        assert set(view.feature_names) <= words
        assert view.source_name in out.replace("│", "").replace("\n", "").replace(" ", "")
    assert "description and owner left out at this width" in out
    every = parity("list", "--repo", online_repo, runner=narrow).stdout
    assert max(len(line) for line in every.splitlines()) <= 80
    full = parity("list", "views", "--repo", online_repo).stdout  # 200 columns: all of it
    assert "Owner" in full and "Description" in full and "left out" not in full


def test_history_shows_each_change_old_to_new(tmp_path: Path):
    repo = scaffold(tmp_path)
    parity("apply", "--repo", repo, "--author", "alice")
    features = repo / "features.py"
    text = features.read_text()
    for old, new in [
        ("ttl=timedelta(days=1)", "ttl=timedelta(hours=2)"),
        ('"Share of offers accepted."', '"Offers taken."'),
        ('        Field(name="acc_rate", dtype=Float64, description="Share of rides completed."),\n',
         '        Field(name="driver_rating", dtype=Float64),\n'),
    ]:  # fmt: skip
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    features.write_text(text)
    parity("apply", "--repo", repo, "--author", "bob", "--allow-breaking")
    out = parity("history", VIEW, "--repo", repo).stdout
    lines = [line.rstrip() for line in out.splitlines()]
    with FeatureStore(repo) as store:
        records = store.history(VIEW)
    assert lines[0] == f"History of {VIEW}: 2 versions, oldest first"
    heads = [line for line in lines if line.startswith("version ")]
    assert [h.split()[:5] for h in heads] == [
        ["version", "1.0.0", "new", "create", "alice"],
        ["version", "2.0.0", "major", "update", "bob"],
    ]
    assert all(r.content_hash[:12] in h for r, h in zip(records, heads, strict=True))
    changes = [line.strip() for line in lines if line.startswith("    ")]
    note = "note: applied with --allow-breaking; breaks feature_service:driver_activity"
    assert changes[0] == note
    changes = changes[1:]
    assert changes == [line for fc in records[-1].diff for line in describe_changes(fc)]
    assert "ttl: 1 day → 2 hours" in changes
    assert 'schema[conv_rate].description: "Share of offers accepted." → "Offers taken."' in changes
    assert '- schema[acc_rate]: Float64, description "Share of rides completed."' in changes
    assert "+ schema[driver_rating]: Float64" in changes


# -- from Python: ISO text for materialize, repr ------------------------------------------


def test_materialize_takes_iso_text_as_the_cli_does(tmp_path: Path):
    repo = scaffold(tmp_path)
    parity("apply", "--repo", repo)
    ts = pq.read_table(repo / STATS_FILE)["event_timestamp"].to_pylist()
    first, last = min(ts), max(ts)
    start, end = first.date().isoformat(), last.strftime("%Y-%m-%dT%H:%M")  # data ends by now
    with FeatureStore(repo) as store:
        result = store.materialize(start, end, [VIEW])
        run = result.views[0]
        assert run.start == datetime.fromisoformat(start).replace(tzinfo=UTC)
        assert run.end == datetime.fromisoformat(end).replace(tzinfo=UTC)  # naive is UTC
        assert run.rows == len(sample_drivers(repo))
        with pytest.raises(RetrievalError, match="'yesterday' is not a time"):
            store.materialize("yesterday", end)
        with pytest.raises(RetrievalError, match="must be a datetime or ISO 8601 text"):
            store.materialize(20240101, end)  # type: ignore[arg-type]
        assert len(store.registry.materializations()) == 1  # nothing recorded for those
        before = datetime.now(UTC)
        again = store.materialize_incremental("now", [VIEW]).views[0]
        assert again.start == run.end and before <= again.end <= datetime.now(UTC)
        offset = store.materialize(f"{start}T00:00:00+02:00", end, [VIEW]).views[0]
        assert offset.start == run.start - timedelta(hours=2)


def test_repr_of_an_online_response_is_a_bounded_table(online_repo: Path):
    drivers = sample_drivers(online_repo)
    many = [*drivers, *range(900_000, 900_030)]
    with FeatureStore(online_repo) as store:
        small = store.get_online_features(
            [f"{VIEW}:conv_rate", "driver_profile:city"], entities={"driver_id": drivers[:2]}
        )
        large = store.get_online_features([f"{VIEW}:conv_rate"], entities={"driver_id": many})
    lines = repr(small).splitlines()
    assert lines[0] == "OnlineResponse: 2 rows, 2 features"
    assert lines[1].split() == ["driver_id", "conv_rate", "city"]
    for i, line in enumerate(lines[2:]):
        assert line.split()[0] == str(drivers[i])
        for name in ("conv_rate", "city"):
            status = small.statuses[name][i]
            assert (f"[{status}]" in line) == (status != "present")
    big = repr(large).splitlines()
    assert len(big) == 2 + 10 + 1
    assert big[-1].startswith(f"… {len(many) - 10} more rows")
    assert "[missing]" in big[-2]  # the unknown drivers
