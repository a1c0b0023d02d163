"""``parity lineage NAME``: where a feature's data comes from, and what reads it.

NAME is an object (view, on-demand view, service, model, source, entity), a feature
(``view:feature`` or ``view.feature``), a source column (``source.column``) or a node id
(``source:driver_stats``). ``--upstream`` / ``--downstream`` walk one way (default both),
``--depth`` edges at most (``all``: no limit). ``--format``: ``table`` (the nodes by distance,
and for ``--upstream`` of a feature the sources it comes from with their last data time),
``json`` (node-link), ``dot`` (Graphviz) or ``mermaid``. With auth on, lineage is a
``describe``: the start must be describable, and what is not is left out.
"""

from __future__ import annotations

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
)

if TYPE_CHECKING:
    from rich.table import Table

    from parity.lineage import SourceOrigin

FORMATS = ("table", "json", "dot", "mermaid")
_ARROWS = {"upstream": "↑", "root": "●", "downstream": "↓"}


def parse_depth(value: str) -> int | None:
    """``--depth``: a whole number >= 0, or ``all`` (no limit)."""
    text = value.strip().lower()
    if text in ("all", "unlimited", "none"):
        return None
    if not text.isdigit():
        raise typer.BadParameter(
            f"{value!r} is not a whole number >= 0 (or 'all')", param_hint="--depth"
        )
    return int(text)


@handles_errors
def lineage(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="An object, a feature (view:feature), a source column (source.column) or a "
            "node id (kind:name).",
        ),
    ],
    upstream: Annotated[
        bool, typer.Option("--upstream", "-u", help="Only what NAME is computed from.")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", "-d", help="Only what reads NAME.")
    ] = False,
    depth: Annotated[
        str, typer.Option("--depth", "-n", metavar="N", help="Edges at most; 'all': no limit.")
    ] = "3",
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="table, json (node-link), dot or mermaid."),
    ] = "table",
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Show the lineage of an object, feature or source column: what it reads, what reads it."""
    if upstream and downstream:
        raise typer.BadParameter(
            "give one of them (or neither: both ways)", param_hint="--upstream / --downstream"
        )
    if fmt not in FORMATS:
        raise typer.BadParameter(
            f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format"
        )
    direction = "upstream" if upstream else "downstream" if downstream else "both"
    limit = parse_depth(depth)
    with open_store(repo) as store:
        require_registry(store)
        store.catalog(fresh=True)
        graph = store.lineage(name, direction, limit)
        origins = None
        root = graph.graph["root"]
        if fmt == "table" and upstream and graph.nodes[root]["kind"] == "feature":
            from parity.lineage import upstream_sources

            origins = upstream_sources(store, root)
    if fmt != "table":
        from parity.lineage import to_dot, to_json, to_mermaid

        writer = {"json": to_json, "dot": to_dot, "mermaid": to_mermaid}[fmt]
        typer.echo(writer(graph), nl=False)
        return
    out = render.console()
    out.print(_nodes_table(graph, direction, limit))
    if origins is not None:
        out.print()
        out.print(_origins_table(graph.nodes[root]["label"], origins))


def _nodes_table(graph: Any, direction: str, depth: int | None) -> Table:
    from rich.table import Table
    from rich.text import Text

    from parity.lineage import ordered

    root = graph.nodes[graph.graph["root"]]
    reach = "no depth limit" if depth is None else f"depth {depth}"
    title = (
        f"Lineage of {render.KIND_LABELS.get(root['kind'], root['kind'].replace('_', ' '))} "
        f"{root['label']} ({direction}, {reach}): {len(graph)} nodes"
    )
    table = Table(title=title, title_justify="left")
    for column, right in (
        ("", False),
        ("Distance", True),
        ("Kind", False),
        ("Node", False),
        ("Type", False),
        ("Via", False),
        ("Next", False),
    ):
        table.add_column(column, justify="right" if right else "left", overflow="fold")
    for _, a in ordered(graph):
        nxt = a.get("next")
        style = "bold" if a["direction"] == "root" else "dim" if a.get("missing") else ""
        table.add_row(
            Text(_ARROWS.get(a["direction"], "")),
            Text(str(a["distance"])),
            Text(str(a["kind"]).replace("_", " ")),
            Text(str(a["label"]) + (" (missing)" if a.get("missing") else ""), style=style),
            Text(str(a.get("dtype") or "")),
            Text(str(a.get("via") or "")),
            Text(str(graph.nodes[nxt]["label"]) if nxt in graph else ""),
        )
    return table


def _origins_table(label: str, origins: list[SourceOrigin]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Sources of {label}", title_justify="left")
    for column in ("Source", "Type", "Columns", "Timestamp", "Last data time", "From"):
        table.add_column(column, overflow="fold")
    for o in origins:
        if o.last_data_time is None:
            when = Text("unknown", style="yellow")
        else:
            when = Text(render.when(o.last_data_time) + ("" if o.complete else " (at least)"))
        table.add_row(
            Text(o.source),
            Text(o.source_type),
            Text(", ".join(o.columns)),
            Text(o.timestamp_field or ""),
            when,
            Text(o.how, style="dim"),
        )
    if not origins:
        table.caption = "no source is upstream (request data only)"
    return table
