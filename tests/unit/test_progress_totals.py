"""``parity.progress``: a bar with a total and an ETA when the total is known, a counter
otherwise; and the DuckDB engine's count of the rows ``latest`` streams."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from rich.console import Console

from parity.offline.base import SupportsCountedLatest
from parity.progress import RowCounter, progress_bar
from parity.store import FeatureStore
from repo_utils import write_parquet, write_repo


def terminal() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=120, color_system=None), buf


def test_a_known_total_draws_a_bar_with_an_eta_and_an_unknown_one_a_counter():
    console, buf = terminal()
    with progress_bar(True, console=console) as counter:
        assert isinstance(counter, RowCounter) and counter.wants_totals
        counter.set_total("view_a", 1000)
        counter("view_a", 250)
        counter("view_b", 40)
        counter("view_b", 2)
        assert counter.totals() == {"view_a": (250, 1000), "view_b": (42, None)}
        counter("view_a", 750)
    out = buf.getvalue()
    assert "1,000 / 1,000 rows 100%" in out
    assert "ETA" in out  # while it was running
    assert "42 rows" in out and "/ 42" not in out


def test_no_bar_when_not_wanted_and_no_totals_off_a_terminal():
    with progress_bar(False) as counter:
        assert counter is None
    with progress_bar(True, console=Console(file=io.StringIO())) as counter:
        assert counter is not None and not counter.wants_totals


def test_the_engine_counts_what_latest_streams(tmp_path: Path):
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    ids = [i % 7 for i in range(50)]
    times = [t0 + timedelta(hours=i) for i in range(50)]
    write_parquet(
        tmp_path / "data/rows.parquet",
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "rate": pa.array([float(i) for i in range(50)]),
        },
    )
    repo = write_repo(
        tmp_path,
        {
            "defs.py": """
            from parity import Entity, FeatureView, Field, FileSource, Float64, Int64
            driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
            rates = FeatureView(name="rates", entities=[driver],
                source=FileSource(name="rows", path="data/rows.parquet"),
                schema=[Field(name="rate", dtype=Float64)])
            """
        },
    )
    with FeatureStore(repo) as store:
        store.apply()
        from parity.query.plan import plan_features

        join = plan_features(["rates:rate"], store.catalog()).joins[0]
        engine = store.offline
        assert isinstance(engine, SupportsCountedLatest)
        for start, end in [
            (t0, t0 + timedelta(hours=49)),
            (t0 + timedelta(hours=45), t0 + timedelta(hours=47)),
            (t0 - timedelta(days=9), t0 - timedelta(days=8)),
        ]:
            plain = engine.latest(join, start, end, batch_rows=2).read_all()
            total, reader = engine.latest_counted(join, start, end, batch_rows=2)
            counted = reader.read_all()
            assert total == plain.num_rows == counted.num_rows
            assert counted.schema == plain.schema
            assert counted.sort_by("driver_id").equals(plain.sort_by("driver_id"))


def test_materialize_gives_the_bar_its_total_when_it_is_drawn(tmp_path: Path):
    import sys

    import parity.ingest  # noqa: F401 - loads the module the name below is shadowed by

    materialize = sys.modules["parity.ingest.materialize"]
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    write_parquet(
        tmp_path / "data/rows.parquet",
        {
            "driver_id": pa.array([i % 5 for i in range(20)], pa.int64()),
            "event_timestamp": pa.array(
                [t0 + timedelta(hours=i) for i in range(20)], pa.timestamp("us", tz="UTC")
            ),
            "rate": pa.array([float(i) for i in range(20)]),
        },
    )
    repo = write_repo(
        tmp_path,
        {
            "defs.py": """
            from parity import Entity, FeatureView, Field, FileSource, Float64, Int64
            driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
            rates = FeatureView(name="rates", entities=[driver],
                source=FileSource(name="rows", path="data/rows.parquet"),
                schema=[Field(name="rate", dtype=Float64)])
            """
        },
    )
    (repo / "parity.yaml").write_text(
        (repo / "parity.yaml").read_text() + "online_store: { type: sqlite, path: data/o.db }\n"
    )
    with FeatureStore(repo) as store:
        store.apply()
        ctx = store._writes(fresh=True)
        view = ctx.catalog.view("rates")
        end = t0 + timedelta(days=2)
        for console in (terminal()[0], Console(file=io.StringIO())):
            with progress_bar(True, console=console) as counter:
                assert counter is not None
                run = materialize.materialize_view(ctx, view, t0, end, on_batch=counter)
                done, total = counter.totals()["rates"]
            assert done == run.rows == 5
            assert total == (5 if console.is_terminal else None)  # counted only when drawn
