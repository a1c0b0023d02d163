"""``parity historical``: point-in-time correct training data from an entity file to a file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from parity.cli import render
from parity.cli.common import (
    RepoOption,
    VerboseOption,
    handles_errors,
    open_store,
    require_registry,
    split_refs,
    working,
)
from parity.errors import ParityError

if TYPE_CHECKING:
    import pyarrow as pa

    from parity.query.refs import FeatureRefs

_EITHER = "'--features' / '--service'"


@handles_errors
def historical(
    entities: Annotated[
        Path,
        typer.Option(
            "--entities",
            "-e",
            help="Parquet or CSV file of entity rows: the join keys and a timestamp column.",
            dir_okay=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The file to write: CSV if it ends in .csv, else Parquet.",
            dir_okay=False,
        ),
    ],
    features: Annotated[
        list[str] | None,
        typer.Option(
            "--features",
            "-f",
            metavar="REFS",
            help="Feature references view:feature, comma-separated (view:* for all of a "
            "view's features); may be repeated. Exclusive with --service.",
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service", "-s", metavar="NAME", help="A feature service whose features to fetch."
        ),
    ] = None,
    timestamp_column: Annotated[
        str,
        typer.Option(
            metavar="COLUMN", help="The entity file's timestamp column (naive times are UTC)."
        ),
    ] = "event_timestamp",
    full_feature_names: Annotated[
        bool,
        typer.Option(
            "--full-feature-names", help="Name output columns view__feature, not feature."
        ),
    ] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Fetch features for every entity row, as of each row's timestamp, and write them.

    Every entity row comes back once, in input order; a feature with no value within its view's ttl at or before the row's timestamp is empty (null).
    """
    from rich.text import Text

    refs = split_refs(features)
    if refs and service:
        raise typer.BadParameter("give one of them, not both", param_hint=_EITHER)
    if not refs and not service:
        raise typer.BadParameter(
            "give one: --features view:feature,... or --service NAME", param_hint=_EITHER
        )
    wanted: FeatureRefs = refs or str(service)
    started = time.perf_counter()
    with open_store(repo) as store, working("Joining features point in time…"):
        from parity.query.plan import plan_features

        require_registry(store)
        plan = plan_features(wanted, store.catalog(), full_feature_names=full_feature_names)
        outputs = [o.name for o in plan.outputs]
        table = store.get_historical_features(
            entities,
            wanted,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
        ).to_arrow()
        write_table(table, out)
    elapsed = time.perf_counter() - started
    missed = rows_without_features(table, outputs)
    render.console().print(
        Text(
            f"Wrote {table.num_rows} rows ({len(outputs)} features) to {out} "
            f"in {elapsed:.2f} s; {missed} row(s) had no value for any feature.",
            style="bold green",
        )
    )


def write_table(table: pa.Table, out: Path) -> None:
    """Write ``table`` as CSV when ``out`` ends in ``.csv``, else as Parquet."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            pacsv.write_csv(table, out)
        else:
            pq.write_table(table, out)
    except (OSError, pa.ArrowException) as exc:
        raise ParityError(f"cannot write {out}: {exc}") from None


def rows_without_features(table: pa.Table, features: list[str]) -> int:
    """How many rows hold null in every one of ``features``."""
    import pyarrow.compute as pc

    if not features or table.num_rows == 0:
        return 0
    empty = pc.is_null(table.column(features[0]))
    for name in features[1:]:
        empty = pc.and_(empty, pc.is_null(table.column(name)))
    return int(pc.sum(empty).as_py() or 0)
