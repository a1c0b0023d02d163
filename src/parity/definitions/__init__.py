"""Definitions: the objects users declare and the registry stores."""

from __future__ import annotations

from typing import Any

from parity.definitions.aggregation import Aggregation
from parity.definitions.base import Definition, parse_duration, spec_hash
from parity.definitions.entity import Entity
from parity.definitions.feature_service import FeatureService
from parity.definitions.feature_view import (
    Checks,
    DriftPolicy,
    FeatureView,
    FeatureViewProjection,
    Field,
    Sla,
)
from parity.definitions.lifecycle import STATES, Lifecycle
from parity.definitions.model import Model
from parity.definitions.on_demand import (
    OnDemandFeatureView,
    RequestSource,
    on_demand_feature_view,
)
from parity.definitions.role import ACTIONS, Permission, Role
from parity.definitions.source import (
    DataSource,
    FileSource,
    PushSource,
    StreamSource,
    source_from_spec,
)

KINDS: dict[str, type[Definition]] = {
    "entity": Entity,
    "source": DataSource,
    "feature_view": FeatureView,
    "on_demand_feature_view": OnDemandFeatureView,
    "feature_service": FeatureService,
    "model": Model,
    "role": Role,
}
"""Every registered kind, in dependency order: an object only references earlier kinds
(a role names others only through globs, so it comes last)."""


def from_spec(kind: str, spec: dict[str, Any]) -> Definition:
    """Rebuild a definition from the spec the registry stored."""
    if kind == "source":
        return source_from_spec(spec)
    cls = KINDS.get(kind)
    if cls is None:
        from parity.errors import DefinitionError

        raise DefinitionError(f"unknown definition kind {kind!r}; known: {list(KINDS)}")
    return cls.from_spec(spec)


__all__ = [
    "ACTIONS",
    "KINDS",
    "STATES",
    "Aggregation",
    "Checks",
    "DataSource",
    "Definition",
    "DriftPolicy",
    "Entity",
    "FeatureService",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "Lifecycle",
    "Model",
    "OnDemandFeatureView",
    "Permission",
    "PushSource",
    "RequestSource",
    "Role",
    "Sla",
    "StreamSource",
    "from_spec",
    "on_demand_feature_view",
    "parse_duration",
    "source_from_spec",
    "spec_hash",
]
