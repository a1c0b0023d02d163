"""Impact analysis: what each change of a plan reaches downstream, and what it breaks.

For every update of a plan, ``analyse`` walks the world the apply would leave (its catalog)
from the changed object along the direction data flows: entity and source → feature views
→ on-demand views and feature services → models. What breaks is followed feature by
feature: a major change (``registry.semver``) to a view breaks the features its reasons
name (a removed or retyped field) or all of them (a changed source, key, ttl, window,
function...); an on-demand view or a service breaks when it reads a broken feature (a
projection of all features reads every one), and a model when its service breaks. Objects
reached but reading nothing broken are listed as compatible.

Training snapshots (``parity.snapshots``, given to ``analyse`` as read from the registry)
are reached too, as in lineage (``parity.snapshots.lineage``: kind ``snapshot``, reading the
features it holds): a snapshot reads, of each view or on-demand view, the features it holds
(``Snapshot.features``), and the feature service it was made from, if any (its manifest's
objects). It breaks, feature by feature like a service, when it holds a broken feature, or
when the service it was made from has a major change: its stored rows no longer match what
serving computes now (``recreate`` still makes them again, from its revision). What breaks
a service upstream reaches the snapshot through the features it holds, not through the
service. Snapshots record no model (a model names a service), so nothing is reached through
one.

An impact ``blocks`` when it breaks a feature service or a model: ``apply`` refuses such a
plan unless ``allow_breaking`` is given, and then records the override with the version. A
broken snapshot is shown, never refused. Creates reach nothing that exists; deleting what
others read is refused by validation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from parity.definitions import (
    Definition,
    FeatureService,
    FeatureView,
    Model,
    OnDemandFeatureView,
)
from parity.errors import ValidationError
from parity.registry.catalog import Catalog
from parity.registry.diff import parse_path
from parity.registry.plan import Change, Plan

if TYPE_CHECKING:
    from parity.snapshots.manifest import Snapshot

__all__ = ["CONSUMERS", "SNAPSHOT", "Impact", "Reached", "analyse", "guard", "override_notes"]

CONSUMERS = ("feature_service", "model")
"""The kinds a breaking change must not reach without ``allow_breaking``."""
SNAPSHOT = "snapshot"
"""The kind of a training snapshot reached: lineage's (``parity.snapshots.lineage.KIND``),
not imported from there to keep the lineage graph's imports out of ``plan``."""

_ALL: frozenset[str] | None = None  # every feature of an object is broken
Broken = frozenset[str] | None
_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Reached:
    """One downstream object a change reaches, ``distance`` edges away."""

    kind: str
    name: str
    distance: int
    breaking: bool
    why: str = ""
    detail: str = ""
    """Shown beside the name: a snapshot's digest, shortened."""

    def render(self) -> str:
        state = f"BREAKS ({self.why})" if self.breaking else "compatible"
        shown = f" ({self.detail})" if self.detail else ""
        return f"{self.kind} {self.name}{shown}: {state}"


@dataclass(frozen=True)
class Impact:
    """What one change (``kind name``, bumping ``bump``) reaches."""

    kind: str
    name: str
    bump: str
    reached: tuple[Reached, ...]
    why: str = ""
    """The major changes' reasons (``ttl shortened; a field removed``)."""

    @property
    def breaks(self) -> tuple[Reached, ...]:
        return tuple(r for r in self.reached if r.breaking)

    @property
    def blocks(self) -> bool:
        """Whether it breaks a feature service or a model."""
        return any(r.kind in CONSUMERS for r in self.breaks)

    def render(self) -> str:
        lines = [f"    reaches {len(self.reached)} downstream object(s):"]
        lines += [f"      -> {r.render()}" for r in self.reached]
        return "\n".join(lines)


def analyse(plan: Plan, world: Catalog, snapshots: Iterable[Snapshot] = ()) -> tuple[Impact, ...]:
    """The impact of each update of ``plan`` on the objects of ``world`` (the catalog the
    apply would leave) and on the training ``snapshots`` of the project
    (``parity.snapshots.manifest.list_registry``)."""
    readers = _readers(world.all())
    for held in _held(snapshots):
        for ref in held.reads:
            readers.setdefault(ref, []).append(held)
    out = []
    for change in plan.of("update"):
        broken = _broken_by(change, world)
        reasons = "; ".join(
            dict.fromkeys(f"{r.why}: {r.path}" for r in change.reasons if r.bump == "major")
        )
        reached = _walk(change, broken, world, readers)
        out.append(Impact(change.kind, change.name, change.bump, reached, reasons))
    return tuple(out)


def guard(impacts: Iterable[Impact], *, allow_breaking: bool) -> None:
    """Refuse (``ValidationError`` naming each change and what it breaks) unless allowed."""
    problems = []
    for impact in impacts:
        if not impact.blocks:
            continue
        hit = ", ".join(
            f"{r.kind} {r.name!r} ({r.why})" for r in impact.breaks if r.kind in CONSUMERS
        )
        problems.append(
            f"{impact.kind} {impact.name!r}: a breaking change ({impact.why}) breaks {hit};"
            " apply with --allow-breaking (allow_breaking=True) to apply it anyway (the"
            " override is recorded in the version's history)"
        )
    if problems and not allow_breaking:
        raise ValidationError(problems)


def override_notes(impacts: Iterable[Impact]) -> Mapping[tuple[str, str], str]:
    """The note each overridden breaking change keeps with its version."""
    notes = {}
    for impact in impacts:
        if impact.blocks:
            hit = ", ".join(f"{r.kind}:{r.name}" for r in impact.breaks if r.kind in CONSUMERS)
            notes[(impact.kind, impact.name)] = f"applied with --allow-breaking; breaks {hit}"
    return notes


# -- internals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Held:
    """A training snapshot as a reader: the features it holds of each view, by the view's
    (kind, name), and the feature service it was made from (None: made from features)."""

    name: str
    digest: str
    holds: Mapping[tuple[str, str], frozenset[str]]
    service: str | None

    kind = SNAPSHOT

    @property
    def reads(self) -> list[tuple[str, str]]:
        service = [("feature_service", self.service)] if self.service else []
        return [*self.holds, *service]


def _held(snapshots: Iterable[Snapshot]) -> list[_Held]:
    """What each snapshot reads: ``view:feature`` refs as lineage reads them, the views'
    kinds and the service from the objects its join used (a view the manifest does not name
    is a feature view)."""
    out = []
    for snap in snapshots:
        kinds = {o["name"]: o["kind"] for o in snap.objects if o["kind"].endswith("feature_view")}
        holds: dict[tuple[str, str], set[str]] = {}
        for view, _, feature in (ref.partition(":") for ref in snap.features):
            holds.setdefault((kinds.get(view, "feature_view"), view), set()).add(feature)
        service = next((o["name"] for o in snap.objects if o["kind"] == "feature_service"), None)
        frozen = {ref: frozenset(names) for ref, names in holds.items()}
        out.append(_Held(snap.name, snap.digest, frozen, service))
    return out


Reader = Definition | _Held


def _readers(objects: Iterable[Definition]) -> dict[tuple[str, str], list[Reader]]:
    """(kind, name) -> the objects that read it directly."""
    world = list(objects)
    catalog = Catalog.of(world)
    out: dict[tuple[str, str], list[Reader]] = {}
    for obj in world:
        for ref in catalog.upstream(obj):
            out.setdefault(ref, []).append(obj)
    return out


def _broken_by(change: Change, world: Catalog) -> Broken:
    """The features a change breaks: none for a minor or patch change; for a major one the
    fields its reasons name, or all."""
    if change.bump != "major":
        return _NONE
    names: set[str] = set()
    for reason in change.reasons:
        if reason.bump != "major":
            continue
        tokens = parse_path(reason.path)
        if tokens and tokens[0][1] == "schema" and len(tokens) >= 2 and change.kind != "source":
            names.add(str(tokens[1][1]))
            continue
        return _ALL
    return frozenset(names)


def _walk(
    change: Change,
    broken: Broken,
    world: Catalog,
    readers: Mapping[tuple[str, str], list[Reader]],
) -> tuple[Reached, ...]:
    start = (change.kind, change.name)
    state: dict[tuple[str, str], Broken] = {start: broken}
    distance = {start: 0}
    why: dict[tuple[str, str], str] = {}
    detail: dict[tuple[str, str], str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        upstream_broken = state[node]
        for reader in readers.get(node, ()):
            key = (reader.kind, reader.name)
            hit = _reads_broken(reader, node, upstream_broken, world, start)
            if key not in distance:
                distance[key] = distance[node] + 1
                state[key] = _NONE
                queue.append(key)
                if isinstance(reader, _Held):
                    detail[key] = reader.digest[:12]
            if hit and state[key] == _NONE:
                state[key] = _ALL
                why[key] = _why(reader, node, upstream_broken)
                queue.append(key)  # what it breaks travels on
    reached = [
        Reached(
            k,
            n,
            distance[(k, n)],
            state[(k, n)] != _NONE,
            why.get((k, n), ""),
            detail.get((k, n), ""),
        )
        for (k, n) in distance
        if (k, n) != start
    ]
    reached.sort(key=lambda r: (r.distance, r.kind, r.name))
    return tuple(reached)


def _reads_broken(
    reader: Reader,
    node: tuple[str, str],
    broken: Broken,
    world: Catalog,
    start: tuple[str, str],
) -> bool:
    """Whether ``reader`` reads any of the features ``broken`` of ``node`` (``start``: the
    changed object)."""
    if broken is not None and not broken:
        return False
    if isinstance(reader, _Held):
        if node[0] == "feature_service":  # made from it: only its own change counts here
            return node == start
        return broken is None or bool(broken & reader.holds.get(node, _NONE))
    if isinstance(reader, FeatureView | Model):  # a view's entity or source; a model's service
        return True
    selected: tuple[str, ...] | None
    if isinstance(reader, FeatureService):
        selected = next((p.features for p in reader.features if p.view == node[1]), None)
    elif isinstance(reader, OnDemandFeatureView):
        selected = next((i.features for i in reader.inputs if i.view == node[1]), None)
    else:
        return True
    if broken is None or selected is None:
        return True
    return bool(broken & set(selected))


def _why(reader: Reader, node: tuple[str, str], broken: Broken) -> str:
    kind, name = node
    if isinstance(reader, _Held):
        if kind == "feature_service":
            return f"made from {kind} {name!r}, which breaks"
        held = reader.holds.get(node, _NONE)
        hit = sorted(held if broken is None else broken & held)
        verb = "breaks" if len(hit) == 1 else "break"
        return f"holds {kind} {name!r}:{', '.join(hit)}, which {verb}"
    if broken is None:
        return f"reads {kind} {name!r}, which breaks"
    return f"reads {', '.join(sorted(broken))} of {name!r}"
