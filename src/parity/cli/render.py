"""How the CLI shows things: consoles, plans, tables of definitions and versions, specs.

Text from definitions and diffs is never read as rich markup (``schema[conv_rate]`` would be
taken for a style tag); it goes through ``Text``. When output is not a terminal, lines are
not wrapped at 80 columns, so tables stay greppable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich and the models load when something is shown, not for `parity --help`
    from rich.console import Console, Group
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    from parity.definitions import DataSource, Definition, FeatureService, FeatureView
    from parity.registry import Change, Plan, VersionRecord
    from parity.registry.catalog import Catalog
    from parity.registry.impact import Impact

_WIDE = 200
BUMP_STYLE = {"major": "bold red", "minor": "yellow", "patch": "dim", "": ""}
_ACTION_STYLE = {"create": "green", "update": "yellow", "delete": "red", "unchanged": "dim"}
KIND_LABELS = {
    "entity": "entity",
    "source": "data source",
    "feature_view": "feature view",
    "on_demand_feature_view": "on-demand feature view",
    "feature_service": "feature service",
    "model": "model",
    "role": "role",
}
KIND_TITLES = {
    "entity": "Entities",
    "source": "Data sources",
    "feature_view": "Feature views",
    "on_demand_feature_view": "On-demand feature views",
    "feature_service": "Feature services",
    "model": "Models",
    "role": "Roles",
}


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr), made per use so test runners' streams are honoured."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty() and not os.environ.get("COLUMNS", "").strip().isdigit():
        width = _WIDE
    # soft_wrap: long lines (an error listing columns) stay whole rather than broken mid-word.
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """``error: message`` in red on stderr."""
    from rich.text import Text

    console(stderr=True).print(Text(f"error: {message}", style="bold red"))


# -- plans ------------------------------------------------------------------------------------


def plan_text(plan: Plan) -> Text:
    """The plan's readable diff, coloured by action; no summary line."""
    from rich.text import Text

    out = Text()
    impacts = {(i.kind, i.name): i for i in plan.impacts}
    for change in plan.changes:
        if change.action == "unchanged":
            continue
        out.append_text(change_text(change))
        out.append("\n")
        found = impacts.get((change.kind, change.name))
        if found is not None and found.reached:
            out.append_text(impact_text(found))
    return out


def impact_text(found: Impact) -> Text:
    """The downstream objects a change reaches, the broken ones in red."""
    from rich.text import Text

    out = Text(f"    reaches {len(found.reached)} downstream object(s):\n", style="dim")
    for r in found.reached:
        label = f"{KIND_LABELS.get(r.kind, r.kind)} {r.name}"
        if r.detail:  # a snapshot's digest
            label += f" ({r.detail})"
        if r.breaking:
            out.append(f"      -> {label}: BREAKS ({r.why})\n", style="bold red")
        else:
            out.append(f"      -> {label}: compatible\n", style="dim")
    return out


def change_text(change: Change) -> Text:
    from rich.text import Text

    style = _ACTION_STYLE[change.action]
    lines = change.render().splitlines()
    text = Text(lines[0], style=f"bold {style}")
    for line in lines[1:]:
        text.append("\n" + line, style=style)
    return text


def applied_summary(plan: Plan) -> str:
    """``"Created 2, updated 1, deleted 0; registry revision 3."`` for a plan that was applied."""
    counts = {a: len(plan.of(a)) for a in ("create", "update", "delete")}
    return (
        f"Created {counts['create']}, updated {counts['update']}, deleted {counts['delete']}; "
        f"registry revision {plan.revision}."
    )


# -- definitions ------------------------------------------------------------------------------


def ttl_text(view: FeatureView) -> str:
    from parity.definitions.base import format_duration

    return format_duration(view.ttl) if view.ttl is not None else "no limit"


def service_refs(service: FeatureService) -> list[str]:
    """The service's features as ``view:f1,f2`` or ``view:*`` references."""
    return [f"{p.view}:{','.join(p.features) if p.features else '*'}" for p in service.features]


def source_location(source: DataSource) -> str:
    """A file source's path; a push source's batch path, as ``push (path)``; a stream
    source's broker and stream, as ``redis_streams orders (path)``."""
    path = getattr(source, "path", None)
    if path:
        return str(path)
    broker = getattr(source, "broker", None)
    if broker:
        return f"{broker} {source.stream} ({source.batch_source_name})"  # type: ignore[attr-defined]
    batch = getattr(source, "batch_source", None)
    batch_path = getattr(batch, "path", None)
    return f"{source.source_type} ({batch_path})" if batch_path else source.source_type


_OPTIONAL = ("Description", "Owner")
"""Columns of definition tables dropped, in this order, when the table would not fit."""


def definitions_table(kind: str, objects: Sequence[Definition], width: int | None = None) -> Table:
    """One table of definitions of one kind: name, its key facts, owner, description.

    When ``width`` is given and the table would not fit, the description and then the owner
    columns are left out (the caption says so) and the other cells wrap, so no line is wider
    than ``width`` and no cell is cut short.
    """
    from rich.table import Table
    from rich.text import Text

    headers: list[str] = ["Name"]
    rows: list[list[str]] = []
    for obj in objects:
        facts = definition_facts(obj)
        if len(headers) == 1:
            headers += [h for h, _ in facts] + ["Owner", "Description"]
        rows.append([obj.name, *(v for _, v in facts), obj.owner, obj.description])
    keep = list(range(len(headers)))
    dropped: list[str] = []

    def build() -> Table:
        table = Table(title=f"{KIND_TITLES[kind]} ({len(objects)})", title_justify="left")
        for i in keep:
            if headers[i] == "Name":  # names stay whole; other cells wrap, long words fold
                table.add_column("Name", style="bold cyan", no_wrap=True)
            else:
                table.add_column(headers[i], overflow="fold")
        for row in rows:
            table.add_row(*(Text(row[i]) for i in keep))
        if dropped:
            table.caption = (
                f"{' and '.join(dropped).lower()} left out at this width; "
                "`parity describe NAME` shows them"
            )
            table.caption_justify = "left"
        return table

    table = build()
    if width is None:
        return table
    from rich.console import Console

    measure = Console(width=10_000).measure  # the natural width, not clamped to ``width``
    for header in _OPTIONAL:
        if measure(table).maximum <= width or header not in headers:
            break
        keep.remove(headers.index(header))
        dropped.append(header)
        table = build()
    return table


def permission_text(p: Any) -> str:
    """A permission in one line: ``read_online on feature_view driver_* [team=risk] for fraud``."""
    text = f"{','.join(p.actions)} on {','.join(p.kinds)} {','.join(p.names)}"
    if p.tags:
        text += " [" + ",".join(f"{k}={v}" for k, v in sorted(p.tags.items())) + "]"
    if p.purposes:
        text += f" for {','.join(p.purposes)}"
    return text


def definition_facts(obj: Definition) -> list[tuple[str, str]]:
    """The key facts of a definition for a table, by column: what a list shows of it."""
    from parity.definitions import (
        DataSource,
        Entity,
        FeatureService,
        FeatureView,
        OnDemandFeatureView,
        Role,
    )

    if isinstance(obj, Entity):
        return [("Join keys", ", ".join(obj.join_keys)), ("Type", str(obj.dtype or "any"))]
    if isinstance(obj, FeatureView):
        return [
            ("Entities", ", ".join(obj.entity_names)),
            ("Features", ", ".join(obj.feature_names)),
            ("TTL", ttl_text(obj)),
            ("Source", obj.source_name),
        ]
    if isinstance(obj, OnDemandFeatureView):
        return [
            ("Sources", ", ".join(s.removeprefix("view ") for s in obj.depends_on)),
            ("Features", ", ".join(obj.feature_names)),
            ("Mode", obj.mode),
            ("Function", obj.udf.describe()),
        ]
    if isinstance(obj, FeatureService):
        return [("Features", " ".join(service_refs(obj)))]
    if isinstance(obj, DataSource):
        return [("Path", source_location(obj)), ("Timestamp", obj.timestamp_field)]
    if isinstance(obj, Role):
        return [("Permissions", "; ".join(permission_text(p) for p in obj.permissions))]
    return []  # a kind this version cannot show in detail


def spec_yaml(obj: Definition) -> Syntax:
    """The object's registered spec as highlighted YAML."""
    import yaml
    from rich.syntax import Syntax

    text = yaml.safe_dump(obj.to_spec(), sort_keys=False, allow_unicode=True)
    return Syntax(text.rstrip(), "yaml", theme="ansi_dark", background_color="default")


def dependencies(catalog: Catalog, obj: Definition) -> Text:
    """``depends on: ...`` and ``used by: ...`` lines from the registry's dependency graph."""
    from rich.text import Text

    from parity.definitions import OnDemandFeatureView

    def names(pairs: Sequence[tuple[str, str]]) -> str:
        return ", ".join(f"{KIND_LABELS.get(k, k)} {n}" for k, n in pairs) or "-"

    up: list[tuple[str, str]] = catalog.upstream(obj)
    if isinstance(obj, OnDemandFeatureView):
        up = up + [("request source", r.name) for r in obj.request_sources]
    text = Text(f"depends on: {names(up)}\n", style="dim")
    text.append(f"used by: {names(catalog.downstream(obj.kind, obj.name))}")
    return text


def version_line(record: VersionRecord) -> Group:
    """``version 2, updated by ana on 2024-05-01 10:00:00 UTC`` and what that change did."""
    from rich.console import Group
    from rich.text import Text

    style = _ACTION_STYLE[record.action]
    head = Text(f"version {record.version}", style="bold")
    if record.bump:
        head.append(f" ({record.bump})", style=BUMP_STYLE[record.bump])
    head.append(f", {_past(record.action)} ", style=style)
    head.append(f"by {record.author} on {when(record.applied_at)}")
    head.append(f" (registry revision {record.revision}, hash {record.content_hash[:12]})")
    lines = [head]
    if record.note:
        lines.append(Text(f"    note: {record.note}", style="italic"))
    lines += [Text(f"    {fc.render()}", style=style) for fc in record.diff]
    return Group(*lines)


def history_log(records: Sequence[VersionRecord], *, title: str) -> Group:
    """Versions oldest first, one line each (semantic version, its bump — ``new`` for a
    create, ``-`` for a delete —, action, author, when, number, revision, hash),
    under each its changes as ``path: old → new`` (``parity.cli.changes``), wrapped with a
    hanging indent."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from parity.cli.changes import describe_changes

    kinds = {r.kind for r in records}
    n = len(records)
    parts: list[Any] = [Text(f"{title}: {n} version{'s' * (n != 1)}, oldest first", style="bold")]
    author_width = max((len(r.author) for r in records), default=0)
    for r in records:
        style = _ACTION_STYLE[r.action]
        head = Text()
        if len(kinds) > 1:
            head.append(f"{KIND_LABELS.get(r.kind, r.kind)} ")
        head.append(f"version {r.version:<6}", style="bold")
        bump = r.bump or ("new" if r.action == "create" else "-")
        head.append(f"  {bump:<5}", style=BUMP_STYLE.get(r.bump, ""))
        head.append(f"  {r.action:<6}", style=style)
        head.append(f"  {r.author:<{author_width}}  {when(r.applied_at)}")
        head.append(
            f"  #{r.number}, revision {r.revision}, hash {r.content_hash[:12]}", style="dim"
        )
        parts.append(head)
        if r.note:
            parts.append(Text(f"    note: {r.note}", style="italic"))
        if r.diff:
            grid = Table.grid(padding=(0, 0))
            grid.add_column(width=4, no_wrap=True)
            grid.add_column(overflow="fold")
            for fc in r.diff:
                for line in describe_changes(fc):
                    grid.add_row("", Text(line, style=style))
            parts.append(grid)
    return Group(*parts)


def arrow_table(table: Any, *, limit: int = 20) -> Table:
    """The first ``limit`` rows of an Arrow table as a rich table, with a caption counting
    all the rows when some are left out. Nulls show as a dim ``null``."""
    import pyarrow as pa
    from rich.table import Table

    n = table.num_rows
    out = Table(title=f"{n:,} row{'s' * (n != 1)}", title_justify="left")
    head = table.slice(0, limit)
    columns = []
    for name, col in zip(head.column_names, head.columns, strict=True):
        numeric = pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
        out.add_column(name, justify="right" if numeric else "left", overflow="fold")
        columns.append(col.to_pylist())
    for i in range(head.num_rows):
        out.add_row(*(_cell(c[i]) for c in columns))
    if n > limit:
        out.caption = f"the first {limit:,} of {n:,} rows; --out FILE writes them all"
        out.caption_justify = "left"
    return out


def _cell(value: Any) -> Text:
    from rich.text import Text

    if value is None:
        return Text("null", style="dim")
    if isinstance(value, datetime):
        return Text(value.isoformat(sep=" "))
    return Text(repr(value) if isinstance(value, float | bytes) else str(value))


def when(ts: datetime) -> str:
    """A registry time (UTC; naive means UTC) as ``2024-05-01 10:00:00 UTC``."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def _past(action: str) -> str:
    return {"create": "created", "update": "updated", "delete": "deleted"}.get(action, action)


__all__ = [
    "KIND_LABELS",
    "KIND_TITLES",
    "applied_summary",
    "arrow_table",
    "change_text",
    "console",
    "definition_facts",
    "definitions_table",
    "dependencies",
    "error",
    "history_log",
    "plan_text",
    "service_refs",
    "spec_yaml",
    "version_line",
    "when",
]
