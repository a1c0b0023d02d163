"""A read-only, indexed view of a set of definitions: what the registry holds, or what an
apply would leave. Lookups raise ObjectNotFoundError with a hint. ``CatalogCache`` keeps a
store's current one, re-read when the registry's revision moves."""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from parity.definitions import (
    KINDS,
    DataSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    Model,
    OnDemandFeatureView,
)
from parity.errors import ObjectNotFoundError

if TYPE_CHECKING:
    from parity.hooks import HookSet
    from parity.registry.registry import Registry

_LABEL = {
    "entity": "entity",
    "source": "data source",
    "feature_view": "feature view",
    "on_demand_feature_view": "on-demand feature view",
    "feature_service": "feature service",
    "model": "model",
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

    def on_demand_views(self) -> list[OnDemandFeatureView]:
        """Every on-demand feature view, by name."""
        return [v for _, v in sorted(self.objects.get("on_demand_feature_view", {}).items())]  # type: ignore[misc]

    def on_demand_view(self, name: str) -> OnDemandFeatureView:
        return self.get("on_demand_feature_view", name)  # type: ignore[return-value]

    def view_kind(self, name: str) -> str | None:
        """``feature_view`` or ``on_demand_feature_view`` for a view's name; None if neither."""
        for kind in ("feature_view", "on_demand_feature_view"):
            if self.has(kind, name):
                return kind
        return None

    def upstream(self, obj: Definition) -> list[tuple[str, str]]:
        """The (kind, name) of every object ``obj`` reads directly; unknown names as ``?``."""
        if isinstance(obj, FeatureView):
            return [("entity", e) for e in obj.entity_names] + [("source", obj.source_name)]
        if isinstance(obj, OnDemandFeatureView):
            return [(self.view_kind(i.view) or "?", i.view) for i in obj.inputs]
        if isinstance(obj, FeatureService):
            return [(self.view_kind(p.view) or "?", p.view) for p in obj.features]
        if isinstance(obj, Model):
            return [("feature_service", obj.service_name)]
        return []

    def downstream(self, kind: str, name: str) -> list[tuple[str, str]]:
        """The (kind, name) of every object that reads the object ``kind name`` directly."""
        return [(o.kind, o.name) for o in self.all() if (kind, name) in self.upstream(o)]

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


class CatalogCache:
    """The registry's definitions as a Catalog, re-read at most every ``ttl_seconds``.

    After ``ttl_seconds`` the registry's revision is checked (one cheap query) and the
    definitions are read again only when it moved; ``get(fresh=True)`` checks the revision
    whatever the ttl (every change of definitions moves it: applies, imports). Every re-read
    is reported to ``after_registry_refresh`` hooks.
    """

    def __init__(
        self, registry: Callable[[], Registry], project: str, ttl_seconds: float, hooks: HookSet
    ):
        self._registry = registry
        self._project = project
        self._ttl = ttl_seconds
        self._hooks = hooks
        self._catalog: Catalog | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def get(self, *, fresh: bool = False, known: Iterable[Definition] = ()) -> Catalog:
        """The catalog (see the class); ``known``: definitions the caller holds, which a
        re-read takes instead of rebuilding the registered objects equal to them."""
        with self._lock:
            now = time.monotonic()
            old = self._catalog
            stale = old is None or fresh or now - self._checked_at >= self._ttl
            if stale and (old is None or self._registry().revision() != old.revision):
                snap = self._registry().snapshot(known)
                self._catalog = Catalog.of(snap.objects, snap.revision, self._project)
                if self._hooks.wants("after_registry_refresh"):
                    self._hooks.after(
                        "after_registry_refresh",
                        project=self._project,
                        revision=snap.revision,
                        previous_revision=None if old is None else old.revision,
                    )
            if stale:
                self._checked_at = now
            assert self._catalog is not None
            return self._catalog

    def invalidate(self) -> None:
        """Read the definitions again next time (after this process changed them)."""
        with self._lock:
            self._catalog = None
