"""The one query planner: a request (references, a service) becomes a ``FeaturePlan``, once.

A plan says, for online and historical reads alike:

- ``outputs``: what the caller gets, in order (grouped by view in first-seen order, each
  feature once), named ``feature`` or ``view__feature`` with ``full_feature_names``; two
  features that would share a name are refused with advice;
- ``fetch``: the stored features to read, per feature view: the ones asked for and the ones
  the requested on-demand views read;
- ``steps``: the on-demand views to run on what was fetched, dependencies first.

Without on-demand views the fetched columns are the outputs themselves (the plain read pays
nothing extra); with them every fetched column is named ``view__feature`` internally and the
outputs are picked from the fetched and computed columns. The online read plan
(``ReadPlan``) and the historical join's views (``ViewJoin``) are built here too.

``Planner`` keeps the plans of one catalog (one registry revision): a new catalog starts a
new cache, and the cache is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

from parity.aggregates.state import AggregatePlan
from parity.definitions import FeatureService, Field, OnDemandFeatureView
from parity.errors import RetrievalError
from parity.offline.base import ViewJoin
from parity.online.base import OnlineView
from parity.online.reader import ReadPlan, ViewRead
from parity.query.refs import FeatureRef, FeatureRefs, is_service_name, parse_refs, request_key
from parity.registry.catalog import Catalog
from parity.types import ValueType

__all__ = ["FeaturePlan", "Output", "Planner", "Step", "ViewRequest", "plan_features"]

MAX_PLANS = 1024
"""Plans kept per catalog; beyond this the cache starts again (bounded memory)."""


@dataclass(frozen=True)
class ViewRequest:
    """The features read from one feature view, in order, and the columns they fill."""

    view: Any  # FeatureView
    features: tuple[str, ...]
    output_names: tuple[str, ...]


@dataclass(frozen=True)
class Output:
    """One requested feature: the caller's name for it and the column holding its values."""

    view: str
    feature: str
    name: str
    column: str
    dtype: ValueType
    on_demand: bool


@dataclass(frozen=True)
class Step:
    """One on-demand view to run: its inputs (input name, upstream view, column) and the
    request fields it reads (request source name, field)."""

    view: OnDemandFeatureView
    inputs: tuple[tuple[str, str, str], ...]
    request_fields: tuple[tuple[str, Field], ...]

    @property
    def label(self) -> str:
        return f"on-demand feature view {self.view.name!r}"


@dataclass(frozen=True)
class FeaturePlan:
    """A planned request; see the module docstring."""

    outputs: tuple[Output, ...]
    fetch: tuple[ViewRequest, ...]
    steps: tuple[Step, ...]
    read: ReadPlan | None
    """The online read of ``fetch``; None when a fetched view is offline only."""
    offline_only: tuple[str, ...]
    joins: tuple[ViewJoin, ...]
    """The historical join of ``fetch``."""
    key_types: dict[str, ValueType | None]
    """Each join key the historical join needs and its entity's declared type."""
    service: str | None = None
    """The feature service the request named, when it named one."""

    @cached_property  # plans are reused for every read until the registry changes
    def views(self) -> tuple[str, ...]:
        """The feature views read, in order."""
        return tuple(r.view.name for r in self.fetch)

    @cached_property  # plans are reused for every read until the registry changes
    def feature_refs(self) -> tuple[str, ...]:
        """Every requested feature as ``view:feature``, in output order."""
        return tuple(f"{o.view}:{o.feature}" for o in self.outputs)

    @cached_property  # plans are reused for every read until the registry changes
    def fetched_refs(self) -> tuple[str, ...]:
        """Every stored feature read, as ``view:feature``, in fetch order."""
        return tuple(f"{r.view.name}:{f}" for r in self.fetch for f in r.features)

    @cached_property  # plans are reused for every read until the registry changes
    def fetched_columns(self) -> tuple[str, ...]:
        return tuple(n for r in self.fetch for n in r.output_names)

    def online(self) -> ReadPlan:
        """The online read; ``RetrievalError`` when a view is offline only."""
        if self.read is None:
            raise RetrievalError(
                f"feature view {self.offline_only[0]!r} is offline only (online=False)"
            )
        return self.read


class Planner:
    """Plans by request, for one catalog at a time (bounded). Reads take no lock: the cache
    is swapped whole when the catalog changes, and a plan computed twice is the same plan."""

    def __init__(self) -> None:
        self._cache: tuple[Catalog | None, dict[Any, FeaturePlan]] = (None, {})

    def plan(
        self, features: FeatureRefs, catalog: Catalog, *, full_feature_names: bool = False
    ) -> FeaturePlan:
        key = request_key(features, full_feature_names)
        seen, plans = self._cache
        if seen is not catalog:
            plans = {}
            self._cache = (catalog, plans)
        found = plans.get(key) if key is not None else None
        if found is not None:
            return found
        plan = plan_features(features, catalog, full_feature_names=full_feature_names)
        if key is not None:
            if len(plans) >= MAX_PLANS:  # distinct requests are few in practice
                plans.clear()
            plans[key] = plan
        return plan

    def __len__(self) -> int:
        """Plans held now (for the current catalog)."""
        return len(self._cache[1])


# -- planning ------------------------------------------------------------------------------


def plan_features(
    features: FeatureRefs, catalog: Catalog, *, full_feature_names: bool = False
) -> FeaturePlan:
    """The plan of one request against ``catalog``; errors name the reference at fault."""
    grouped = _grouped(parse_refs(features, catalog), catalog)
    outputs: list[Output] = []
    seen: dict[str, str] = {}
    for view, feats in grouped.items():
        odfv = catalog.has("on_demand_feature_view", view)
        obj: Any = catalog.on_demand_view(view) if odfv else catalog.view(view)
        for f in feats:
            name = f"{view}__{f}" if full_feature_names else f
            if name in seen:
                raise RetrievalError(
                    f"features {seen[name]!r} and '{view}:{f}' would both be named {name!r}; "
                    "pass full_feature_names=True"
                )
            seen[name] = f"{view}:{f}"
            outputs.append(Output(view, f, name, f"{view}__{f}", obj.field(f).dtype, odfv))

    plain: dict[str, list[str]] = {}  # feature view -> features to fetch, first-seen order
    for o in outputs:
        if not o.on_demand:
            plain.setdefault(o.view, []).append(o.feature)
    steps = _steps([o.view for o in outputs if o.on_demand], catalog, plain)
    if steps:  # fetched under internal names, outputs picked from them
        fetch = [
            ViewRequest(catalog.view(v), tuple(fs), tuple(f"{v}__{f}" for f in fs))
            for v, fs in plain.items()
        ]
    else:
        names = {o.column: o.name for o in outputs}
        fetch = [
            ViewRequest(catalog.view(v), tuple(fs), tuple(names[f"{v}__{f}"] for f in fs))
            for v, fs in plain.items()
        ]
    offline_only = tuple(r.view.name for r in fetch if not r.view.online)
    return FeaturePlan(
        outputs=tuple(outputs),
        fetch=tuple(fetch),
        steps=steps,
        read=None if offline_only else _read_plan(fetch, catalog),
        offline_only=offline_only,
        joins=tuple(_join(r, catalog) for r in fetch),
        key_types=_key_types(fetch, catalog),
        service=_service_name(features),
    )


def _service_name(features: FeatureRefs) -> str | None:
    if isinstance(features, FeatureService):
        return features.name
    return features if is_service_name(features) else None  # type: ignore[return-value]


def _grouped(refs: list[FeatureRef], catalog: Catalog) -> dict[str, list[str]]:
    """Features per view (feature or on-demand), views in first-seen order, each once."""
    grouped: dict[str, list[str]] = {}
    for ref in refs:
        kind = catalog.view_kind(ref.view)
        obj: Any = catalog.get(kind, ref.view) if kind else catalog.view(ref.view)  # not found
        if ref.feature is None:
            grouped.setdefault(ref.view, []).extend(obj.feature_names)
        else:
            obj.field(ref.feature)  # names the view and its features when unknown
            grouped.setdefault(ref.view, []).append(ref.feature)
    return {view: list(dict.fromkeys(feats)) for view, feats in grouped.items()}


def _steps(roots: list[str], catalog: Catalog, plain: dict[str, list[str]]) -> tuple[Step, ...]:
    """The on-demand views to run for ``roots``, dependencies first; adds the stored
    features they read to ``plain``."""
    order: list[Step] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise RetrievalError(f"on-demand feature views depend on each other: {cycle}")
        path.append(name)
        odfv = catalog.on_demand_view(name)
        inputs = []
        for inp in odfv.inputs:
            kind = catalog.view_kind(inp.view)
            upstream: Any = catalog.get(kind, inp.view) if kind else catalog.view(inp.view)
            if kind == "on_demand_feature_view":
                visit(inp.view)
            for f in inp.features or upstream.feature_names:
                upstream.field(f)
                if kind != "on_demand_feature_view":
                    feats = plain.setdefault(inp.view, [])
                    if f not in feats:
                        feats.append(f)
                inputs.append((f, inp.view, f"{inp.view}__{f}"))
        fields = tuple((r.name, fld) for r in odfv.request_sources for fld in r.schema)
        path.pop()
        done.add(name)
        order.append(Step(odfv, tuple(inputs), fields))

    for root in dict.fromkeys(roots):
        visit(root)
    return tuple(order)


def _read_plan(fetch: list[ViewRequest], catalog: Catalog) -> ReadPlan:
    views = []
    keys: list[str] = []
    for r in fetch:
        join_keys = tuple(catalog.join_keys_of(r.view))
        keys.extend(k for k in join_keys if k not in keys)
        ttl = r.view.ttl
        views.append(
            ViewRead(
                online=OnlineView(r.view.name, join_keys, tuple(r.view.feature_names), ttl),
                features=r.features,
                outputs=r.output_names,
                dtypes=tuple(r.view.field(f).dtype for f in r.features),
                ttl_us=None if ttl is None else ttl // timedelta(microseconds=1),
                aggregate=AggregatePlan.of(r.view, catalog.source_of(r.view).event_id_field)
                if r.view.is_aggregated
                else None,
            )
        )
    return ReadPlan(views=tuple(views), join_keys=tuple(keys))


def _join(r: ViewRequest, catalog: Catalog) -> ViewJoin:
    return ViewJoin(
        view=r.view,
        source=catalog.source_of(r.view),
        join_keys=tuple(catalog.join_keys_of(r.view)),
        features=r.features,
        output_names=r.output_names,
        dtypes=tuple(r.view.field(f).dtype for f in r.features),
    )


def _key_types(fetch: list[ViewRequest], catalog: Catalog) -> dict[str, ValueType | None]:
    key_types: dict[str, ValueType | None] = {}
    for r in fetch:
        for e in r.view.entity_names:
            ent = catalog.entity(e)
            key_types.update({k: ent.dtype for k in ent.join_keys})
    return key_types
