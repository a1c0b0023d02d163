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
PREVIEW_ROWS = 20
"""Rows of the result a table shows by default."""


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
            help="The file to write: CSV if it ends in .csv, else Parquet; '-' prints the "
            "result: a table on a terminal, CSV when piped.",
            dir_okay=False,
            allow_dash=True,
        ),
    ],
    features: Annotated[
        list[str] | None,
        typer.Option(
            "--features",
            "-f",
            metavar="REFS",
            help="Feature references view:feature, comma-separated (view:a,b is view:a and "
            "view:b; view:* all of a view's features); may be repeated. Exclusive with "
            "--service.",
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
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="auto, table, csv or parquet. auto: a file by its extension; '--out -' "
            "a table on a terminal and CSV otherwise. table is for '--out -' only.",
        ),
    ] = "auto",
    limit: Annotated[
        int,
        typer.Option(
            min=1, metavar="N", help="Rows a table shows (the count of all rows is given)."
        ),
    ] = PREVIEW_ROWS,
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
    fmt = output_kind(out, output_format)
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
        if fmt in ("csv", "parquet") and str(out) != "-":
            write_table(table, out, fmt)
    elapsed = time.perf_counter() - started
    missed = rows_without_features(table, outputs)
    where = "stdout" if str(out) == "-" else str(out)
    summary = Text(
        f"{'Printed' if where == 'stdout' else 'Wrote'} {table.num_rows} rows "
        f"({len(outputs)} features) to {where} in {elapsed:.2f} s; {missed} row(s) had no "
        "value for any feature.",
        style="bold green",
    )
    if fmt == "table":
        render.console().print(render.arrow_table(table, limit=limit))
    elif where == "stdout":  # the data is stdout: CSV, and what was done goes to stderr
        import pyarrow as pa
        import pyarrow.csv as pacsv

        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        typer.echo(sink.getvalue().to_pybytes().decode(), nl=False)
        render.console(stderr=True).print(summary)
        return
    render.console().print(summary)


def output_kind(out: Path, chosen: str) -> str:
    """``table``, ``csv`` or ``parquet`` for ``--out`` and ``--format``; refuses the
    combinations that cannot be (a table in a file, Parquet on stdout)."""
    import sys

    kind = chosen.strip().lower()
    if kind not in ("auto", "table", "csv", "parquet"):
        raise typer.BadParameter(
            f"{chosen!r} is not a format; use auto, table, csv or parquet", param_hint="'--format'"
        )
    dash = str(out) == "-"
    if kind == "auto":
        if dash:
            return "table" if sys.stdout.isatty() else "csv"
        return "csv" if out.suffix.lower() == ".csv" else "parquet"
    if kind == "table" and not dash:
        raise typer.BadParameter(
            "a table is printed: use it with '--out -'", param_hint="'--format'"
        )
    if kind == "parquet" and dash:
        raise typer.BadParameter(
            "Parquet is not printed: give a file with --out", param_hint="'--format'"
        )
    return kind


def write_table(table: pa.Table, out: Path, kind: str | None = None) -> None:
    """Write ``table`` as ``kind`` (csv or parquet; default: CSV when ``out`` ends in
    ``.csv``, else Parquet)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if (kind or ("csv" if out.suffix.lower() == ".csv" else "parquet")) == "csv":
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
