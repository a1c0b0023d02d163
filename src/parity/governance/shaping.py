"""Masking on every read path: the ``shape_*`` hooks that hide what a reader may not see.

Online reads (Python and HTTP share ``parity.query.online``) and historical retrieval both
pass through ``MaskingHooks``; the same kernels (``parity.governance.masking``) give the
same masked value on each path. A feature is served masked, with its effective mask
(``parity.governance.classify``):

- when it is classified and the reader lacks ``read_pii`` on its view (with auth off every
  reader has it);
- when it carries ``purposes`` (its own or its inputs') and the read declares none of them
  (checked with auth on; with auth off no purpose is enforced);
- on the rows of a restricted entity key (``parity.governance.restrict``), for every feature
  of a view keyed by that entity and every on-demand output computed from one, unless the
  reader has ``admin`` (with auth off nobody has: such rows are always masked).

Statuses and event times are left as they are. A request whose plan touches no guarded
feature and no restricted entity costs a dictionary lookup and a set intersection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from parity.governance.access import Resource
from parity.governance.classify import Classifier, Sensitivity
from parity.governance.context import Actor
from parity.governance.masking import Mask, hash_key, mask_problem, parse_mask
from parity.governance.restrict import Key, for_store
from parity.hooks import Hooks
from parity.lazy import LazyModule
from parity.registry.catalog import Catalog

if TYPE_CHECKING:
    import pyarrow.compute as pc
else:
    pc = LazyModule("pyarrow.compute", globals(), "pc")  # imported on first use

if TYPE_CHECKING:
    from parity.online.reader import OnlineResponse
    from parity.query.plan import FeaturePlan
    from parity.store import FeatureStore

__all__ = ["MaskPlan", "MaskingHooks", "OutputMask", "masked_features"]

_MAX_PLANS = 1024
_MAX_ACTORS = 256
_NONE: Mapping[str, frozenset[Key]] = {}


@dataclass(frozen=True)
class OutputMask:
    """How one output of a plan is masked, and for whom."""

    name: str
    resource: Resource
    sensitivity: Sensitivity
    mask: Mask
    entities: frozenset[str]
    """The entities whose restricted keys mask this output's rows."""


@dataclass
class MaskPlan:
    """The masking of one ``FeaturePlan``: its outputs and the entities they are keyed by."""

    outputs: tuple[OutputMask, ...]
    entity_keys: Mapping[str, tuple[str, ...]]
    entity_tags: Mapping[str, Mapping[str, str]]
    guarded: tuple[OutputMask, ...]
    hidden_for: dict[Actor, tuple[OutputMask, ...]] = field(default_factory=dict)
    kernels_for: dict[Actor, tuple[tuple[str, Callable[[list[Any]], list[Any]]], ...]] = field(
        default_factory=dict
    )
    """Per actor: (output name, list kernel) of each output it gets masked whole, the one
    lookup an online read makes (``hidden`` decides them)."""

    def hidden(self, store: FeatureStore, actor: Actor) -> tuple[OutputMask, ...]:
        """The outputs ``actor`` gets masked whole (remembered per actor)."""
        found = self.hidden_for.get(actor)
        if found is None:
            access = store.governance.access
            found = tuple(
                o for o in self.guarded if not _may_read(access, actor, o.sensitivity, o.resource)
            )
            if len(self.hidden_for) >= _MAX_ACTORS:
                self.hidden_for.clear()
            self.hidden_for[actor] = found
        return found

    def kernels(
        self, store: FeatureStore, actor: Actor
    ) -> tuple[tuple[str, Callable[[list[Any]], list[Any]]], ...]:
        """``hidden``'s outputs as (name, ``Mask.values``) pairs (remembered per actor)."""
        found = self.kernels_for.get(actor)
        if found is None:
            found = tuple((o.name, o.mask.values) for o in self.hidden(store, actor))
            if len(self.kernels_for) >= _MAX_ACTORS:
                self.kernels_for.clear()
            self.kernels_for[actor] = found
        return found


def masked_features(store: FeatureStore, view: str, names: Sequence[str]) -> set[str]:
    """Of ``names`` (features or input columns of ``view``), those the current actor is
    served masked: classified without ``read_pii`` on the view, or carrying purposes the
    read did not declare. Summaries of such features (a profile's top values, extremes and
    quantiles) would show what masking hides. With auth off: none."""
    access = store.governance.access
    if not access.enabled:
        return set()
    catalog = store.catalog()
    kind = catalog.view_kind(view) or "feature_view"
    obj: Any = catalog.get(kind, view)
    resource = Resource(kind, view, obj.tags)
    classifier = Classifier(catalog)
    actor = store.actor
    out = set()
    for name in names:
        s = classifier.of(view, name)
        if s.guarded and not _may_read(access, actor, s, resource):
            out.add(name)
    return out


def _may_read(access: Any, actor: Actor, s: Sensitivity, resource: Resource) -> bool:
    """Whether ``actor`` reads a feature of sensitivity ``s`` on ``resource`` unmasked."""
    if not access.enabled:
        return True
    if s.purposes is not None and actor.purpose not in s.purposes:
        return False
    return not s.classified or bool(access.allows(actor, "read_pii", resource))


class MaskingHooks(Hooks):
    """Restriction and masking of online responses and historical tables."""

    def __init__(self, store: FeatureStore):
        self._store = store
        self._restrictions = for_store(store)
        self._plans: dict[int, tuple[FeaturePlan, MaskPlan]] = {}
        self._catalog: Catalog | None = None
        self._classifier: Classifier | None = None
        self._key: bytes | None = None
        self._lock = threading.Lock()

    # -- planning ------------------------------------------------------------------------
    def _plan(self, plan: FeaturePlan) -> MaskPlan:
        found = self._plans.get(id(plan))
        if found is not None and found[0] is plan:
            return found[1]
        with self._lock:
            built = self._build(plan)
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[id(plan)] = (plan, built)  # the plan held: its id is not reused
            return built

    def _build(self, plan: FeaturePlan) -> MaskPlan:
        catalog = self._store.catalog()
        if catalog is not self._catalog:
            self._catalog, self._classifier = catalog, Classifier(catalog)
            self._plans.clear()
        assert self._classifier is not None
        outputs = []
        entity_keys: dict[str, tuple[str, ...]] = {}
        entity_tags: dict[str, Mapping[str, str]] = {}
        for o in plan.outputs:
            kind = catalog.view_kind(o.view) or "feature_view"
            obj: Any = catalog.get(kind, o.view)
            sens = self._classifier.of(o.view, o.feature)
            entities = _entities_of(catalog, o.view, set())
            for e in entities:
                ent = catalog.entity(e)
                entity_keys[e] = tuple(ent.join_keys)
                entity_tags[e] = ent.tags
            outputs.append(
                OutputMask(
                    o.name,
                    Resource(kind, o.view, obj.tags),
                    sens,
                    self._mask(sens.mask, o.dtype),
                    frozenset(entities),
                )
            )
        return MaskPlan(
            tuple(outputs),
            entity_keys,
            entity_tags,
            tuple(o for o in outputs if o.sensitivity.guarded),
        )

    def _mask(self, rule: str, dtype: Any) -> Mask:
        if mask_problem(rule, dtype) is not None:  # stored before apply checked it
            rule = "null"
        if rule == "hash" and self._key is None:
            self._key = hash_key(self._store.config, self._store.repo_path)
        return parse_mask(rule, dtype, self._key or b"")

    # -- what to hide ----------------------------------------------------------------------
    def _restricted(self, mp: MaskPlan) -> Mapping[str, frozenset[Key]]:
        """Restricted keys of the plan's entities the actor may not see unmasked."""
        snap = self._restrictions.get()
        if not snap:
            return {}
        hit = {e: snap[e] for e in mp.entity_keys if e in snap}
        if not hit:
            return {}
        access = self._store.governance.access
        if access.enabled:
            actor = self._store.actor
            hit = {
                e: keys
                for e, keys in hit.items()
                if not access.allows(actor, "admin", Resource("entity", e, mp.entity_tags[e]))
            }
        return hit

    # -- the hooks ---------------------------------------------------------------------------
    def shape_online_response(
        self,
        *,
        plan: FeaturePlan,
        entities: dict[str, list[Any]],
        response: OnlineResponse,
        **_: Any,
    ) -> OnlineResponse | None:
        mp = self._plan(plan)
        kernels = mp.kernels(self._store, self._store.actor) if mp.guarded else ()
        restricted = self._restricted(mp) if mp.entity_keys else _NONE
        if not kernels and not restricted:
            return None
        values = response.values
        out = {name: many(values[name]) for name, many in kernels}
        if restricted:
            rows = {
                e: _rows_online(entities, mp.entity_keys[e], keys) for e, keys in restricted.items()
            }
            for o in mp.outputs:
                if o.name in out:  # masked whole already
                    continue
                picked = sorted({i for e in o.entities if e in rows for i in rows[e]})
                if not picked:
                    continue
                col = list(values[o.name])
                masked = o.mask.values([col[i] for i in picked])
                for i, v in zip(picked, masked, strict=True):
                    col[i] = v
                out[o.name] = col
        return response.with_values(out) if out else None

    def shape_historical(self, *, plan: FeaturePlan, table: pa.Table, **_: Any) -> pa.Table | None:
        mp = self._plan(plan)
        hidden = mp.hidden(self._store, self._store.actor) if mp.guarded else ()
        restricted = self._restricted(mp)
        if not hidden and not restricted:
            return None
        names = table.column_names
        for o in hidden:
            i = names.index(o.name)
            table = table.set_column(i, o.name, o.mask.arrow(table.column(i)))
        if restricted and table.num_rows:
            rows = {
                e: _rows_arrow(table, mp.entity_keys[e], keys) for e, keys in restricted.items()
            }
            done = {o.name for o in hidden}
            for o in mp.outputs:
                masks = [rows[e] for e in o.entities if e in rows and rows[e] is not None]
                if o.name in done or not masks:
                    continue
                where = masks[0]
                for m in masks[1:]:
                    where = pc.or_(where, m)
                i = names.index(o.name)
                col = table.column(i).combine_chunks()
                chosen = col.filter(where)
                if not len(chosen):
                    continue
                table = table.set_column(
                    i, o.name, pc.replace_with_mask(col, where, o.mask.arrow(chosen))
                )
        return table


def _entities_of(catalog: Catalog, view: str, seen: set[str]) -> set[str]:
    """The entities ``view`` is keyed by: its own, or an on-demand view's inputs'."""
    if view in seen:
        return set()
    seen.add(view)
    kind = catalog.view_kind(view)
    if kind == "feature_view":
        return set(catalog.view(view).entity_names)
    if kind != "on_demand_feature_view":
        return set()
    out: set[str] = set()
    for inp in catalog.on_demand_view(view).inputs:
        out |= _entities_of(catalog, inp.view, seen)
    return out


def _rows_online(
    entities: Mapping[str, Sequence[Any]], keys: tuple[str, ...], restricted: frozenset[Key]
) -> list[int]:
    """The rows of a request whose entity key is restricted."""
    if any(k not in entities for k in keys):
        return []
    if len(keys) == 1:
        return [i for i, v in enumerate(entities[keys[0]]) if v in restricted]
    cols = [entities[k] for k in keys]
    return [i for i, key in enumerate(zip(*cols, strict=True)) if key in restricted]


def _rows_arrow(table: pa.Table, keys: tuple[str, ...], restricted: frozenset[Key]) -> Any:
    """A boolean array: the table's rows whose entity key is restricted (None: no column)."""
    names = table.column_names
    if any(k not in names for k in keys):
        return None
    if len(keys) == 1:
        col = table.column(keys[0])
        try:
            values = pa.array(list(restricted), type=col.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            values = None
        if values is not None:
            return pc.fill_null(pc.is_in(col, value_set=values), False).combine_chunks()
        return pa.array([v in restricted for v in col.to_pylist()], pa.bool_())
    cols = [table.column(k).to_pylist() for k in keys]
    return pa.array([key in restricted for key in zip(*cols, strict=True)], pa.bool_())
