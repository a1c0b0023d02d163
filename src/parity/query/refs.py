"""Feature references: the one parser of what a caller asks for.

A reference is ``"view:feature"``; ``"view:*"`` or a bare ``"view"`` in a list means all of
that view's features. A FeatureService (object, or its name given alone as a string) stands
for its projections. ``view`` may be a feature view or an on-demand view. Errors name the
reference at fault; an unknown view or service raises ``ObjectNotFoundError`` with a hint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from parity.definitions import FeatureService
from parity.errors import RetrievalError
from parity.online.encoding import encode_key
from parity.registry.catalog import Catalog

FeatureRefs = Sequence[str] | FeatureService | str
"""What a read names: ``["view:feature", "view", ...]``, a FeatureService, or its name."""


@dataclass(frozen=True)
class FeatureRef:
    """One parsed reference: a view and one of its features, or all of them (None)."""

    view: str
    feature: str | None


def is_service_name(features: Any) -> bool:
    """A plain string without ``:`` names a feature service."""
    return isinstance(features, str) and ":" not in features


def parse_refs(features: FeatureRefs, catalog: Catalog) -> list[FeatureRef]:
    """The references a request names, in the caller's order (services expanded)."""
    if isinstance(features, FeatureService) or is_service_name(features):
        service = features if isinstance(features, FeatureService) else catalog.service(features)  # type: ignore[arg-type]
        out: list[FeatureRef] = []
        for p in service.features:
            if p.features:
                out += [FeatureRef(p.view, f) for f in p.features]
            else:
                out.append(FeatureRef(p.view, None))
        return out
    refs = [features] if isinstance(features, str) else features
    if not isinstance(refs, list | tuple):
        raise RetrievalError(
            "features must be a list of 'view:feature' references or a feature service, "
            f"got {type(refs).__name__}"
        )
    if not refs:
        raise RetrievalError("no features requested")
    parsed = []
    for ref in refs:
        if not isinstance(ref, str):
            raise RetrievalError(f"a feature reference must be 'view:feature', got {ref!r}")
        view, sep, feature = ref.partition(":")
        if not view or (sep and not feature):
            raise RetrievalError(f"bad feature reference {ref!r}: expected 'view:feature'")
        parsed.append(FeatureRef(view, None if not sep or feature == "*" else feature))
    return parsed


def request_key(features: Any, full_feature_names: bool) -> Any:
    """A hashable key for a request (what a plan is cached by); None when it has none."""
    if isinstance(features, FeatureService):
        return ("service", features.name, features.content_hash(), full_feature_names)
    if isinstance(features, str):
        return (features, full_feature_names)
    if isinstance(features, list | tuple):
        if all(type(f) is str for f in features):
            return (tuple(features), full_feature_names)
        return None  # malformed: planned (and refused) every time
    return None


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
