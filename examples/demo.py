"""Parity end to end on the embedded defaults: a SQLite registry and DuckDB over Parquet.

    .venv/bin/python examples/demo.py [--dir PATH]

Scaffolds a feature repo as `parity init` does, plans and applies it, fetches training data in
process and through the `parity` command, changes a ttl and shows the plan and the new
version, then materializes into the online store and reads the same values online. Runs in a fresh temporary folder, removed afterwards, or in --dir (absent or empty),
kept. Exits with status 1 if any result is off.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.table import Table
from rich.text import Text

from parity.cli import render
from parity.cli.scaffold import DATA_START, DRIVERS, create_repo
from parity.definitions import KINDS, Aggregation, FeatureView
from parity.errors import ParityError
from parity.store import FeatureStore

FEATURES = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:avg_daily_trips",
    "driver_rating:driver_rating",
]
OLD_TTL, NEW_TTL = "ttl=timedelta(days=1)", "ttl=timedelta(hours=2)"
console = render.console()


class DemoFailed(Exception):
    """A result was not what the demo expects."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise DemoFailed(what)


def entity_rows(known: int = 20) -> tuple[pa.Table, int]:
    """``known`` rows of known drivers inside the data's time range, then rows that cannot match.

    The data has a row per driver and hour, so every known row finds a value within any ttl of
    an hour or more. The misses: two unknown drivers, and a known one a day before the data.
    """
    rng = np.random.default_rng(0)
    ids = [int(d) for d in rng.choice(DRIVERS, known)] + [4242, 4343, DRIVERS[0]]
    times = [DATA_START + timedelta(minutes=int(m)) for m in rng.integers(60, 72 * 60, known)]
    times += [DATA_START + timedelta(hours=5), DATA_START + timedelta(hours=30)]
    times += [DATA_START - timedelta(days=1)]
    table = pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
        }
    )
    return table, 3


def show_rows(table: pa.Table, limit: int = 8) -> None:
    grid = Table(
        title=f"First {min(limit, table.num_rows)} of {table.num_rows} rows", title_justify="left"
    )
    for name in table.column_names:
        grid.add_column(name)
    for row in table.slice(0, limit).to_pylist():
        grid.add_row(*("-" if v is None else str(v) for v in row.values()))
    console.print(grid)


def parity_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the `parity` command (this interpreter's) and fail the demo if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "parity.cli", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DemoFailed(f"parity {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def online_equals_historical(store: FeatureStore, refs: list[str], as_of: datetime) -> Any:
    """The online values of every driver (and an unknown one) at ``as_of``, checked equal
    to the historical values of entity rows stamped ``as_of``."""
    ids = [int(d) for d in DRIVERS] + [9999]
    online = store.get_online_features(refs, entities={"driver_id": ids})
    stamped = pa.table({"driver_id": ids, "event_timestamp": [as_of] * len(ids)})
    offline = store.get_historical_features(stamped, refs).to_arrow()
    for ref in refs:
        name = ref.split(":")[1]
        check(
            online.to_dict()[name] == offline[name].to_pylist(),
            f"online {name} equals the historical value at {as_of:%Y-%m-%d %H:%M}, to the bit",
        )
    return online


def run(repo: Path) -> None:
    console.rule("1. Scaffold a feature repo (the code path of `parity init`)")
    made = create_repo("driver_demo", repo)
    console.print(f"{made.path}: " + ", ".join(made.files), markup=False)

    with FeatureStore(repo) as store:
        console.rule("2. Plan and apply")
        plan = store.plan()
        console.print(render.plan_text(plan))
        check(len(plan.of("create")) == len(plan.changes) == 6, "the plan creates 6 objects")
        done = store.apply(author="demo")
        console.print(render.applied_summary(done))

        console.rule("3. What is registered")
        catalog = store.catalog(fresh=True)
        for kind in KINDS:
            objects = [catalog.get(kind, name) for name in catalog.names(kind)]
            console.print(render.definitions_table(kind, objects))

        console.rule("4. Training data, point in time")
        entities, misses = entity_rows()
        result = store.get_historical_features(entities, FEATURES).to_arrow()
        show_rows(result)
        outputs = [ref.split(":")[1] for ref in FEATURES]
        no_match = pc.and_(
            pc.and_(pc.is_null(result["conv_rate"]), pc.is_null(result["avg_daily_trips"])),
            pc.is_null(result["driver_rating"]),
        )
        unmatched = pc.sum(no_match).as_py()
        console.print(
            f"{entities.num_rows} entity rows in, {result.num_rows} rows back; "
            f"{unmatched} had no match (expected {misses})."
        )
        check(result.num_rows == entities.num_rows, "every entity row comes back")
        check(result["driver_id"].equals(entities["driver_id"]), "rows come back in input order")
        check(unmatched == misses, f"{misses} rows have no match")
        known = result.slice(0, entities.num_rows - misses)
        check(all(known[f].null_count == 0 for f in outputs), "every known row has every feature")

    console.rule("5. The same through the CLI: parity historical")
    entity_file, out = repo / "entities.parquet", repo / "training.parquet"
    pq.write_table(entities, entity_file)
    shown = parity_cli(
        "historical", "--repo", str(repo), "--entities", str(entity_file),
        "--features", ",".join(FEATURES), "--out", str(out),
    )  # fmt: skip
    console.print(shown.stdout.strip(), markup=False)
    check(pq.read_table(out).equals(result), "the CLI writes the same rows as the Python API")

    console.rule("6. Change a definition: the ttl of driver_hourly_stats")
    features_py = repo / "features.py"
    text = features_py.read_text()
    check(text.count(OLD_TTL) == 1, f"features.py holds {OLD_TTL} once")
    features_py.write_text(text.replace(OLD_TTL, NEW_TTL))
    with FeatureStore(repo) as store:
        plan = store.plan()
        console.print(render.plan_text(plan))
        console.print(f"Plan: {plan.summary()}")
        updates = plan.of("update")
        check(
            [(c.name, [fc.path for fc in c.diff]) for c in updates]
            == [("driver_hourly_stats", ["ttl"])],
            "the plan changes only the ttl of driver_hourly_stats",
        )
        store.apply(author="demo")
        versions = store.history("driver_hourly_stats", "feature_view")
        check([v.version for v in versions] == [1, 2], "driver_hourly_stats has versions 1 and 2")
    history = parity_cli("history", "driver_hourly_stats", "--repo", str(repo))
    console.print(history.stdout.strip(), markup=False)

    console.rule("7. Online: materialize, then read the latest values")
    shown = parity_cli("materialize", "2023-12-31", "2024-01-05", "--repo", str(repo))
    console.print(shown.stdout.strip(), markup=False)
    # The sample data ends on 2024-01-03; read as of just after it, so ttls have not run out.
    as_of = DATA_START + timedelta(hours=72)
    with FeatureStore(repo, clock=lambda: as_of) as store:
        online = online_equals_historical(store, FEATURES, as_of)
        table = online.to_arrow(include_metadata=True)
        show_rows(table.select(["driver_id", "conv_rate", "conv_rate__status", "driver_rating"]))
        check(online.statuses["conv_rate"][-1] == "missing", "an unknown driver is 'missing'")
        console.print("Online values equal the historical join at the same instant.")

    console.rule("8. Window aggregations: one definition, the same number offline and online")
    windows = FeatureView(
        name="driver_windows",
        entities=["driver"],
        source="driver_stats_source",
        hop=timedelta(hours=1),
        aggregations=[
            Aggregation(column="avg_daily_trips", function="sum", window=timedelta(hours=6)),
            Aggregation(column="conv_rate", function="mean", window=timedelta(hours=6)),
            Aggregation(column="conv_rate", function="stddev", window=timedelta(days=1)),
            Aggregation(function="count", window=timedelta(days=1), name="hours_seen_1d"),
        ],
    )
    with FeatureStore(repo, clock=lambda: as_of) as store:
        store.apply([windows], author="demo")
        store.materialize(DATA_START - timedelta(days=1), as_of, views=["driver_windows"])
        refs = [f"driver_windows:{name}" for name in windows.feature_names]
        online = online_equals_historical(store, refs, as_of)
        show_rows(online.to_arrow())
        check(online.to_dict()["hours_seen_1d"][-1] == 0, "an unknown driver has a count of 0")


def demo(repo: Path) -> int:
    try:
        run(repo)
    except (DemoFailed, ParityError) as exc:
        console.print(Text.assemble(("Demo failed: ", "bold red"), str(exc)))
        return 1
    console.print(f"[bold green]Demo passed.[/] The repo was {repo}.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="make the repo here (absent or empty) and keep it")
    args = parser.parse_args()
    if args.dir is not None:
        return demo(args.dir)
    with tempfile.TemporaryDirectory(prefix="parity-demo-") as temp:
        return demo(Path(temp) / "driver_demo")


if __name__ == "__main__":
    sys.exit(main())
