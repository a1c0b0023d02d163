"""Definitions pinned to one registry revision, and the historical join run with them.

A snapshot records the version of every object its join used (the versions live at the
revision it was made at). ``definitions_at`` rebuilds exactly those versions from the
registry's history (``parity_versions``, the spec each version wrote), so a snapshot is
recreated with the definitions it was made with, whatever was applied since. ``retrieve``
runs the ordinary historical retrieval (``parity.query.historical``: the same planner, the
same engine, the same hooks: access checks, masking, the audit log) over such a catalog
instead of the live one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from parity.definitions import Definition, FileSource, PushSource
from parity.errors import SnapshotError
from parity.registry.catalog import Catalog, CatalogCache
from parity.registry.models import versions
from parity.registry.plan import sort_key
from parity.registry.records import rebuild

if TYPE_CHECKING:
    from parity.query.plan import FeaturePlan
    from parity.store import FeatureStore

__all__ = [
    "ObjectVersion",
    "PinnedCatalogs",
    "definitions_at",
    "retrieve",
    "used_objects",
    "versions_at",
]


@dataclass(frozen=True)
class ObjectVersion:
    """Which version of an object a snapshot used: its semantic ``version`` and its
    ``number`` (the row of its history)."""

    kind: str
    name: str
    version: str
    number: int

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "number": self.number,
        }


class PinnedCatalogs(CatalogCache):
    """A catalog cache that always hands out one catalog (the definitions of a snapshot)."""

    def __init__(self, store: FeatureStore, catalog: Catalog):
        super().__init__(lambda: store.registry, store.project, 0.0, store.hooks)
        self._pinned = catalog

    def get(self, *, fresh: bool = False, known: Iterable[Definition] = ()) -> Catalog:
        return self._pinned

    def invalidate(self) -> None:
        """Nothing to read again: the catalog is pinned."""


def used_objects(catalog: Catalog, plan: FeaturePlan) -> list[tuple[str, str]]:
    """(kind, name) of every registered object the plan's join reads: the feature views,
    their entities and sources (a push source's batch source too), the on-demand views and
    the service; each once, in dependency order (entities and sources first), then by name."""
    out: dict[tuple[str, str], None] = {}

    def add(kind: str, name: str) -> None:
        if catalog.has(kind, name):
            out.setdefault((kind, name), None)

    for request in plan.fetch:
        view = request.view
        add("feature_view", view.name)
        for entity in view.entity_names:
            add("entity", entity)
        source = catalog.source_of(view)
        add("source", source.name)
        if isinstance(source, PushSource):
            batch = source.batch_source
            add("source", batch.name if isinstance(batch, FileSource) else batch)
    for step in plan.steps:
        add("on_demand_feature_view", step.view.name)
    if plan.service:
        add("feature_service", plan.service)
    return sorted(out, key=lambda kn: sort_key(*kn))


def versions_at(
    store: FeatureStore, revision: int, wanted: Iterable[tuple[str, str]]
) -> list[ObjectVersion]:
    """The version of each wanted object that was live at ``revision``, in the order given
    (objects not live then are left out)."""
    wanted = list(wanted)
    rows = _rows(store, {n for _, n in wanted}, revision)
    latest: dict[tuple[str, str], Any] = {}
    for row in rows:
        key = (row.kind, row.name)
        if key not in latest or row.version > latest[key].version:
            latest[key] = row
    return [
        ObjectVersion(k, n, str(latest[(k, n)].semver), int(latest[(k, n)].version))
        for k, n in wanted
        if (k, n) in latest and latest[(k, n)].action != "delete"
    ]


def definitions_at(
    store: FeatureStore, recorded: Sequence[Mapping[str, Any]], revision: int
) -> Catalog:
    """The objects ``recorded`` (``{"kind", "name", "number"}``) rebuilt from their versions'
    specs, as a catalog at ``revision``; ``SnapshotError`` when the history lacks one."""
    rows = _rows(store, {str(r["name"]) for r in recorded}, revision)
    specs = {(r.kind, r.name, int(r.version)): r for r in rows}
    objects: list[Definition] = []
    missing = []
    for r in recorded:
        row = specs.get((r["kind"], r["name"], int(r["number"])))
        if row is None:
            missing.append(f"{r['kind']} {r['name']!r} version {r.get('version', r['number'])}")
            continue
        objects.append(rebuild(row.kind, row.spec, f"version {row.semver}"))
    if missing:
        raise SnapshotError(
            f"the registry's history lacks {', '.join(missing)} (written at or before revision "
            f"{revision}): the definitions the snapshot was made with cannot be rebuilt"
        )
    return Catalog.of(objects, revision, store.project)


def retrieve(
    store: FeatureStore,
    catalog: Catalog,
    entities: pa.Table,
    features: Any,
    *,
    full_feature_names: bool,
    timestamp_column: str,
) -> pa.Table:
    """The historical retrieval of ``features`` for ``entities`` with ``catalog``'s
    definitions (not the live ones), through the store's engine and hooks."""
    from parity.query import Planner
    from parity.query.historical import HistoricalReads

    reads = HistoricalReads(
        store.project,
        PinnedCatalogs(store, catalog),
        Planner(),
        lambda: store.offline,
        store.hooks,
        store.repo_path,
    )
    job = reads.retrieve(
        entities,
        features,
        full_feature_names=full_feature_names,
        timestamp_column=timestamp_column,
    )
    return job.to_arrow()


def _rows(store: FeatureStore, names: set[str], revision: int) -> list[Any]:
    reg = store.registry
    if not names or not reg._ready():
        return []
    query = sa.select(
        versions.c.kind,
        versions.c.name,
        versions.c.version,
        versions.c.semver,
        versions.c.action,
        versions.c.spec,
    ).where(
        versions.c.project == reg.project,
        versions.c.name.in_(sorted(names)),
        versions.c.revision <= revision,
    )
    with reg._read("read the definitions of a snapshot") as conn:
        return list(conn.execute(query).all())
