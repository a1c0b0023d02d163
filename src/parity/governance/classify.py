"""Effective classification: how sensitive each served feature is, along its dependencies.

A feature view's field is as it declares (``Field.sensitivity``: ``public`` when nothing is
said; ``pii`` when nothing is said in a view marked ``pii=True``). What is computed from classified data is classified too:

- an on-demand view's output is the *highest* classification among every input it reads
  (the selected features of its source views, on-demand ones included, and its request
  fields), in the order ``public < confidential < pii < pci``; it may declare a lower one
  only with ``classification_reason`` (apply refuses it otherwise, naming view and field),
  and then it is what it declares. Its ``purposes`` are those every input's purposes allow
  (the intersection, with its own declared ones), unless lowered with a reason.
- an aggregated view's output has the classification and purposes of the column it
  aggregates (a count over every row: the view's own ``pii`` flag).

The mask of an output is its own ``mask`` (``null`` when none); an aggregated output keeps
its column's mask when that mask fits the output's type, else ``null``.

``problems(world)`` lists what apply refuses; ``effective(catalog)`` gives every feature's
``Sensitivity``, computed once per catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parity.definitions import FeatureView, Field, OnDemandFeatureView
from parity.governance.masking import mask_problem
from parity.registry.catalog import Catalog

__all__ = ["LEVELS", "Classifier", "Sensitivity", "effective", "problems"]

LEVELS = {"public": 0, "confidential": 1, "pii": 2, "pci": 3}
"""Classifications from least to most sensitive."""


@dataclass(frozen=True)
class Sensitivity:
    """What masking needs of one feature: its classification, mask rule and purposes (None:
    served for any purpose)."""

    classification: str
    mask: str
    purposes: frozenset[str] | None = None

    @property
    def classified(self) -> bool:
        """Served masked to readers without ``read_pii``."""
        return LEVELS[self.classification] > 0

    @property
    def guarded(self) -> bool:
        """Whether reading it unmasked depends on the reader at all."""
        return self.classified or self.purposes is not None


PUBLIC = Sensitivity("public", "null")


def _declared(f: Field) -> Sensitivity:
    purposes = None if f.purposes is None else frozenset(f.purposes)
    return Sensitivity(f.sensitivity, f.mask_rule, purposes)


def _meet(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


class Classifier:
    """Effective sensitivities of one catalog, computed on demand and remembered."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.memo: dict[str, dict[str, Sensitivity]] = {}
        self.problems: list[str] = []
        self._path: list[str] = []

    def of(self, view: str, feature: str) -> Sensitivity:
        """The effective sensitivity of ``view:feature`` (public when unknown)."""
        return self.view(view).get(feature, PUBLIC)

    def view(self, name: str) -> dict[str, Sensitivity]:
        found = self.memo.get(name)
        if found is not None:
            return found
        if name in self._path:  # a cycle: reported by apply's own checks
            return {}
        kind = self.catalog.view_kind(name)
        if kind is None:
            return {}
        self._path.append(name)
        try:
            obj: Any = self.catalog.get(kind, name)
            out = self._odfv(obj) if kind == "on_demand_feature_view" else self._fv(obj)
        finally:
            self._path.pop()
        self.memo[name] = out
        return out

    def _fv(self, view: FeatureView) -> dict[str, Sensitivity]:
        declared = {f.name: _declared(f) for f in view.schema_}
        if view.pii:  # a view holding personal data: what its fields do not say is pii
            for f in view.schema_:
                if f.classification is None and not f.pii:
                    declared[f.name] = Sensitivity("pii", f.mask_rule, declared[f.name].purposes)
        if not view.is_aggregated:
            return declared
        out = {}
        whole = Sensitivity("pii" if view.pii else "public", "null")
        types = {f.name: f.dtype for f in view.schema_}
        for agg in view.aggregations:  # a column may be left to apply to fill in: no dtype
            column = declared.get(agg.column) if agg.column else None
            base = column or whole
            mask = base.mask
            typed = agg.column is None or agg.column in types
            dtype = (
                agg.output_type(types.get(agg.column) if agg.column else None) if typed else None
            )
            if dtype is None or mask_problem(mask, dtype) is not None:
                mask = "null"
            out[agg.output_name] = Sensitivity(base.classification, mask, base.purposes)
        return out

    def _odfv(self, odfv: OnDemandFeatureView) -> dict[str, Sensitivity]:
        inputs: list[tuple[str, Sensitivity]] = []
        for inp in odfv.inputs:
            kind = self.catalog.view_kind(inp.view)
            if kind is None:  # an unknown input: apply's own checks name it
                continue
            upstream = self.view(inp.view)
            names = inp.features or self.catalog.get(kind, inp.view).feature_names  # type: ignore[arg-type, attr-defined]
            inputs += [(f"{inp.view}:{f}", upstream.get(f, PUBLIC)) for f in names]
        for req in odfv.request_sources:
            inputs += [(f"request {req.name}:{f.name}", _declared(f)) for f in req.schema]
        top = max(inputs, key=lambda i: LEVELS[i[1].classification], default=("", PUBLIC))
        purposes: frozenset[str] | None = None
        for _, s in inputs:
            purposes = _meet(purposes, s.purposes)
        label = f"on-demand feature view {odfv.name!r}"
        out = {}
        for f in odfv.schema_:
            own = _declared(f)
            if f.classification is None and not f.pii:  # nothing declared: inherits
                out[f.name] = Sensitivity(
                    top[1].classification, own.mask, _meet(own.purposes, purposes)
                )
            elif LEVELS[own.classification] >= LEVELS[top[1].classification]:
                out[f.name] = Sensitivity(
                    own.classification, own.mask, _meet(own.purposes, purposes)
                )
            elif f.classification_reason:
                out[f.name] = own  # lowered on purpose, with a reason
            else:
                self.problems.append(
                    f"{label}: field {f.name!r} is classified {own.classification!r} but is "
                    f"computed from {top[0]!r} ({top[1].classification}); declare "
                    f"classification_reason to classify it lower, or classify it "
                    f"{top[1].classification!r}"
                )
                out[f.name] = Sensitivity(
                    top[1].classification, own.mask, _meet(own.purposes, purposes)
                )
        return out


def _mask_problems(label: str, fields: list[Field]) -> list[str]:
    out = []
    for f in fields:
        if f.mask is None:
            continue
        problem = mask_problem(f.mask, f.dtype)
        if problem is not None:
            out.append(f"{label}: field {f.name!r}: {problem}")
    return out


def problems(world: Catalog) -> list[str]:
    """What apply refuses: a mask a field's type cannot take, and an on-demand output
    classified lower than its inputs without ``classification_reason``."""
    found: list[str] = []
    for view in world.views():
        found += _mask_problems(f"feature view {view.name!r}", view.schema_)
    for odfv in world.on_demand_views():
        label = f"on-demand feature view {odfv.name!r}"
        found += _mask_problems(label, odfv.schema_)
        for req in odfv.request_sources:
            found += _mask_problems(f"{label}: request source {req.name!r}", req.schema)
    resolver = Classifier(world)
    for odfv in world.on_demand_views():
        resolver.view(odfv.name)
    return found + resolver.problems


def effective(catalog: Catalog) -> Classifier:
    """The effective sensitivities of ``catalog``'s features (``.of(view, feature)``)."""
    return Classifier(catalog)
