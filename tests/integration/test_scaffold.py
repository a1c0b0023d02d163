"""`parity init`'s scaffold works at once, whenever it is made: its sample data ends at the hour
`parity init` ran, so `parity materialize-incremental now` stores every driver and an online
read right after answers `present`; its entity frame's known rows get features."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from parity import FeatureStore
from parity.cli.scaffold import (
    DRIVERS,
    ENTITIES_FILE,
    HOURS,
    STATS_FILE,
    UNKNOWN_DRIVER,
    create_repo,
    data_window,
)

PARITY = Path(sys.executable).parent / "parity"
REFS = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:avg_daily_trips",
    "driver_rating:driver_rating",
    "driver_profile:city",
]


def parity(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(PARITY), *map(str, args)],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},  # wide enough that no table cell is cut
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"parity {args} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def test_init_apply_materialize_now_then_every_driver_is_present(tmp_path: Path):
    before = data_window()
    parity("init", "fleet", cwd=tmp_path)
    after = data_window()
    repo = tmp_path / "fleet"
    times = pq.read_table(repo / STATS_FILE)["event_timestamp"]
    window = (pc.min(times).as_py(), pc.max(times).as_py())
    assert window in (before, after), "the data ends at the hour `parity init` ran"

    parity("apply", cwd=repo)
    out = parity("materialize-incremental", "now", cwd=repo)
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 4}
    assert set(rows) >= {"driver_hourly_stats", "driver_rating", "driver_profile"}, out
    for view in ("driver_hourly_stats", "driver_rating", "driver_profile"):
        cells = [c.strip() for c in rows[view].split("│")]
        assert cells[4:6] == [str(len(DRIVERS))] * 2, f"{view}: keys read and stored: {cells}"

    with FeatureStore(repo) as store:
        resp = store.get_online_features(REFS, entities={"driver_id": [*DRIVERS, UNKNOWN_DRIVER]})
    for ref in REFS:
        name = ref.split(":")[1]
        assert resp.statuses[name] == ["present"] * len(DRIVERS) + ["missing"], name
        assert all(v is not None for v in resp.to_dict()[name][: len(DRIVERS)]), name
        assert set(resp.event_timestamps[name][: len(DRIVERS)]) == {window[1]}, name


def test_the_sample_entity_frames_known_rows_get_features_from_parity_historical(tmp_path: Path):
    made = create_repo("fleet", tmp_path / "fleet")
    parity("apply", cwd=made.path)
    parity(
        "historical", "--entities", ENTITIES_FILE, "--service", "driver_activity",
        "--out", "train.parquet", cwd=made.path,
    )  # fmt: skip
    got = pq.read_table(made.path / "train.parquet")
    entities = pq.read_table(made.path / ENTITIES_FILE)
    assert got["driver_id"].equals(entities["driver_id"])
    features = ["conv_rate", "avg_daily_trips", "driver_rating"]
    for i, row in enumerate(got.select(["driver_id", "event_timestamp", *features]).to_pylist()):
        inside = made.data_start <= row["event_timestamp"] and row["driver_id"] in DRIVERS
        values = [row[f] for f in features]
        if inside:
            assert None not in values, f"entity row {i} is a known driver inside the data: {row}"
        else:
            assert values == [None] * 3, f"entity row {i} cannot match: {row}"
    assert sum(row["driver_id"] == UNKNOWN_DRIVER for row in got.to_pylist()) == 1
    assert got.num_rows - sum(v is None for v in got["conv_rate"].to_pylist()) == 10


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)))
def test_the_data_window_is_the_hours_up_to_now_floored(now: datetime):
    start, end = data_window(now)
    aware = now.replace(tzinfo=UTC)
    assert end <= aware < end + timedelta(hours=1)
    assert (end.minute, end.second, end.microsecond) == (0, 0, 0)
    assert end - start == timedelta(hours=HOURS - 1)
    assert start.tzinfo is UTC and data_window(aware) == (start, end)


def test_the_same_seed_and_now_give_the_same_files_and_another_now_other_times(tmp_path: Path):
    now = datetime(2031, 5, 6, 7, 8, tzinfo=UTC)
    a = create_repo("fleet", tmp_path / "a", now=now)
    b = create_repo("fleet", tmp_path / "b", now=now + timedelta(minutes=50))  # same hour
    c = create_repo("fleet", tmp_path / "c", now=now + timedelta(hours=5))
    assert (a.data_start, a.data_end) == (
        datetime(2031, 5, 3, 8, tzinfo=UTC),
        now.replace(minute=0),
    )
    for name in (STATS_FILE, ENTITIES_FILE):
        assert pq.read_table(a.path / name).equals(pq.read_table(b.path / name)), name
    shifted = pq.read_table(c.path / STATS_FILE)
    original = pq.read_table(a.path / STATS_FILE)
    assert shifted.drop(["event_timestamp", "created"]).equals(
        original.drop(["event_timestamp", "created"])
    ), "the values are the seed's; only the times move"
    assert pc.min(shifted["event_timestamp"]).as_py() == a.data_start + timedelta(hours=5)
    assert f"{a.data_start:%Y-%m-%d %H:%M} to {a.data_end:%Y-%m-%d %H:%M} UTC" in (
        (a.path / "README.md").read_text()
    )
