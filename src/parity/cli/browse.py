"""The commands that read the registry: ``list``, ``describe``, ``history``, ``diff``."""

from __future__ import annotations

import difflib
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
from parity.cli.discovery import USAGE_KINDS, usage_block
from parity.errors import ObjectNotFoundError

if TYPE_CHECKING:
    from parity.definitions import Definition
    from parity.registry.catalog import Catalog

KindOption = Annotated[
    str | None,
    typer.Option(
        "--kind",
        "-k",
        help="entity, source, view, on-demand-view or service; needed only when NAME is used "
        "by several kinds.",
    ),
]


@handles_errors
def list_(
    kind: Annotated[
        str | None,
        typer.Argument(
            metavar="KIND",
            help="entities, views, on-demand-views, services or sources.",
            show_default="all kinds",
        ),
    ] = None,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """List what is registered: one table per kind."""
    from rich.text import Text

    from parity.definitions import KINDS
    from parity.governance.enforce import visible
    from parity.registry.catalog import Catalog

    wanted = parse_kind(kind, "KIND")
    with open_store(repo) as store:
        require_registry(store)
        catalog = store.catalog(fresh=True)
        # with auth on, what PARITY_TOKEN's roles may describe
        catalog = Catalog.of(visible(store, catalog.all()), catalog.revision, catalog.project)
    out = render.console()
    for i, k in enumerate([wanted] if wanted else list(KINDS)):
        if i:
            out.print()
        objects = [catalog.objects.get(k, {})[n] for n in catalog.names(k)]
        if not objects:
            out.print(Text(f"No {render.KIND_TITLES[k].lower()} registered.", style="dim"))
        else:
            out.print(render.definitions_table(k, objects, width=out.width))


@handles_errors
def describe(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME[@VERSION]", help="The object's name; NAME@1.2.0 shows an old version."
        ),
    ],
    kind: KindOption = None,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Show an object's registered spec, its current version and its last change (or, with
    NAME@VERSION, the spec it had at that version)."""
    from rich.text import Text

    from parity.governance.enforce import describable
    from parity.registry.rollback import split_ref

    wanted = parse_kind(kind)
    name, version = split_ref(name)
    with open_store(repo) as store:
        require_registry(store)
        if version is not None:
            record = store.version(name, version, wanted)
            obj = describable(store, record.definition)
            out = render.console()
            out.print(Text(f"{obj.kind} {obj.name}@{record.version}", style="bold cyan"))
            out.print(render.spec_yaml(obj))
            out.print(render.version_line(record))
            return
        catalog = store.catalog(fresh=True)
        found = [describable(store, obj) for obj in _find(catalog, name, wanted)]
        out = render.console()
        for i, obj in enumerate(found):
            if i:
                out.print()
            out.print(Text(f"{obj.kind} {obj.name}", style="bold cyan"))
            out.print(render.spec_yaml(obj))
            last = store.history(obj.name, obj.kind)[-1]
            out.print(render.version_line(last))
            out.print(render.dependencies(catalog, obj))
            if obj.kind in USAGE_KINDS:
                feats = getattr(obj, "feature_names", None)
                out.print(usage_block(store.usage(obj.name, obj.kind), feats))


@handles_errors
def history(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The object's name.")],
    kind: KindOption = None,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Show every version of an object, oldest first (deleted objects keep their history)."""
    wanted = parse_kind(kind)
    with open_store(repo) as store:
        require_registry(store)
        records = store.history(name, wanted)
    title = f"History of {render.KIND_LABELS[wanted] + ' ' if wanted else ''}{name}"
    out = render.console()
    out.print(render.history_log(records, title=title), soft_wrap=False)


@handles_errors
def diff(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The object's name.")],
    old: Annotated[str, typer.Argument(metavar="OLD", help="A version, e.g. 1.2.0.")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="A later (or earlier) version.")],
    kind: KindOption = None,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Show the field-level diff between two versions of an object (and, for an on-demand
    view, the diff of its function's code), with the semantic-version rule of each change."""
    from rich.text import Text

    from parity.governance.enforce import describable
    from parity.registry.semver import classify_change

    wanted = parse_kind(kind)
    with open_store(repo) as store:
        require_registry(store)
        found = store.diff(name, old, new, wanted)
        describable(store, found.new.definition)
    out = render.console()
    a, b = found.old, found.new
    out.print(Text(f"{a.kind} {a.name}: {a.version} -> {b.version}", style="bold cyan"))
    if not found.changes:
        out.print(Text("No field changes.", style="dim"))
    for change in found.changes:
        rule = classify_change(a.kind, change)
        line = Text(f"  {change.render()}")
        line.append(f"   [{rule.bump}: {rule.why}]", style=render.BUMP_STYLE[rule.bump])
        out.print(line, soft_wrap=True)
    if found.code_diff:
        out.print(Text("Code:", style="bold"))
        out.print(Text(found.code_diff.rstrip("\n")), soft_wrap=True)
    elif a.kind == "on_demand_feature_view" and (a.code is None or b.code is None):
        out.print(Text("(the function's code was not recorded for both versions)", style="dim"))


def _find(catalog: Catalog, name: str, kind: str | None) -> list[Definition]:
    """The live objects called ``name`` (of ``kind``); ObjectNotFoundError with a hint."""
    from parity.definitions import KINDS

    if kind is not None:
        return [catalog.get(kind, name)]
    found = [catalog.objects[k][name] for k in KINDS if catalog.has(k, name)]
    if found:
        return found
    every = sorted({n for k in KINDS for n in catalog.names(k)})
    close = difflib.get_close_matches(name, every, n=3)
    hint = f"did you mean {', '.join(map(repr, close))}?" if close else ""
    if not every:
        hint = "nothing is registered yet; run `parity apply`"
    raise ObjectNotFoundError("object", name, catalog.project, hint)
