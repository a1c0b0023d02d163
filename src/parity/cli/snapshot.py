"""``parity snapshot create | list | show | verify | recreate``: reproducible training sets.

::

    parity snapshot create train_v1 --entities data/driver_entities.parquet \\
        --features driver_hourly_stats:conv_rate,avg_daily_trips --description "ranker v1"
    parity snapshot list                 # every snapshot: rows, features, revision, digest
    parity snapshot show train_v1        # the manifest (--json: all of it, as JSON)
    parity snapshot verify train_v1      # exit 1, naming what differs, when the file changed
    parity snapshot recreate train_v1    # the join at that revision again: exit 0 identical,
                                         # 1 not (naming the source files that changed)

What a snapshot records and how is ``parity.snapshots``'s docstring (and the README's
"Training snapshots").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from rich.table import Table

    from parity.snapshots import Snapshot

app = typer.Typer(
    name="snapshot",
    help="Reproducible training snapshots: create, list, show, verify, recreate.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The snapshot's name.")]


@app.command("create")
@handles_errors
def create(
    name: NameArgument,
    entities: Annotated[
        Path,
        typer.Option(
            "--entities",
            "-e",
            help="Parquet or CSV file of entity rows: the join keys and a timestamp column.",
            dir_okay=False,
        ),
    ],
    features: Annotated[
        list[str],
        typer.Option(
            "--features",
            "-f",
            metavar="REFS",
            help="Feature references view:feature, comma-separated (view:a,b is view:a and "
            "view:b); may be repeated.",
        ),
    ],
    description: Annotated[
        str, typer.Option("--description", "-d", help="What the snapshot is for.")
    ] = "",
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
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a snapshot of that name if there is one.")
    ] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Run the historical retrieval and keep the result as a content-addressed Parquet file,
    with a manifest: the registry revision, every object's version, the source files'
    fingerprints, the on-demand functions' code hashes, the entity rows' digest, a profile."""
    from rich.text import Text

    refs = split_refs(features)
    if not refs:
        raise typer.BadParameter("give at least one feature reference", param_hint="--features")
    with open_store(repo) as store, working(f"Making snapshot {name!r}…"):
        require_registry(store)
        snap = store.create_snapshot(
            name,
            entities,
            refs,
            description=description,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
            replace=replace,
        )
    excluded = snap.manifest["entities"]["excluded_restricted"]
    line = (
        f"Snapshot {snap.name!r}: {snap.rows:,} rows, {len(snap.features)} features, "
        f"revision {snap.revision}, digest {snap.digest[:12]} -> {snap.path}"
    )
    if excluded:
        line += f"; {excluded:,} row(s) of restricted keys left out"
    render.console().print(Text(line, style="bold green"))


@app.command("list")
@handles_errors
def list_(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """List every training snapshot of the project."""
    with open_store(repo) as store:
        require_registry(store)
        found = store.list_snapshots()
    render.console().print(_list_table(found))


@app.command("show")
@handles_errors
def show(
    name: NameArgument,
    as_json: Annotated[bool, typer.Option("--json", help="The whole manifest, as JSON.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Show a snapshot's manifest: what it holds and what it was made from."""
    with open_store(repo) as store:
        require_registry(store)
        snap = store.get_snapshot(name)
    if as_json:
        typer.echo(json.dumps(snap.to_json(), indent=2, sort_keys=True))
        return
    out = render.console()
    for part in _show(snap):
        out.print(part)


@app.command("verify")
@handles_errors
def verify(
    name: NameArgument, repo: RepoOption = Path("."), verbose: VerboseOption = False
) -> None:
    """Re-hash the snapshot's stored rows; exit 1, naming what differs, when its file was
    changed or is missing."""
    from rich.text import Text

    with open_store(repo) as store, working(f"Verifying snapshot {name!r}…"):
        require_registry(store)
        done = store.verify_snapshot(name)
    out = render.console()
    if done.ok:
        out.print(
            Text(
                f"Snapshot {name!r} verified: {done.path} holds digest {done.expected[:12]}",
                style="bold green",
            )
        )
        return
    out.print(Text(f"Snapshot {name!r} does not verify ({done.path}):", style="bold red"))
    for problem in done.problems:
        out.print(Text(f"  - {problem}"))
    if done.found is not None:
        out.print(Text(f"  digest {done.expected[:12]} expected, {done.found[:12]} found"))
    raise typer.Exit(1)


@app.command("recreate")
@handles_errors
def recreate(
    name: NameArgument, repo: RepoOption = Path("."), verbose: VerboseOption = False
) -> None:
    """Run the snapshot's join again with the definitions of its registry revision (not the
    live ones); exit 0 when the result is identical, 1 when not (naming the columns and the
    source files that changed)."""
    from rich.text import Text

    with open_store(repo) as store, working(f"Recreating snapshot {name!r}…"):
        require_registry(store)
        done = store.recreate_snapshot(name)
    out = render.console()
    head = f"Snapshot {name!r} recreated at revision {done.revision}: {done.rows:,} rows, "
    if done.identical:
        out.print(Text(head + f"identical (digest {done.expected[:12]})", style="bold green"))
    else:
        out.print(Text(head + "NOT identical", style="bold red"))
        out.print(Text(f"  digest {done.expected[:12]} expected, {done.found[:12]} found"))
        for line in done.differences:
            out.print(Text(f"  - {line}"))
    if done.changes:
        out.print(Text("Source files changed since the snapshot was made:"))
        for change in done.changes:
            out.print(Text(f"  - {change.render()}"))
    elif not done.identical:
        out.print(
            Text(
                "No source file changed: a restriction made since (restricted keys are "
                "served masked), or code an on-demand function calls, can explain it."
            )
        )
    if not done.identical:
        raise typer.Exit(1)


# -- tables ----------------------------------------------------------------------------------


def _list_table(found: list[Snapshot]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Training snapshots: {len(found)}", title_justify="left")
    for column, right in (
        ("Name", False),
        ("Rows", True),
        ("Features", True),
        ("Revision", True),
        ("Created", False),
        ("By", False),
        ("Digest", False),
        ("Description", False),
    ):
        table.add_column(column, justify="right" if right else "left", overflow="fold")
    for s in found:
        erased = f" (erased {len(s.erasures)}x)" if s.erasures else ""
        table.add_row(
            Text(s.name),
            Text(f"{s.rows:,}"),
            Text(str(len(s.features))),
            Text(str(s.revision)),
            Text(render.when(s.created_at)),
            Text(s.created_by),
            Text(s.digest[:12] + erased),
            Text(s.description),
        )
    if not found:
        table.caption = "none yet: parity snapshot create NAME --entities FILE --features ..."
    return table


def _show(snap: Snapshot) -> list[Any]:
    from rich.table import Table
    from rich.text import Text

    m = snap.manifest
    entities = m["entities"]
    request = m["request"]
    facts = [
        ("file", snap.path),
        ("digest", f"{snap.digest} ({m.get('scheme', '')})"),
        ("rows", f"{snap.rows:,}"),
        ("created", f"{render.when(snap.created_at)} by {snap.created_by}"),
        ("registry revision", str(snap.revision)),
        ("description", snap.description),
        (
            "entity rows",
            f"{entities['rows']:,} given (digest {entities['sha256'][:12]}), columns "
            f"{', '.join(entities['columns'])}; {entities['excluded_restricted']:,} of "
            "restricted keys left out",
        ),
        (
            "request",
            f"{request['features']!r}, timestamp column {request['timestamp_column']!r}"
            + (", full feature names" if request["full_feature_names"] else ""),
        ),
        ("features", ", ".join(snap.features)),
    ]
    head = Text(f"Snapshot {snap.name}\n", style="bold")
    for key, value in facts:
        head.append(f"  {key + ':':<19}", style="dim")
        head.append(f"{value}\n")
    parts: list[Any] = [head]

    objects = Table(title="Objects at that revision", title_justify="left")
    for column in ("Kind", "Name", "Version", "#"):
        objects.add_column(column)
    for o in snap.objects:
        label = render.KIND_LABELS.get(o["kind"], o["kind"])
        objects.add_row(Text(label), Text(o["name"]), Text(o["version"]), Text(str(o["number"])))
    parts.append(objects)

    files = Table(title="Source files read", title_justify="left")
    for column, right in (("Source", False), ("File", False), ("Bytes", True), ("Rows", True)):
        files.add_column(column, justify="right" if right else "left", overflow="fold")
    files.add_column("Fingerprint", overflow="fold")
    for s in snap.sources:
        for f in s.files:
            rows = "" if f.rows is None else f"{f.rows:,}"
            files.add_row(
                Text(s.source),
                Text(f.path),
                Text(f"{f.size:,}"),
                Text(rows),
                Text(f"{f.how} {f.digest[:12]}"),
            )
    parts.append(files)

    if snap.functions:
        code = Table(title="On-demand functions", title_justify="left")
        for column in ("View", "Function", "Code hash"):
            code.add_column(column)
        for fn in snap.functions:
            code.add_row(Text(fn["view"]), Text(fn["function"]), Text(fn["code_hash"][:12]))
        parts.append(code)

    profile = Table(title="Profile", title_justify="left")
    for column, right in (
        ("Feature", False),
        ("Type", False),
        ("Nulls", True),
        ("Distinct", True),
        ("Mean", True),
        ("Min", True),
        ("Max", True),
    ):
        profile.add_column(column, justify="right" if right else "left")
    for p in snap.profile:
        profile.add_row(
            Text(p["feature"]),
            Text(p["dtype"]),
            Text(f"{p['nulls']:,}"),
            Text("" if p["distinct"] is None else f"{p['distinct']:,}"),
            *(Text(_number(p[k])) for k in ("mean", "min", "max")),
        )
    parts.append(profile)

    for e in snap.erasures:
        parts.append(
            Text(
                f"erased {e['at']}: {e['rows']:,} row(s) of {e['keys']} key(s) of entity "
                f"{e['entity']!r} (digest before: {e['previous_digest'][:12]})"
            )
        )
    return parts


def _number(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:,.4g}" if isinstance(value, float) else f"{value:,}"
