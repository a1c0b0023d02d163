"""From what a caller asks for (feature refs, a service) to what an engine or store reads.

A feature reference is ``"view:feature"``; ``"view:*"`` or a bare ``"view"`` means all of
that view's features. A FeatureService (object or name) stands for its projections.
Output names are the feature names, or ``view__feature`` with ``full_feature_names``;
two features that would share an output name are refused with advice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from parity.catalog import Catalog
from parity.definitions import FeatureService, FeatureView
from parity.errors import RetrievalError


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
