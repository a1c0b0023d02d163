"""Feature services: the named set of features a model reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import field_serializer, field_validator

from parity.definitions.base import Definition, _check_name
from parity.definitions.feature_view import FeatureView, FeatureViewProjection
from parity.definitions.on_demand import OnDemandFeatureView


def _projection(item: Any) -> FeatureViewProjection:
    if isinstance(item, FeatureViewProjection):
        return item
    if isinstance(item, FeatureView | OnDemandFeatureView):
        return FeatureViewProjection(view=item.name, features=None)
    if isinstance(item, str):
        view, _, feats = item.partition(":")
        names = tuple(_check_name(f.strip()) for f in feats.split(",") if f.strip())
        return FeatureViewProjection(view=_check_name(view.strip()), features=names or None)
    if isinstance(item, dict):
        if "view" not in item or set(item) - {"view", "features"}:
            raise ValueError(
                f"a service feature given as a mapping has keys 'view' and optionally "
                f"'features', got {item!r}"
            )
        listed: Any = item.get("features")
        if isinstance(listed, str):  # one feature; tuple("abc") would split it into letters
            listed = [listed]
        if listed is not None and not isinstance(listed, list | tuple):
            raise ValueError(f"'features' must be a list of feature names, got {listed!r}")
        names = tuple(_check_name(f) for f in listed or ())
        return FeatureViewProjection(view=_check_name(item["view"]), features=names or None)
    raise ValueError(
        f"a service feature must be a view, view[[...]], 'view' or 'view:feature', got {item!r}"
    )


class FeatureService(Definition):
    """A named list of views or view projections; ``features=None`` in one means all."""

    kind: ClassVar[str] = "feature_service"

    features: list[FeatureViewProjection]
    pin_versions: bool = False
    """Reads fail while a view read moved to another major version since this service's
    last version was applied (``parity.lifecycle``)."""

    def __init__(
        self,
        name: str,
        features: Sequence[
            FeatureView | OnDemandFeatureView | FeatureViewProjection | str | dict[str, Any]
        ],
        **data: Any,
    ) -> None:
        super().__init__(name=name, features=features, **data)

    @field_validator("features", mode="before")
    @classmethod
    def _features(cls, v: Any) -> Any:
        if not isinstance(v, list | tuple) or not v:
            raise ValueError("a feature service needs a non-empty list of views or features")
        merged: dict[str, FeatureViewProjection] = {}
        for item in v:
            p = _projection(item)
            prev = merged.get(p.view)
            if prev is not None:
                if prev.features is None or p.features is None:
                    p = FeatureViewProjection(view=p.view)
                else:
                    feats = list(prev.features) + [f for f in p.features if f not in prev.features]
                    p = FeatureViewProjection(view=p.view, features=tuple(feats))
            merged[p.view] = p
        return list(merged.values())

    @field_serializer("features")
    def _ser(self, v: list[FeatureViewProjection]) -> list[dict[str, Any]]:
        return [p.to_spec() for p in v]

    def to_spec(self) -> dict[str, Any]:
        spec = super().to_spec()
        if not spec.get("pin_versions"):  # unset: the stored form (and hash) stay
            spec.pop("pin_versions", None)
        return spec
