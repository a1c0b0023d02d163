"""Feature views: a group of features of some entities, read from one source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from parity.definitions.aggregation import Aggregation
from parity.definitions.base import NAME_RE, Definition, DType, Duration, Name, definition_error
from parity.definitions.entity import Entity
from parity.definitions.source import DataSource, source_from_spec
from parity.errors import DefinitionError


class _Sparse:
    """Settings added after specs were first stored are left out of a spec while unset, so
    a definition that does not use them keeps its stored content hash."""

    _sparse: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in self._sparse:
                if data.get(key, 0) is None:
                    del data[key]
        return data


class _Part(_Sparse, BaseModel):
    """A value inside a definition; invalid input raises DefinitionError, like definitions."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    _label: ClassVar[str] = "part"

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except PydanticValidationError as exc:
            raise definition_error(self._label, data.get("name"), exc) from None


CheckValue = bool | int | float | str


class Checks(_Part):
    """Quality rules of one feature (``parity.monitoring.checks`` evaluates them).

    Ratios are fractions in [0, 1]; ``min``/``max`` bound every non-null value (inclusive);
    an outlier lies beyond ``outlier_k`` interquartile ranges outside [p25, p75]. ``min``,
    ``max`` and ``max_outlier_ratio`` apply to numbers only; ``allowed`` lists the only
    values a non-null value may take.
    """

    _label: ClassVar[str] = "checks"

    max_null_ratio: float | None = None
    min: float | None = None
    max: float | None = None
    allowed: list[CheckValue] | None = None
    min_unique: int | None = None
    max_outlier_ratio: float | None = None
    outlier_k: float = 1.5
    unique: bool = False

    @field_validator("max_null_ratio", "max_outlier_ratio")
    @classmethod
    def _ratio(cls, v: float | None) -> float | None:
        if v is not None and not 0 <= v <= 1:
            raise ValueError(f"a ratio is a fraction in [0, 1], got {v}")
        return v

    @field_validator("min_unique")
    @classmethod
    def _min_unique(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"min_unique must be at least 1, got {v}")
        return v

    @field_validator("outlier_k")
    @classmethod
    def _k(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"outlier_k must be positive, got {v}")
        return v

    @field_validator("allowed")
    @classmethod
    def _allowed(cls, v: list[CheckValue] | None) -> list[CheckValue] | None:
        if v is not None and not v:
            raise ValueError("allowed: list at least one value (or leave the rule out)")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> Checks:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    @property
    def rules(self) -> dict[str, Any]:
        """The rules set, by name (``outlier_k`` is a setting of ``max_outlier_ratio``)."""
        out = {k: v for k, v in self.model_dump().items() if k != "outlier_k"}
        return {k: v for k, v in out.items() if v is not None and v is not False}


class DriftPolicy(_Part):
    """When a feature counts as drifted, and how its distributions are binned.

    Numbers: two-sample KS (drifted when p < ``ks_pvalue``), PSI over ``bins``
    equal-frequency bins of the baseline (drifted when PSI > ``psi``), Jensen-Shannon
    distance (base 2, over the same bins) and the Wasserstein distance. Strings and bools:
    chi-squared (drifted when p < ``chi2_pvalue``), PSI and JS over the categories. Empty
    bins get ``epsilon`` before logs are taken. A threshold of None reports the figure
    without judging it.
    """

    _label: ClassVar[str] = "drift"

    ks_pvalue: float | None = 0.01
    psi: float | None = 0.2
    chi2_pvalue: float | None = 0.01
    js: float | None = 0.2
    wasserstein: float | None = None
    bins: int = 10
    epsilon: float = 1e-4

    @field_validator("bins")
    @classmethod
    def _bins(cls, v: int) -> int:
        if not 2 <= v <= 1000:
            raise ValueError(f"bins must be between 2 and 1000, got {v}")
        return v

    @field_validator("epsilon")
    @classmethod
    def _eps(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError(f"epsilon must be in (0, 1), got {v}")
        return v

    @field_validator("ks_pvalue", "chi2_pvalue")
    @classmethod
    def _p(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v < 1:
            raise ValueError(f"a p-value threshold is in (0, 1), got {v}")
        return v

    @field_validator("psi", "js", "wasserstein")
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError(f"a distance threshold must be positive, got {v}")
        return v


_NUMERIC_RULES = ("min", "max", "max_outlier_ratio")


Classification = Literal["pii", "pci", "confidential", "public"]
SENSITIVE = frozenset({"pii", "pci", "confidential"})
"""Classifications served masked to readers without ``read_pii``."""
LawfulBasis = Literal[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
]
"""The GDPR's six lawful bases for processing personal data (its article 6)."""
_TRUNCATE_RE = re.compile(r"^truncate:(\d{1,4})\Z")


class Field(_Part):
    """One feature column: its name, type and metadata.

    ``checks`` are its quality rules (``Checks``, or a dict of them); ``drift`` overrides
    the view's drift thresholds for this feature.

    Governance (``parity.governance``): ``classification`` is ``pii``, ``pci``,
    ``confidential`` or ``public`` (``pii=True`` is ``classification="pii"``); readers without
    ``read_pii`` get a classified field ``mask``-ed (``hash``, ``truncate:N`` keeps the first
    N characters, ``null``; the default for a classified field is ``null``). ``encrypt``
    stores the values encrypted at rest. ``lawful_basis`` and ``purposes`` say why personal
    data is held and what it may be served for. On an on-demand view's output,
    ``classification_reason`` explains a classification lower than its inputs'.
    """

    _label: ClassVar[str] = "field"
    _sparse: ClassVar[tuple[str, ...]] = (
        "checks",
        "drift",
        "classification",
        "mask",
        "encrypt",
        "lawful_basis",
        "purposes",
        "classification_reason",
    )

    name: Name
    dtype: DType
    description: str = ""
    tags: dict[str, str] = {}
    pii: bool = False
    checks: Checks | None = None
    drift: DriftPolicy | None = None
    classification: Classification | None = None
    mask: str | None = None
    encrypt: bool | None = None
    lawful_basis: LawfulBasis | None = None
    purposes: tuple[str, ...] | None = None
    classification_reason: str | None = None

    @field_validator("mask")
    @classmethod
    def _mask(cls, v: str | None) -> str | None:
        if v is None or v in ("hash", "null"):
            return v
        m = _TRUNCATE_RE.match(v)
        if m is None:
            raise ValueError(f"mask must be 'hash', 'null' or 'truncate:N' (N >= 0), got {v!r}")
        return v

    @field_validator("purposes", mode="before")
    @classmethod
    def _purposes(cls, v: Any) -> Any:
        if isinstance(v, str):
            return (v,)
        return v

    @model_validator(mode="before")
    @classmethod
    def _pii_is_a_classification(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("classification") == "pii" and "pii" not in data:
            return {**data, "pii": True}
        return data

    @model_validator(mode="after")
    def _classified(self) -> Field:
        if self.classification == "pii" and not self.pii:
            raise ValueError(f"classification 'pii' and pii=False contradict on {self.name!r}")
        if self.pii and self.classification not in (None, "pii"):
            raise ValueError(
                f"pii=True means classification 'pii'; {self.name!r} says "
                f"{self.classification!r} (drop one of the two)"
            )
        if self.purposes is not None:
            for purpose in self.purposes:
                if not NAME_RE.match(purpose):
                    raise ValueError(f"purposes: {purpose!r} is not a valid name")
        return self

    @property
    def sensitivity(self) -> str:
        """The field's classification, ``public`` when none is declared."""
        if self.classification is not None:
            return self.classification
        return "pii" if self.pii else "public"

    @property
    def classified(self) -> bool:
        """Whether readers without ``read_pii`` see this field masked."""
        return self.sensitivity in SENSITIVE

    @property
    def mask_rule(self) -> str:
        """The mask applied for readers without ``read_pii`` (``null`` unless declared)."""
        return self.mask or "null"

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_as_text(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): str(val) for k, val in v.items()}
        return v

    @field_validator("checks", mode="before")
    @classmethod
    def _checks(cls, v: Any) -> Any:
        return Checks(**v) if isinstance(v, dict) else v

    @field_validator("drift", mode="before")
    @classmethod
    def _drift(cls, v: Any) -> Any:
        return DriftPolicy(**v) if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _checks_fit_type(self) -> Field:
        if self.checks is None:
            return self
        kind = getattr(self.dtype, "kind", None)  # None: an Array
        for rule in _NUMERIC_RULES:
            if getattr(self.checks, rule) is not None and kind not in ("int", "float"):
                raise ValueError(
                    f"checks: {rule!r} applies to numbers, and {self.name!r} is {self.dtype}"
                )
        if kind is None and (self.checks.unique or self.checks.min_unique is not None):
            raise ValueError(  # lists cannot be hashed into distinct values
                f"checks: 'unique' and 'min_unique' apply to single values, and {self.name!r} "
                f"is {self.dtype}"
            )
        if self.checks.allowed is not None:
            if kind not in _ALLOWED_TYPES:
                raise ValueError(
                    f"checks: 'allowed' applies to numbers, strings and bools, and "
                    f"{self.name!r} is {self.dtype}"
                )
            for value in self.checks.allowed:
                if not isinstance(value, _ALLOWED_TYPES[kind]) or (
                    kind != "bool" and isinstance(value, bool)
                ):
                    raise ValueError(
                        f"checks: allowed value {value!r} is not a {self.dtype} "
                        f"(the type of {self.name!r})"
                    )
        return self


_ALLOWED_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "string": (str,),
    "bool": (bool,),
}


class Sla(_Part):
    """What the owners promise about a view: how fresh, how available."""

    _label: ClassVar[str] = "sla"
    _sparse: ClassVar[tuple[str, ...]] = ("grace",)

    freshness: Duration | None = None
    availability: str | None = None
    grace: Duration | None = None
    """How far past ``freshness`` a view may lag before it alerts (None: 2 minutes)."""


class FeatureView(_Sparse, Definition):
    """Features of one or more entities, read point-in-time correctly from ``source``.

    ``ttl`` bounds how old a value may be when it is joined or served: a row stamped ``t``
    sees source rows in ``[t - ttl, t]``; ``None`` means no lower bound. ``entities`` and
    ``source`` may be objects or names; the registry stores names.

    With ``aggregations``, the view's features are the aggregations' outputs over the
    source's events (see ``parity.definitions.aggregation``) and ``schema`` lists the source
    columns they read, with their types (``apply`` fills in the ones left out from the
    source). ``hop`` rounds every window's start down to a multiple of it.
    """

    kind: ClassVar[str] = "feature_view"
    _sparse: ClassVar[tuple[str, ...]] = ("on_check_failure", "drift", "retention")

    entities: list[Entity | Name]
    source: DataSource | Name
    schema_: list[Field] = []
    aggregations: list[Aggregation] = []
    hop: Duration | None = None
    ttl: Duration | None = None
    online: bool = True
    sla: Sla | None = None
    pii: bool = False
    on_check_failure: Literal["warn", "block"] | None = None
    """Whether writes (materialize, push, stream) evaluate the features' checks on each
    batch: ``warn`` logs the violations and writes, ``block`` refuses the batch and writes
    nothing of it; None (the default) does not check writes."""
    drift: DriftPolicy | None = None
    """The view's drift thresholds (a feature's own ``drift`` wins)."""
    retention: Duration | None = None
    """How long Parity keeps the view's offline-log and serving-log rows (``parity retention
    run`` deletes older ones); None: the source's retention, else forever."""

    def __init__(self, **data: Any) -> None:
        if "schema" in data:
            data["schema_"] = data.pop("schema")
        super().__init__(**data)

    @field_validator("entities", mode="before")
    @classmethod
    def _entities(cls, v: Any) -> Any:
        if isinstance(v, Entity | str):
            v = [v]
        if isinstance(v, list | tuple):
            if not v:
                raise ValueError("a feature view needs at least one entity")
            return list(v)
        return v

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return source_from_spec(v)
        return v

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and v <= timedelta(0):
            raise ValueError(f"ttl must be positive or None (no limit), got {v}")
        return v

    @field_validator("drift", mode="before")
    @classmethod
    def _drift(cls, v: Any) -> Any:
        return DriftPolicy(**v) if isinstance(v, dict) else v

    @field_validator("aggregations", mode="before")
    @classmethod
    def _aggregations(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            return [Aggregation(**a) if isinstance(a, dict) else a for a in v]
        return v

    @model_validator(mode="after")
    def _fields(self) -> FeatureView:
        names = [f.name for f in self.schema_]
        if not names and not self.aggregations:
            raise ValueError("schema: a feature view needs at least one field")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"schema: field names repeat: {dup}")
        if self.aggregations:
            self._check_aggregations()
        elif self.hop is not None:
            raise ValueError("hop: only a view with aggregations has a hop")
        ents = self.entity_names
        if len(set(ents)) != len(ents):
            raise ValueError(f"entities repeat: {ents}")
        keys = {k for e in self.entities if isinstance(e, Entity) for k in e.join_keys}
        clash = sorted(keys & set(self.feature_names if self.aggregations else names))
        if clash:
            raise ValueError(
                f"schema: {clash} are join keys of the view's entities; "
                "list only features in schema"
            )
        return self

    def _check_aggregations(self) -> None:
        outs = [a.output_name for a in self.aggregations]
        dup = sorted({n for n in outs if outs.count(n) > 1})
        if dup:
            raise ValueError(f"aggregations: output names repeat: {dup} (give each a name=)")
        if self.ttl is not None:
            raise ValueError("ttl: an aggregated view is bounded by its windows; drop the ttl")
        if self.hop is not None:
            us = self.hop // timedelta(microseconds=1)
            if us <= 0 or self.hop % timedelta(microseconds=1):
                raise ValueError(f"hop must be a positive whole number of µs, got {self.hop}")
        types = {f.name: f.dtype for f in self.schema_}
        for a in self.aggregations:
            if a.column is not None and a.column in types:
                for problem in a.problems(types[a.column]):
                    raise ValueError(problem)

    @property
    def is_aggregated(self) -> bool:
        return bool(self.aggregations)

    @property
    def hop_us(self) -> int | None:
        return None if self.hop is None else self.hop // timedelta(microseconds=1)

    @property
    def features(self) -> list[Field]:
        """The view's features: its schema, or for an aggregated view the aggregations'
        outputs (typed from the columns the schema declares)."""
        if not self.aggregations:
            return self.schema_
        types = {f.name: f.dtype for f in self.schema_}
        out = []
        for a in self.aggregations:
            if a.column is not None and a.column not in types:
                raise DefinitionError(
                    f"feature view {self.name!r}: column {a.column!r} of aggregation "
                    f"{a.output_name!r} is not in the schema (apply fills it from the source)"
                )
            dtype = a.output_type(types.get(a.column) if a.column else None)
            out.append(Field(name=a.output_name, dtype=dtype))
        return out

    def aggregation(self, output: str) -> Aggregation:
        for a in self.aggregations:
            if a.output_name == output:
                return a
        raise KeyError(output)

    @field_serializer("entities")
    def _ser_entities(self, v: list[Entity | str]) -> list[str]:
        return [e.name if isinstance(e, Entity) else e for e in v]

    @field_serializer("source")
    def _ser_source(self, v: DataSource | str) -> str:
        return v.name if isinstance(v, DataSource) else v

    @field_serializer("aggregations")
    def _ser_aggregations(self, v: list[Aggregation]) -> list[dict[str, Any]]:
        return [a.to_spec() for a in v]

    def to_spec(self) -> dict[str, Any]:
        spec = super().to_spec()
        spec["schema"] = spec.pop("schema_")
        if not self.aggregations:  # plain views keep their stored form (and content hash)
            spec.pop("aggregations", None)
            spec.pop("hop", None)
        return spec

    @property
    def schema(self) -> list[Field]:  # type: ignore[override]
        return self.schema_

    @property
    def entity_names(self) -> list[str]:
        return [e.name if isinstance(e, Entity) else e for e in self.entities]

    @property
    def source_name(self) -> str:
        return self.source.name if isinstance(self.source, DataSource) else self.source

    @property
    def feature_names(self) -> list[str]:
        if self.aggregations:
            return [a.output_name for a in self.aggregations]
        return [f.name for f in self.schema_]

    def field(self, name: str) -> Field:
        for f in self.features:
            if f.name == name:
                return f
        from parity.errors import RetrievalError

        raise RetrievalError(
            f"feature view {self.name!r} has no feature {name!r}; it has {self.feature_names}"
        )

    def __getitem__(self, features: list[str] | str) -> FeatureViewProjection:
        """``view[["f1", "f2"]]``: a selection of this view's features for a service."""
        if isinstance(features, str):
            features = [features]
        names = self.feature_names  # by name: an aggregated view's types may come at apply
        for f in features:
            if f not in names:
                self.field(f)  # raises, naming the view's features
        return FeatureViewProjection(view=self.name, features=tuple(features))


@dataclass(frozen=True)
class FeatureViewProjection:
    """Some (or, with ``features=None``, all) features of one view."""

    view: str
    features: tuple[str, ...] | None = None

    def to_spec(self) -> dict[str, Any]:
        return {"view": self.view, "features": list(self.features) if self.features else None}
