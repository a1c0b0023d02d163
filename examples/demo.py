"""A guided tour of Parity on the embedded defaults: a SQLite registry, DuckDB over Parquet.

    .venv/bin/python examples/demo.py [--keep | --dir PATH]      (or: make demo [KEEP=1])

Scaffolds a feature repo as `parity init` does (sample data ending at the current hour), plans
and applies it, fetches point-in-time training data in process and through the `parity`
command, changes a ttl and shows the plan and the new version, materializes the latest values
(`parity materialize-incremental now`) and reads them online, then adds a window aggregation
and shows the same numbers offline and online. Each step says what it did, why, with its
numbers and its time. The repo is made in a temporary folder and removed at the end, unless
--keep (kept, and its path printed) or --dir PATH (absent or empty, kept). Exits with status 1
if any result is off.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.table import Table
from rich.text import Text

from parity.cli import render
from parity.cli.scaffold import DRIVERS, ENTITIES_FILE, STATS_FILE, Scaffold, create_repo
from parity.definitions import KINDS, Aggregation, FeatureView
from parity.errors import ParityError, ValidationError
from parity.store import FeatureStore

FEATURES = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:avg_daily_trips",
    "driver_rating:driver_rating",
]
OLD_TTL, NEW_TTL = "ttl=timedelta(days=1)", "ttl=timedelta(hours=2)"
STEPS = 9
CHECKOUT = Path(__file__).resolve().parents[1]
console = render.console()


class DemoFailed(Exception):
    """A result was not what the demo expects."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise DemoFailed(what)


@contextmanager
def step(number: int, title: str, why: str) -> Iterator[None]:
    """A step's heading and why it matters, then (after its body) how long it took."""
    console.rule(Text(f"Step {number} of {STEPS}: {title}", style="bold"), align="left")
    console.print(Text(why, style="italic"))
    began = time.perf_counter()
    yield
    console.print(Text(f"({time.perf_counter() - began:.2f} s)", style="dim"))


def say(text: str) -> None:
    console.print(Text(text))


def entity_rows(start: datetime, known: int = 20) -> tuple[pa.Table, int]:
    """``known`` rows of known drivers inside the data (which starts at ``start``), then rows
    that cannot match; returns the frame and how many rows cannot match.

    The data has a row per driver and hour, so every known row finds a value within any ttl of
    an hour or more. The misses: two unknown drivers, and a known one a day before the data.
    """
    rng = np.random.default_rng(0)
    ids = [int(d) for d in rng.choice(DRIVERS, known)] + [4242, 4343, DRIVERS[0]]
    times = [start + timedelta(minutes=int(m)) for m in rng.integers(60, 71 * 60, known)]
    times += [start + timedelta(hours=5), start + timedelta(hours=30)]
    times += [start - timedelta(days=1)]
    table = pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
        }
    )
    return table, 3


def show_rows(table: pa.Table, limit: int = 6) -> None:
    grid = Table(
        title=f"first {min(limit, table.num_rows)} of {table.num_rows} rows", title_justify="left"
    )
    for name in table.column_names:
        grid.add_column(name)
    for row in table.slice(0, limit).to_pylist():
        grid.add_row(*(_cell(v) for v in row.values()))
    console.print(grid)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def parity_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the `parity` command (this interpreter's) and fail the demo if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "parity.cli", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DemoFailed(f"parity {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def online_equals_historical(store: FeatureStore, refs: list[str], as_of: datetime) -> Any:
    """The online values of every driver (and an unknown one), checked equal to the
    historical values of entity rows stamped ``as_of``."""
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


def run(repo: Path) -> Scaffold:
    with step(
        1,
        "scaffold a feature repo",
        "What `parity init` writes: parity.yaml, definitions in Python and YAML, and seeded "
        "sample data that ends at the current hour, so everything below works on it at once.",
    ):
        made = create_repo("driver_demo", repo)
        stats = pq.read_table(repo / STATS_FILE)
        say(f"{made.path}")
        say("  " + ", ".join(made.files))
        say(
            f"{stats.num_rows} rows of driver statistics: {len(DRIVERS)} drivers, one row an "
            f"hour from {made.data_start:%Y-%m-%d %H:%M} to {made.data_end:%Y-%m-%d %H:%M} UTC; "
            f"a sample entity frame of {pq.read_metadata(repo / ENTITIES_FILE).num_rows} rows."
        )

    with FeatureStore(repo) as store:
        with step(
            2,
            "plan, then apply",
            "`parity plan` shows what `parity apply` would register, as a diff; apply checks "
            "every definition against the data and registers all of them or none.",
        ):
            plan = store.plan()
            console.print(render.plan_text(plan))
            say(f"Plan: {plan.summary()}.")
            check(len(plan.of("create")) == len(plan.changes) == 6, "the plan creates 6 objects")
            done = store.apply(author="demo")
            say(render.applied_summary(done))

        with step(
            3,
            "what is registered",
            "`parity list` and `parity describe` read the registry: every object, its owner, "
            "its source and its ttl.",
        ):
            catalog = store.catalog(fresh=True)
            for kind in KINDS:
                objects = [catalog.get(kind, name) for name in catalog.names(kind)]
                if objects:
                    console.print(render.definitions_table(kind, objects))

        with step(
            4,
            "training data, point in time (Python)",
            "get_historical_features gives each entity row the latest feature values at or "
            "before its timestamp, within each view's ttl: what a model would have seen then.",
        ):
            entities, misses = entity_rows(made.data_start)
            result = store.get_historical_features(entities, FEATURES).to_arrow()
            show_rows(result)
            outputs = [ref.split(":")[1] for ref in FEATURES]
            no_match = pc.and_(
                pc.and_(pc.is_null(result["conv_rate"]), pc.is_null(result["avg_daily_trips"])),
                pc.is_null(result["driver_rating"]),
            )
            unmatched = pc.sum(no_match).as_py()
            say(
                f"{entities.num_rows} entity rows in, {result.num_rows} rows back; "
                f"{unmatched} had no match (expected {misses})."
            )
            check(result.num_rows == entities.num_rows, "every entity row comes back")
            check(
                result["driver_id"].equals(entities["driver_id"]), "rows come back in input order"
            )
            check(unmatched == misses, f"{misses} rows have no match")
            known = result.slice(0, entities.num_rows - misses)
            check(
                all(known[f].null_count == 0 for f in outputs), "every known row has every feature"
            )

    with step(
        5,
        "the same through the CLI: parity historical",
        "The command writes the training set to a file; the rows are the Python API's.",
    ):
        entity_file, out = repo / "entities.parquet", repo / "training.parquet"
        pq.write_table(entities, entity_file)
        shown = parity_cli(
            "historical", "--repo", str(repo), "--entities", str(entity_file),
            "--features", ",".join(FEATURES), "--out", str(out),
        )  # fmt: skip
        console.print(shown.stdout.strip(), markup=False)
        check(pq.read_table(out).equals(result), "the CLI writes the same rows as the Python API")
        say(f"{out}: {pq.read_metadata(out).num_rows} rows, equal to the Python API's.")

    with step(
        6,
        "change a definition: the ttl of driver_hourly_stats, 1 day to 2 hours",
        "Edit features.py; the plan names the one field that changed, its semantic-version bump "
        "(a shorter ttl is major) and the service it breaks. Apply refuses a breaking change "
        "to what a service reads until told --allow-breaking, then records version 2.0.0 with "
        "who, when, what and the override (`parity history`).",
    ):
        features_py = repo / "features.py"
        text = features_py.read_text()
        check(text.count(OLD_TTL) == 1, f"features.py holds {OLD_TTL} once")
        features_py.write_text(text.replace(OLD_TTL, NEW_TTL))
        with FeatureStore(repo) as store:
            plan = store.plan()
            console.print(render.plan_text(plan))
            say(f"Plan: {plan.summary()}.")
            updates = plan.of("update")
            check(
                [(c.name, [fc.path for fc in c.diff]) for c in updates]
                == [("driver_hourly_stats", ["ttl"])],
                "the plan changes only the ttl of driver_hourly_stats",
            )
            check(
                [(i.name, i.bump, [r.name for r in i.breaks]) for i in plan.impacts]
                == [("driver_hourly_stats", "major", ["driver_activity"])],
                "the plan says the shorter ttl is major and breaks the service driver_activity",
            )
            try:
                store.apply(author="demo")
            except ValidationError as exc:
                say(f"Refused: {exc.problems[0]}")
            else:
                check(False, "apply refuses the breaking change without allow_breaking")
            store.apply(author="demo", allow_breaking=True)
            versions = store.history("driver_hourly_stats", "feature_view")
            check(
                [v.version for v in versions] == ["1.0.0", "2.0.0"],
                "driver_hourly_stats has versions 1.0.0 and 2.0.0",
            )
        history = parity_cli("history", "driver_hourly_stats", "--repo", str(repo))
        console.print(history.stdout.strip(), markup=False)

    with step(
        7,
        "online: parity materialize-incremental now, then read",
        "Materializing loads each entity's latest value into the online store (SQLite here, "
        "Redis in production); reads then answer in milliseconds, with the values the "
        "historical join gives for a row stamped now.",
    ):
        shown = parity_cli("materialize-incremental", "now", "--repo", str(repo))
        console.print(shown.stdout.strip(), markup=False)
        as_of = datetime.now(UTC)
        with FeatureStore(repo) as store:
            began = time.perf_counter()
            online = online_equals_historical(store, FEATURES, as_of)
            table = online.to_arrow(include_metadata=True)
            show_rows(
                table.select(["driver_id", "conv_rate", "conv_rate__status", "driver_rating"])
            )
            present = sum(s == "present" for v in online.statuses.values() for s in v)
            check(online.statuses["conv_rate"][-1] == "missing", "an unknown driver is 'missing'")
            check(
                present == len(FEATURES) * len(DRIVERS),
                f"every known driver's {len(FEATURES)} features are present",
            )
            say(
                f"{present} values present for {len(DRIVERS)} drivers, 'missing' for the unknown "
                f"driver 9999; equal to the historical join at {as_of:%H:%M:%S} UTC "
                f"(read and compared in {time.perf_counter() - began:.2f} s)."
            )

    with step(
        8,
        "window aggregations: one definition, the same number offline and online",
        "A view with aggregations (sums, means, counts over a sliding window) is computed "
        "exactly, so training and serving agree to the bit.",
    ):
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
        as_of = made.data_end + timedelta(minutes=30)  # a fixed instant, so windows stay put
        with FeatureStore(repo, clock=lambda: as_of) as store:
            store.apply([windows], author="demo")
            done = store.materialize(made.data_start - timedelta(days=1), as_of, ["driver_windows"])
            refs = [f"driver_windows:{name}" for name in windows.feature_names]
            online = online_equals_historical(store, refs, as_of)
            show_rows(online.to_arrow())
            check(online.to_dict()["hours_seen_1d"][-1] == 0, "an unknown driver has a count of 0")
            check(
                online.to_dict()["hours_seen_1d"][:-1] == [24] * len(DRIVERS),
                "each driver has 24 hourly rows in the last day",
            )
            say(
                f"{done.stored} entity records stored; {len(refs)} aggregates for "
                f"{len(DRIVERS)} drivers, equal online and offline at {as_of:%Y-%m-%d %H:%M} UTC."
            )

    with step(
        9,
        "monitoring: statistics, quality checks, freshness against the SLA",
        "Parity profiles each feature where the data lives, evaluates the rules declared "
        "with it, and measures how stale each view is against the freshness it promises.",
    ), FeatureStore(repo) as store:
        profile = store.profile("driver_hourly_stats")
        show_rows(profile.table.select(["feature", "rows", "nulls", "mean", "p50", "p99"]))
        rows = pq.read_metadata(repo / STATS_FILE).num_rows
        check(profile.summary["rows"] == rows, "every source row is profiled")
        checked = FeatureView(
            name="driver_checked",
            entities=["driver"],
            source="driver_stats_source",
            on_check_failure="block",
            schema=[
                {"name": "conv_rate", "dtype": "Float64", "checks": {"min": 0, "max": 1}},
                {"name": "avg_daily_trips", "dtype": "Int64", "checks": {"min": 0}},
            ],
        )
        store.apply([checked], author="demo")
        result = store.check("driver_checked")
        check(result.summary["violations"] == 0, "conv_rate lies in [0, 1], trips >= 0")
        bad = {
            "driver_id": [1001],
            "event_timestamp": [datetime.now(UTC)],
            "conv_rate": [1.7],
            "avg_daily_trips": [3],
        }
        try:
            store.write_to_online_store("driver_checked", bad)
            refused = False
        except ParityError as exc:
            refused = "conv_rate" in str(exc)
        after = store.get_online_features(
            ["driver_checked:conv_rate"], entities={"driver_id": [1001]}
        )
        check(
            refused and after.statuses["conv_rate"] == ["missing"],
            "a batch breaking a rule is refused, nothing of it written",
        )
        fresh = {r["view"]: r for r in store.freshness().to_pylist()}
        rating = fresh["driver_rating"]
        check(
            rating["lag_seconds"] is not None and not rating["breached"],
            "driver_rating is within its freshness SLA",
        )
        say(
            f"{len(profile)} features profiled over {rows} rows; {len(result)} rules pass; "
            f"driver_rating lags {rating['lag_seconds']:.0f} s against its "
            f"{rating['sla_seconds']:.0f} s SLA (score {rating['score']:.2f})."
        )
    return made


def next_steps(repo: Path, kept: bool) -> None:
    bin_dir = Path(sys.executable).parent
    if not kept:
        say(f"The repo was {repo}; it has been removed (keep it with `make demo KEEP=1`).")
        say(
            f"Make your own: `source {bin_dir / 'activate'}` puts `parity` on your PATH, then "
            "`parity init my_repo` and follow its README.md."
        )
        return
    say(f"The repo is kept at {repo}. Try:")
    for line in (
        f"source {bin_dir / 'activate'}      # puts `parity` on your PATH",
        f"cd {repo}",
        "parity list views",
        "parity describe driver_hourly_stats",
        "parity history driver_hourly_stats",
        "parity profile driver_hourly_stats",
        "parity freshness",
        f"pip install -e '{CHECKOUT}[server]'   # the server's extra (make test installs it)",
        "parity serve      # then: curl -s localhost:6566/get-online-features -d "
        '\'{"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}\'',
    ):
        say(f"  {line}")


def demo(repo: Path, *, kept: bool = True) -> int:
    began = time.perf_counter()
    try:
        run(repo)
    except (DemoFailed, ParityError) as exc:
        console.print(Text.assemble(("Demo failed: ", "bold red"), str(exc)))
        return 1
    console.rule()
    console.print(f"[bold green]Demo passed[/] in {time.perf_counter() - began:.1f} s.")
    next_steps(repo, kept)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--keep", action="store_true", help="keep the repo (in a temporary folder)")
    where.add_argument("--dir", type=Path, help="make the repo here (absent or empty) and keep it")
    args = parser.parse_args(argv)
    if args.dir is not None:
        return demo(args.dir.resolve())
    if args.keep:
        return demo(Path(tempfile.mkdtemp(prefix="parity-demo-")) / "driver_demo")
    with tempfile.TemporaryDirectory(prefix="parity-demo-") as temp:
        return demo(Path(temp) / "driver_demo", kept=False)


if __name__ == "__main__":
    sys.exit(main())
