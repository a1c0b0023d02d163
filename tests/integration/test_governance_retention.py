"""``store.governance.run_retention`` and ``parity retention run``: offline-log and
serving-log rows older than their view's (else its source's) retention are deleted, by the
store's clock, with counts per view and place; a dry run changes nothing; newer rows and rows
without a retention stay; batch source files are never touched."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from erase_repo import NOW, USERS, make_repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_utils import parity, table_rows
from parity import FeatureStore
from repo_utils import write_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def event_times(folder: Path, column: str) -> list:
    out = []
    for path in sorted(folder.rglob("*.parquet")):
        table = pq.read_table(path, partitioning=None)
        if column in table.column_names:
            out += table.column(column).to_pylist()
    return sorted(out)


def data_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "data").rglob("*"))
        if p.is_file() and p.suffix in (".parquet", ".csv")
    }


def test_rows_past_retention_go_with_counts_per_view_and_place(repo: Path):
    log = repo / "data" / "offline_log"
    before_sources = {
        p: (repo / "data" / p).read_bytes() for p in ("events.parquet", "profiles.csv")
    }
    at = NOW + timedelta(days=8)  # 40 d + 8 d old pushes past user_stats' 30 d; served 8 d ago
    with FeatureStore(repo, clock=lambda: at) as store:
        report = store.governance.run_retention()
    got = {(c.view, c.place, c.target): (c.rows, c.files, c.retention) for c in report.counts}
    assert got == {
        ("user_stats", "offline_log", "events"): (8, 1, timedelta(days=30)),
        # the file serving user_stats (30 d) and user_profile (7 d) goes by the shorter one;
        # user_merchant's file (no retention) stays
        ("user_profile", "serving_log", "data/serving_log"): (4, 1, timedelta(days=7)),
    }
    assert report.at == at and not report.dry_run
    assert event_times(log, "event_timestamp") == [NOW - timedelta(hours=1)] * 8
    served = event_times(repo / "data" / "serving_log", "user_id")
    assert served == sorted(USERS * 2)  # what user_merchant's request logged
    for name, data in before_sources.items():
        assert (repo / "data" / name).read_bytes() == data
    with FeatureStore(repo, clock=lambda: at) as store:
        assert store.governance.run_retention().rows() == 0  # nothing more is old


def test_a_dry_run_counts_the_same_and_changes_nothing(repo: Path):
    at = NOW + timedelta(days=40)
    before = data_digest(repo)
    with FeatureStore(repo, clock=lambda: at) as store:
        dry = store.governance.run_retention(dry_run=True)
    assert data_digest(repo) == before
    with FeatureStore(repo, clock=lambda: at) as store:
        real = store.governance.run_retention()
    assert dry.dry_run and [(c.view, c.place, c.rows) for c in dry.counts] == [
        (c.view, c.place, c.rows) for c in real.counts
    ]
    assert real.rows("offline_log") == 16  # every push now older than 30 d
    assert not list((repo / "data" / "offline_log" / "events").glob("*.parquet")) or all(
        pq.read_table(p).num_rows == 0
        for p in (repo / "data" / "offline_log" / "events").glob("*.parquet")
    )


DEFS = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64, PushSource

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
f = FileSource(name="f", path="data/f.parquet", retention=timedelta(days={source_days}))
p = PushSource(name="p", batch_source=f)
a = FeatureView(name="a", entities=[user], source=p, schema=[Field(name="x", dtype=Float64)]{a})
b = FeatureView(name="b", entities=[user], source=p, schema=[Field(name="x", dtype=Float64)]{b})
"""


def pushed_ages(tmp: Path, ages: list[int], source_days: int, a: int | None, b: int | None) -> Path:
    def opt(days: int | None) -> str:
        return "" if days is None else f", retention=timedelta(days={days})"

    root = write_repo(tmp, {"defs.py": DEFS.format(source_days=source_days, a=opt(a), b=opt(b))})
    ts = pa.timestamp("us", tz="UTC")
    empty = pa.table(
        {
            "user_id": pa.array([], pa.int64()),
            "x": pa.array([], pa.float64()),
            "event_timestamp": pa.array([], ts),
        }
    )
    (root / "data").mkdir(exist_ok=True)
    pq.write_table(empty, root / "data" / "f.parquet")
    with FeatureStore(root, clock=lambda: NOW) as store:
        store.apply()
        table = pa.table(
            {
                "user_id": pa.array(list(range(len(ages))), pa.int64()),
                "x": [float(a) for a in ages],
                "event_timestamp": pa.array([NOW - timedelta(days=d, hours=12) for d in ages], ts),
            }
        )
        store.push("p", table, to="offline")
    return root


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ages=st.lists(st.integers(0, 20), min_size=1, max_size=15),
    source_days=st.integers(1, 20),
    a=st.one_of(st.none(), st.integers(1, 20)),
    b=st.one_of(st.none(), st.integers(1, 20)),
)
def test_the_shortest_retention_of_a_shared_source_decides(
    tmp_path_factory, ages, source_days, a, b
):
    root = pushed_ages(tmp_path_factory.mktemp("ret"), ages, source_days, a, b)
    keep = min(d for d in (a or source_days, b or source_days))  # a view's own wins
    with FeatureStore(root, clock=lambda: NOW) as store:
        report = store.governance.run_retention()
    left = pq.read_table(root / "data" / "offline_log" / "p")["x"].to_pylist()
    assert sorted(left) == sorted(float(d) for d in ages if d < keep)
    assert report.rows("offline_log") == sum(1 for d in ages if d >= keep)
    (count,) = report.counts
    assert count.retention == timedelta(days=keep)


def test_the_cli_prints_the_counts(repo: Path):
    out = parity("retention", "run", "--dry-run", "-r", repo).stdout
    assert "Dry run" in out
    rows = {(r[0], r[1]): r for r in table_rows(out)}
    assert rows[("user_stats", "offline_log")][3] == "30d"


def test_rewrites_of_one_folder_wait_for_each_other(repo: Path):
    """Erase and retention (and key rotation) rewrite log files under the folder's lock, so
    neither writes back rows the other removed."""
    import threading

    from parity.offline import log

    folder = repo / "data" / "offline_log" / "events"
    done = threading.Event()

    def erase() -> None:
        with FeatureStore(repo, clock=lambda: NOW) as store:
            store.governance.erase("user", [1])
        done.set()

    with log.rewriting(folder):
        worker = threading.Thread(target=erase)
        worker.start()
        assert not done.wait(1.0)  # it waits for the lock (bounded: 1 s)
        assert 1 in event_times(folder, "user_id")
    worker.join(60)
    assert done.is_set() and 1 not in event_times(folder, "user_id")
