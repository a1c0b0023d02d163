"""From what a caller asks for (feature refs, a service) to what an engine or store reads.

A feature reference is ``"view:feature"``; ``"view:*"`` or a bare ``"view"`` means all of
that view's features. A FeatureService (object or name) stands for its projections.
Output names are the feature names, or ``view__feature`` with ``full_feature_names``;
two features that would share an output name are refused with advice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from parity.aggregates.state import AggregatePlan
from parity.catalog import Catalog
from parity.definitions import FeatureService, FeatureView
from parity.errors import RetrievalError
from parity.online.base import OnlineView
from parity.online.encoding import encode_key
from parity.online.reader import ReadPlan, ViewRead


@dataclass(frozen=True)
class ViewRequest:
    """The features asked of one view, in the order asked, with their output names."""

    view: FeatureView
    features: tuple[str, ...]
    output_names: tuple[str, ...]


FeatureRefs = Sequence[str] | FeatureService | str


def resolve_features(
    features: FeatureRefs, catalog: Catalog, *, full_feature_names: bool = False
) -> list[ViewRequest]:
    """The views and features a request names, grouped by view in first-seen order."""
    wanted: dict[str, list[str]] = {}
    if isinstance(features, FeatureService) or (isinstance(features, str) and ":" not in features):
        service = features if isinstance(features, FeatureService) else catalog.service(features)
        for p in service.features:
            view = catalog.view(p.view)
            wanted.setdefault(p.view, []).extend(p.features or view.feature_names)
    else:
        if isinstance(features, str):
            features = [features]
        if not features:
            raise RetrievalError("no features requested")
        for ref in features:
            if not isinstance(ref, str):
                raise RetrievalError(f"a feature reference must be 'view:feature', got {ref!r}")
            view_name, sep, feature = ref.partition(":")
            if not view_name or (sep and not feature):
                raise RetrievalError(f"bad feature reference {ref!r}: expected 'view:feature'")
            view = catalog.view(view_name)
            if not sep or feature == "*":
                wanted.setdefault(view_name, []).extend(view.feature_names)
            else:
                view.field(feature)
                wanted.setdefault(view_name, []).append(feature)

    requests = []
    seen_out: dict[str, str] = {}
    for view_name, feats in wanted.items():
        view = catalog.view(view_name)
        unique = tuple(dict.fromkeys(feats))
        outs = tuple(f"{view_name}__{f}" if full_feature_names else f for f in unique)
        for f, out in zip(unique, outs, strict=True):
            if out in seen_out:
                raise RetrievalError(
                    f"features {seen_out[out]!r} and '{view_name}:{f}' would both be named "
                    f"{out!r}; pass full_feature_names=True"
                )
            seen_out[out] = f"{view_name}:{f}"
        requests.append(ViewRequest(view=view, features=unique, output_names=outs))
    return requests


def read_plan(requests: Sequence[ViewRequest], catalog: Catalog) -> ReadPlan:
    """The online read of resolved requests; reused until the registry changes."""
    views = []
    keys: list[str] = []
    for r in requests:
        if not r.view.online:
            raise RetrievalError(f"feature view {r.view.name!r} is offline only (online=False)")
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


def entity_keys(keys: Sequence[Any], join_keys: Sequence[str]) -> list[bytes]:
    """Encoded entity keys from plain values (one join key) or dicts of join-key values."""
    out = []
    for i, k in enumerate(keys):
        if isinstance(k, Mapping):
            missing = [j for j in join_keys if j not in k]
            if missing:
                raise RetrievalError(f"key {i}: lacks join key(s) {missing}")
            out.append(encode_key([k[j] for j in join_keys], join_keys))
        elif len(join_keys) == 1:
            out.append(encode_key([k], join_keys))
        else:
            raise RetrievalError(f"key {i}: give a dict of {list(join_keys)} for a composite key")
    return out
