"""``parity search``, ``parity unused``, and the usage block of ``parity describe``.

``parity search QUERY`` ranks the registered objects by their names, descriptions, tags,
owners and features (``parity.discovery.search``): each word a prefix, all of them needed
(any of them when no object has all). ``--tag K=V``, ``--owner`` and ``--kind`` filter.
``parity unused`` lists the features no service or model selects and no read returned in
the last ``--days`` (``parity.discovery.unused``). ``--json`` prints either as a list.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from parity.cli import render
from parity.cli.common import (
    RepoOption,
    VerboseOption,
    handles_errors,
    open_store,
    parse_kind,
    require_registry,
)

if TYPE_CHECKING:
    from rich.console import Group
    from rich.text import Text

    from parity.discovery import SearchHit, UnusedFeature, UsageReport

USAGE_KINDS = ("feature_view", "on_demand_feature_view", "feature_service")
"""The kinds ``describe`` shows usage for."""
SHOWN_FEATURES = 5
"""Matching features a search row names (``+N more`` after them)."""
TOP_CONSUMERS = 5

JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON list instead.")]


def parse_tags(items: list[str] | None) -> dict[str, str]:
    """``--tag team=ranking`` (repeated) as a mapping."""
    tags: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        tags[key.strip()] = value.strip()
    return tags


@handles_errors
def search(
    query: Annotated[
        str,
        typer.Argument(
            metavar="QUERY",
            help="Words to look for; each a prefix (conv finds conv_rate).",
            show_default=False,
        ),
    ] = "",
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", metavar="K=V", help="Only objects with this tag (repeat)."),
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", "-o", help="Only objects whose owner contains this.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            "-k",
            help="Only this kind: entity, source, view, on-demand-view, service or model.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Hits at most.")] = 20,
    as_json: JsonOption = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Find views, features, services, models, sources and entities by what they are called
    and what their descriptions, tags and owners say; best matches first."""
    tags = parse_tags(tag)
    wanted = parse_kind(kind)
    if wanted == "role":
        raise typer.BadParameter("roles are not searched; `parity list roles`", param_hint="--kind")
    if not query.strip() and not (tags or owner or wanted):
        raise typer.BadParameter("give words to look for, or --tag, --owner or --kind")
    with open_store(repo) as store:
        require_registry(store)
        hits = store.search(query, tags=tags, owner=owner, kind=wanted, limit=limit)
    if as_json:
        typer.echo(json.dumps([h.to_json() for h in hits], indent=2))
        return
    out = render.console()
    out.print(hits_table(query, hits) if hits else _nothing(query))


def hits_table(query: str, hits: list[SearchHit]) -> object:
    """The hits, best first: kind, name, score, the features that matched, what matched."""
    from rich.table import Table
    from rich.text import Text

    n = len(hits)
    title = f"{n} match{'es' * (n != 1)}" + (f" for {query.strip()!r}" if query.strip() else "")
    table = Table(title=title, title_justify="left")
    table.add_column("Kind", no_wrap=True)
    table.add_column("Name", style="bold cyan", no_wrap=True)
    table.add_column("Score", justify="right")
    table.add_column("Matching features", overflow="fold")
    table.add_column("What matched", overflow="fold")
    for h in hits:
        shown = list(h.features[:SHOWN_FEATURES])
        if len(h.features) > SHOWN_FEATURES:
            shown.append(f"+{len(h.features) - SHOWN_FEATURES} more")
        table.add_row(
            Text(render.KIND_LABELS.get(h.kind, h.kind)),
            Text(h.name),
            Text(f"{h.score:.2f}"),
            Text(", ".join(shown)),
            marked(h.snippet or h.description),
        )
    return table


def marked(snippet: str) -> Text:
    """A snippet with its ``**marked**`` words in bold."""
    from rich.text import Text

    text = Text()
    for i, part in enumerate(snippet.split("**")):
        text.append(part, style="bold yellow" if i % 2 else "")
    return text


def _nothing(query: str) -> Text:
    from rich.text import Text

    said = f" {query.strip()!r}" if query.strip() else ""
    return Text(f"Nothing registered matches{said}.", style="dim")


@handles_errors
def unused(
    days: Annotated[
        float, typer.Option("--days", "-d", min=0, help="How far back a read counts.")
    ] = 90,
    as_json: JsonOption = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """List the features no feature service or model selects and no read returned in the
    last DAYS days: candidates to deprecate (data minimisation)."""
    with open_store(repo) as store:
        require_registry(store)
        found = store.unused(days)
        now = datetime.fromtimestamp(store.clock.now_us() / 1e6, UTC)
    if as_json:
        typer.echo(json.dumps([u.to_json() for u in found], indent=2))
        return
    out = render.console()
    span = f"{days:g} day{'s' * (days != 1)}"
    if not found:
        out.print(
            f"Every feature is selected by a service or was read in the last {span}.",
            style="green",
        )
        return
    out.print(unused_table(found, span, now))
    for line in advice(found):
        out.print(line)


def unused_table(found: list[UnusedFeature], span: str, now: datetime) -> object:
    """One row per unused feature: feature, view, owner, last read, the view's age."""
    from rich.table import Table
    from rich.text import Text

    n = len(found)
    table = Table(
        title=f"{n} unused feature{'s' * (n != 1)}: selected by no service or model, "
        f"not read in the last {span}",
        title_justify="left",
    )
    for name in ("Feature", "View", "Owner", "Last read", "View age"):
        table.add_column(name, overflow="fold", style="bold cyan" if name == "Feature" else "")
    for u in found:
        view = u.view if u.state == "active" else f"{u.view} ({u.state})"
        if u.kind == "on_demand_feature_view":
            view += " [on-demand]"
        last = render.when(u.last_read_at) if u.last_read_at else "never"
        age = _age(now - u.view_created_at) if u.view_created_at else "-"
        table.add_row(Text(u.feature), Text(view), Text(u.owner or "-"), Text(last), Text(age))
    return table


def advice(found: list[UnusedFeature]) -> list[Text]:
    """What to do: deprecate views none of whose features is used, trim the others."""
    from rich.text import Text

    from parity.discovery.unused import whole_views

    whole = whole_views(found)
    lines = [
        Text(
            "Candidates to deprecate: data nobody reads need not be computed, stored or "
            "served (data minimisation).",
            style="dim",
        )
    ]
    if whole:
        lines.append(
            Text(
                f"Every feature of {', '.join(whole)} is unused: "
                f"`parity lifecycle {whole[0]} deprecated --reason unused` warns its readers, "
                "then retire or delete it.",
                style="dim",
            )
        )
    if len(whole) < len({u.view for u in found}):
        lines.append(Text("Remove the other features from their views' schemas.", style="dim"))
    return lines


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'s' * (count != 1)}"


def _age(delta: object) -> str:
    seconds = max(0.0, delta.total_seconds())  # type: ignore[attr-defined]
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' * (n != 1)}"
    return "just now"


# -- describe's usage block --------------------------------------------------------------------


def usage_block(
    report: UsageReport, features: list[str] | None = None, now: datetime | None = None
) -> Group:
    """``usage: 12 reads online (40 keys), 2 offline (1,000 rows), last ...`` with the top
    consumers and, for a view (``features``: its features), each feature's reads and the
    features never read."""
    from rich.console import Group
    from rich.text import Text

    if report.last_read_at is None:
        return Group(Text("usage: no reads recorded", style="dim"))
    now = now or datetime.now(UTC)
    head = Text("usage: ", style="bold")
    head.append(
        f"{_n(report.reads_online, 'read')} online ({_n(report.keys_online, 'key')}), "
        f"{report.reads_offline:,} offline ({_n(report.rows_offline, 'row')}); last read "
        f"{render.when(report.last_read_at)} ({_age(now - report.last_read_at)} ago)"
    )
    lines = [head]
    top = report.top_consumers(TOP_CONSUMERS)
    more = len(report.consumers) - len(top)
    who = ", ".join(f"{c.consumer} ({c.reads:,})" for c in top)
    lines.append(Text(f"  top consumers: {who}" + (f", +{more} more" if more > 0 else "")))
    if report.features:
        feats = ", ".join(
            f"{f.feature} {f.reads_online + f.reads_offline:,}" for f in report.features
        )
        lines.append(Text(f"  reads by feature: {feats}", style="dim"))
    read = {f.feature for f in report.features}
    never = [f for f in features or () if f not in read]
    if never:
        lines.append(Text(f"  never read: {', '.join(never)}", style="dim"))
    return Group(*lines)


__all__ = [
    "USAGE_KINDS",
    "advice",
    "hits_table",
    "marked",
    "parse_tags",
    "search",
    "unused",
    "unused_table",
    "usage_block",
]
