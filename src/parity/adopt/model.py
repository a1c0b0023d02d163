"""What a Feast repo holds, read by either reader, before it is converted.

Both readers (``feast_reader`` with Feast's own repo parsing, ``static_reader`` parsing the
Python without running it) produce these plain values, so the converter sees one shape and
both paths give the same Parity repo. Types are Feast's type names as written in Feast
(``"Float32"``, ``"Array(Int64)"``, ``"Map"``); an entity's value type is Feast's
``ValueType`` member name (``"INT64"``), or None when not given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from parity.errors import ConfigError

__all__ = [
    "FeastEntity",
    "FeastField",
    "FeastFunction",
    "FeastImportError",
    "FeastOnDemandView",
    "FeastRepo",
    "FeastService",
    "FeastSource",
    "FeastView",
    "Problem",
]


class FeastImportError(ConfigError):
    """The Feast repo cannot be read, or the output cannot be written; nothing was written."""


@dataclass(frozen=True)
class Problem:
    """Something of the Feast repo that was not carried over, and why.

    ``dropped`` is True when the whole object was left out; False when the object was
    converted without the named part (a field of an unsupported type, a setting).
    """

    kind: str
    name: str
    reason: str
    dropped: bool = True


@dataclass(frozen=True)
class FeastField:
    name: str
    dtype: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeastEntity:
    name: str
    join_keys: list[str]
    value_type: str | None = None
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)


SourceKind = Literal["file", "push", "request", "other"]


@dataclass(frozen=True)
class FeastSource:
    """A data source. ``kind="other"`` is one Parity has no counterpart for; ``type_name``
    names its Feast class (``BigQuerySource``)."""

    name: str
    kind: SourceKind
    type_name: str
    path: str | None = None
    file_format: str | None = None
    timestamp_field: str = ""
    created_timestamp_column: str = ""
    field_mapping: dict[str, str] = field(default_factory=dict)
    batch_source: str | None = None
    """A push (or stream) source's batch source, by name."""
    schema: list[FeastField] = field(default_factory=list)
    """A request source's fields."""
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeastView:
    """A feature view; ``type_name`` is its Feast class (``StreamFeatureView``...)."""

    name: str
    type_name: str
    entities: list[str]
    source: str | None
    schema: list[FeastField]
    ttl: timedelta | None = None
    online: bool = True
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeastFunction:
    """An on-demand view's function: its ``def`` as written (without decorators), and the
    module-level imports of the file it was written in (other than Feast's)."""

    name: str
    source: str | None
    imports: list[str] = field(default_factory=list)
    file: str | None = None
    helpers: list[str] = field(default_factory=list)
    """Module-level names of its file (other than imports) the function uses: not carried."""


@dataclass(frozen=True)
class FeastOnDemandView:
    name: str
    sources: list[tuple[str, tuple[str, ...] | None]]
    """Views read, each with its selected features (None: all)."""
    request_sources: list[FeastSource]
    schema: list[FeastField]
    mode: str
    function: FeastFunction
    singleton: bool = False
    write_to_online_store: bool = False
    aggregations: bool = False
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeastService:
    name: str
    features: list[tuple[str, tuple[str, ...] | None]]
    logging: bool = False
    """Whether the service logs the features it serves (``logging_config``)."""
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class FeastRepo:
    """Everything read from one Feast repo, each kind in definition order."""

    path: Path
    config: dict[str, Any]
    reader: str
    entities: list[FeastEntity] = field(default_factory=list)
    sources: list[FeastSource] = field(default_factory=list)
    views: list[FeastView] = field(default_factory=list)
    on_demand_views: list[FeastOnDemandView] = field(default_factory=list)
    services: list[FeastService] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def project(self) -> str:
        return str(self.config.get("project", ""))

    def source(self, name: str | None) -> FeastSource | None:
        return next((s for s in self.sources if s.name == name), None)
