"""Apply-time policies: what a definition must declare before it is registered.

``governance:`` in ``parity.yaml`` turns on the rules (each off by default)::

    governance: { require_owner: true, require_classification: true, require_description: true }

- ``require_owner``: every object (entity, source, view, on-demand view, service, role)
  names an ``owner``;
- ``require_description``: every object, and every feature field of a view or an on-demand
  view, has a ``description``;
- ``require_classification``: every feature field declares a ``classification`` (or
  ``pii=True``, on the field or its view). An aggregated view's outputs take their input
  column's field (a ``count`` reads none and needs nothing); an on-demand output declares
  its own.

Encryption's rules hold whatever ``governance`` says, since a value Parity cannot encrypt
must not look encrypted: ``encrypt=True`` needs an ``encryption`` section, and is refused on
an aggregated view (its online records are partial aggregates, not the values) and on an
on-demand output (computed at read time, never stored).

``parity plan`` lists every violation; ``parity apply`` (and ``store.apply``) refuses them
with one ``ValidationError`` naming each object and field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parity.definitions import FeatureView, OnDemandFeatureView
from parity.errors import ValidationError
from parity.hooks import Hooks

if TYPE_CHECKING:
    from parity.definitions import Definition
    from parity.definitions.feature_view import Field
    from parity.store import FeatureStore

__all__ = ["PolicyHooks", "Violation", "check", "violations"]

_LABEL = {
    "entity": "entity",
    "source": "source",
    "feature_view": "feature view",
    "on_demand_feature_view": "on-demand feature view",
    "feature_service": "feature service",
    "model": "model",
    "role": "role",
}


@dataclass(frozen=True)
class Violation:
    """One rule one object (or one of its fields) breaks."""

    kind: str
    name: str
    field: str | None
    rule: str
    """``require_owner``, ``require_description``, ``require_classification`` or ``encrypt``."""
    message: str

    def __str__(self) -> str:
        where = f"{_LABEL.get(self.kind, self.kind)} {self.name!r}"
        if self.field is not None:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"


def violations(store: FeatureStore, objects: Sequence[Definition] | None = None) -> list[Violation]:
    """Every violation of ``objects`` (None: the repo folder's definitions), in order."""
    if objects is None:
        objects = store.load_repo()
    return list(_all(store, objects))


def check(store: FeatureStore, objects: Sequence[Definition] | None = None) -> None:
    """Raise ``ValidationError`` naming every violation, if there is one."""
    found = violations(store, objects)
    if found:
        raise ValidationError([str(v) for v in found])


def _all(store: FeatureStore, objects: Iterable[Definition]) -> Iterable[Violation]:
    rules = store.config.governance
    encryption = store.config.encryption is not None
    for obj in objects:
        kind, name = obj.kind, obj.name
        if rules.require_owner and not obj.owner.strip():
            yield Violation(
                kind, name, None, "require_owner", "no owner (governance.require_owner)"
            )
        if rules.require_description and not obj.description.strip():
            yield Violation(
                kind, name, None, "require_description", "no description "
                "(governance.require_description)"
            )  # fmt: skip
        fields = _fields(obj)
        for f in fields:
            if rules.require_description and not f.description.strip():
                yield Violation(
                    kind, name, f.name, "require_description",
                    "no description (governance.require_description)",
                )  # fmt: skip
            if f.encrypt:
                yield from _encrypt(obj, f, encryption)
        if rules.require_classification:
            yield from _classification(obj)


def _fields(obj: Definition) -> list[Field]:
    if isinstance(obj, FeatureView):
        return list(obj.schema_)
    if isinstance(obj, OnDemandFeatureView):
        return list(obj.schema_)
    return []


def _declared(f: Field, view_pii: bool = False) -> bool:
    return f.classification is not None or f.pii or view_pii


def _classification(obj: Definition) -> Iterable[Violation]:
    missing = "no classification: declare classification= (pii, pci, confidential or " \
        "public) (governance.require_classification)"  # fmt: skip
    if isinstance(obj, OnDemandFeatureView):
        for f in obj.schema_:
            if not _declared(f):
                yield Violation(obj.kind, obj.name, f.name, "require_classification", missing)
        return
    if not isinstance(obj, FeatureView):
        return
    if not obj.aggregations:
        for f in obj.schema_:
            if not _declared(f, obj.pii):
                yield Violation(obj.kind, obj.name, f.name, "require_classification", missing)
        return
    by_name = {f.name: f for f in obj.schema_}
    for a in obj.aggregations:
        if a.column is None:  # a count reads no field's values
            continue
        read = by_name.get(a.column)
        if read is None or not _declared(read, obj.pii):
            yield Violation(
                obj.kind, obj.name, a.column, "require_classification",
                f"no classification for the column aggregation {a.output_name!r} reads: "
                "list it in schema with classification= (governance.require_classification)",
            )  # fmt: skip


def _encrypt(obj: Definition, f: Field, configured: bool) -> Iterable[Violation]:
    kind, name = obj.kind, obj.name
    if isinstance(obj, OnDemandFeatureView):
        yield Violation(
            kind, name, f.name, "encrypt",
            "encrypt=True on an on-demand output: its values are computed at read time and "
            "never stored; encrypt the stored features it reads instead",
        )  # fmt: skip
        return
    if isinstance(obj, FeatureView) and obj.aggregations:
        yield Violation(
            kind, name, f.name, "encrypt",
            "encrypt=True on an aggregated view: its online records hold partial aggregates "
            "Parity must combine, not the values; encrypt the column in a plain view instead",
        )  # fmt: skip
        return
    if not configured:
        yield Violation(
            kind, name, f.name, "encrypt",
            "encrypt=True needs keys: add an encryption section (key_file or key_env) to "
            "parity.yaml",
        )  # fmt: skip


class PolicyHooks(Hooks):
    """Refuses an apply that breaks a policy (after access checks, before anything is
    validated against the registry)."""

    def __init__(self, store: FeatureStore):
        self._store = store

    def before_apply(self, *, objects: Sequence[Definition] | None, **_: Any) -> None:
        check(self._store, objects)
