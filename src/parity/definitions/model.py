"""Models: the registered consumers of a feature service.

A ``Model`` names the service it reads its features through. It holds no features of its
own; it is what lineage, impact analysis (a breaking change to a view a model reads is
refused without ``--allow-breaking``) and usage statistics point at::

    fraud_model = Model("fraud_v3", features="fraud_service", owner="risk-ml",
                        description="gradient-boosted fraud score")

In YAML: ``kind: model`` with ``name``, ``features`` (the service's name), ``owner``,
``description`` and ``tags``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import field_validator

from parity.definitions.base import Definition, _check_name


class Model(Definition):
    """A model and the feature service it reads (``features``: the service or its name)."""

    kind: ClassVar[str] = "model"

    features: str

    def __init__(self, name: str, features: Any = None, **data: Any) -> None:
        super().__init__(name=name, features=features, **data)

    @field_validator("features", mode="before")
    @classmethod
    def _service(cls, v: Any) -> Any:
        from parity.definitions.feature_service import FeatureService

        if isinstance(v, FeatureService):
            return v.name
        if v is None:
            raise ValueError("required: the feature service the model reads its features from")
        if not isinstance(v, str):
            raise ValueError(
                f"a model's features are one feature service (the object or its name), "
                f"got {type(v).__name__}"
            )
        return _check_name(v)

    @property
    def service_name(self) -> str:
        return self.features
