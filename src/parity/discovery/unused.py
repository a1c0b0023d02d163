"""Unused features: what no service or model selects and nothing read lately.

A feature (``view:feature``, of a feature view or an on-demand view) is *used* when

- a feature service selects it (a service listing no features of a view selects them all;
  models reach features through their service, so a model's features are its service's),
- or a read returned it within the last ``days`` (the usage statistics, ``usage.py``),
- or an on-demand view reads it to compute a feature that is used (followed through
  chains of on-demand views).

Everything else is *unused*: a candidate to deprecate (``parity lifecycle VIEW deprecated``,
or remove the feature from its view), so data nobody needs is not computed, stored and
served (data minimisation). Usage counts from when Parity started counting: a feature
added recently has had little time to be read, hence each one's view's age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from parity.definitions import FeatureView, OnDemandFeatureView
from parity.discovery.documents import selected
from parity.governance.enforce import visible
from parity.registry.catalog import Catalog

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["UnusedFeature", "unused", "unused_in", "whole_views"]

VIEW_KINDS = ("feature_view", "on_demand_feature_view")


@dataclass(frozen=True)
class UnusedFeature:
    """A feature nothing selects and nothing read since the cutoff: its view (and kind), the
    view's owner and lifecycle state, its last read (None: never), when the view was
    created (None: not known) and whether every feature of the view is unused."""

    kind: str
    view: str
    feature: str
    owner: str
    state: str
    last_read_at: datetime | None
    view_created_at: datetime | None
    whole_view: bool = False

    @property
    def ref(self) -> str:
        return f"{self.view}:{self.feature}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "view": self.view,
            "feature": self.feature,
            "owner": self.owner,
            "state": self.state,
            "last_read_at": _iso(self.last_read_at),
            "view_created_at": _iso(self.view_created_at),
            "whole_view": self.whole_view,
        }


def unused(store: FeatureStore, days: float = 90) -> list[UnusedFeature]:
    """The store's unused features (see the module), by view and feature; with auth on, of
    the views its actor may describe. ``days``: how far back a read counts."""
    from parity.discovery.records import UsageRecords
    from parity.discovery.usage import flush

    cutoff = _cutoff(days, store.clock.now_us())
    flush(store)  # what this process read counts too
    kept = UsageRecords(store.registry)
    catalog = store.catalog()
    shown = {(o.kind, o.name) for o in visible(store, _views(catalog))}
    found = unused_in(catalog, kept.last_reads(VIEW_KINDS), cutoff, kept.created())
    return [u for u in found if (u.kind, u.view) in shown]


def unused_in(
    catalog: Catalog,
    last_reads: dict[tuple[str, str, str], datetime],
    cutoff: datetime,
    created: dict[tuple[str, str], datetime] | None = None,
) -> list[UnusedFeature]:
    """The unused features of ``catalog`` given each feature's last read (see the module)."""
    used: set[tuple[str, str]] = set()
    for service in catalog.objects.get("feature_service", {}).values():
        used.update(selected(catalog, service))  # type: ignore[arg-type]
    for (_, view, feature), at in last_reads.items():
        if at >= cutoff:
            used.add((view, feature))
    odfvs = catalog.on_demand_views()
    grew = True
    while grew:  # what a used on-demand feature reads is used, down chains of them
        grew = False
        for od in odfvs:
            if not any((od.name, f) in used for f in od.feature_names):
                continue
            for inp in od.inputs:
                feats = inp.features if inp.features is not None else _features(catalog, inp.view)
                for f in feats:
                    if (inp.view, f) not in used:
                        used.add((inp.view, f))
                        grew = True
    made = created or {}
    out = []
    for obj in _views(catalog):
        names = _features(catalog, obj.name)
        whole = not any((obj.name, n) in used for n in names)
        for name in names:
            if (obj.name, name) in used:
                continue
            out.append(
                UnusedFeature(
                    kind=obj.kind,
                    view=obj.name,
                    feature=name,
                    owner=obj.owner,
                    state=obj.state,
                    last_read_at=last_reads.get((obj.kind, obj.name, name)),
                    view_created_at=made.get((obj.kind, obj.name)),
                    whole_view=whole,
                )
            )
    out.sort(key=lambda u: (u.view, u.feature))
    return out


def whole_views(found: list[UnusedFeature]) -> list[str]:
    """The views of ``found`` none of whose features is used, by name."""
    return sorted({u.view for u in found if u.whole_view})


def _views(catalog: Catalog) -> list[FeatureView | OnDemandFeatureView]:
    return [*catalog.views(), *catalog.on_demand_views()]


def _features(catalog: Catalog, view: str) -> list[str]:
    kind = catalog.view_kind(view)
    if kind is None:
        return []
    obj = catalog.objects[kind][view]
    try:
        return list(obj.feature_names)  # type: ignore[attr-defined]
    except Exception:  # an aggregated view whose types come at apply
        return []


def _cutoff(days: float, now_us: int) -> datetime:
    if isinstance(days, bool) or not isinstance(days, int | float) or days < 0:
        raise ValueError(f"days must be a number >= 0, got {days!r}")
    now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=now_us)
    return now - timedelta(days=days)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
