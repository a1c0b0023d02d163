"""A read-only, indexed view of a set of definitions: what the registry holds, or what an
apply would leave. Lookups raise ObjectNotFoundError with a hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from parity.definitions import (
    KINDS,
    DataSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
)
from parity.errors import ObjectNotFoundError

_LABEL = {
    "entity": "entity",
    "source": "data source",
    "feature_view": "feature view",
    "feature_service": "feature service",
}


@dataclass(frozen=True)
class Catalog:
    """Definitions by kind and name, at one registry revision (-1 when not from a registry)."""

    objects: dict[str, dict[str, Definition]] = field(default_factory=dict)
    revision: int = -1
    project: str | None = None

    @classmethod
    def of(
        cls, objects: Iterable[Definition], revision: int = -1, project: str | None = None
    ) -> Catalog:
        by_kind: dict[str, dict[str, Definition]] = {k: {} for k in KINDS}
        for obj in objects:
            by_kind.setdefault(obj.kind, {})[obj.name] = obj
        return cls(objects=by_kind, revision=revision, project=project)

    def all(self) -> list[Definition]:
        return [o for k in KINDS for _, o in sorted(self.objects.get(k, {}).items())]

    def views(self) -> list[FeatureView]:
        """Every feature view, by name."""
        return [v for _, v in sorted(self.objects.get("feature_view", {}).items())]  # type: ignore[misc]

    def names(self, kind: str) -> list[str]:
        return sorted(self.objects.get(kind, {}))

    def get(self, kind: str, name: str) -> Definition:
        found = self.objects.get(kind, {}).get(name)
        if found is None:
            close = difflib.get_close_matches(name, self.names(kind), n=3)
            hint = f"did you mean {', '.join(map(repr, close))}?" if close else ""
            if not hint and self.names(kind):
                hint = f"known: {', '.join(self.names(kind)[:20])}"
            raise ObjectNotFoundError(_LABEL.get(kind, kind), name, self.project, hint)
        return found

    def has(self, kind: str, name: str) -> bool:
        return name in self.objects.get(kind, {})

    def entity(self, name: str) -> Entity:
        return self.get("entity", name)  # type: ignore[return-value]

    def source(self, name: str) -> DataSource:
        return self.get("source", name)  # type: ignore[return-value]

    def view(self, name: str) -> FeatureView:
        return self.get("feature_view", name)  # type: ignore[return-value]

    def service(self, name: str) -> FeatureService:
        return self.get("feature_service", name)  # type: ignore[return-value]

    def source_of(self, view: FeatureView) -> DataSource:
        if isinstance(view.source, DataSource):
            return view.source
        return self.source(view.source)

    def join_keys_of(self, view: FeatureView) -> list[str]:
        keys: list[str] = []
        for e in view.entities:
            ent = e if isinstance(e, Entity) else self.entity(e)
            keys.extend(ent.join_keys)
        return keys
