"""Parity: an open-source feature store. One definition, the same value in training and serving.

Every public name is importable from here; each is loaded on first use, so ``import parity``
imports no store, engine, server or dataframe library (``parity --help`` stays fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_WHERE = {
    "parity.config": ["RepoConfig"],
    "parity.definitions": [
        "Aggregation",
        "Checks",
        "DataSource",
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
        "on_demand_feature_view",
    ],
    "parity.errors": [
        "AccessError",
        "AuditError",
        "AuthenticationError",
        "ConcurrentApplyError",
        "ConfigError",
        "DataSourceError",
        "DataSourceNotFoundError",
        "DefinitionError",
        "EncryptionError",
        "GovernanceError",
        "LifecycleError",
        "MonitoringError",
        "ObjectNotFoundError",
        "OnlineStoreError",
        "ParityError",
        "PartialWriteError",
        "PermissionDeniedError",
        "RegistryError",
        "RequestDataError",
        "RetrievalError",
        "SnapshotError",
        "TransformationError",
        "ValidationError",
    ],
    "parity.offline.base": ["RetrievalJob"],
    "parity.store": ["FeatureStore"],
    "parity.types": [
        "Array",
        "Bool",
        "Bytes",
        "Float32",
        "Float64",
        "Int32",
        "Int64",
        "String",
        "Timestamp",
        "ValueType",
    ],
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'parity' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])


if TYPE_CHECKING:
    from parity.config import RepoConfig
    from parity.definitions import (
        Aggregation,
        Checks,
        DataSource,
        DriftPolicy,
        Entity,
        FeatureService,
        FeatureView,
        FeatureViewProjection,
        Field,
        FileSource,
        Lifecycle,
        Model,
        OnDemandFeatureView,
        Permission,
        PushSource,
        RequestSource,
        Role,
        Sla,
        StreamSource,
        on_demand_feature_view,
    )
    from parity.errors import (
        AccessError,
        AuditError,
        AuthenticationError,
        ConcurrentApplyError,
        ConfigError,
        DataSourceError,
        DataSourceNotFoundError,
        DefinitionError,
        EncryptionError,
        GovernanceError,
        LifecycleError,
        MonitoringError,
        ObjectNotFoundError,
        OnlineStoreError,
        ParityError,
        PartialWriteError,
        PermissionDeniedError,
        RegistryError,
        RequestDataError,
        RetrievalError,
        SnapshotError,
        TransformationError,
        ValidationError,
    )
    from parity.offline.base import RetrievalJob
    from parity.store import FeatureStore
    from parity.types import (
        Array,
        Bool,
        Bytes,
        Float32,
        Float64,
        Int32,
        Int64,
        String,
        Timestamp,
        ValueType,
    )

__all__ = [
    "AccessError",
    "Aggregation",
    "Array",
    "AuditError",
    "AuthenticationError",
    "Bool",
    "Bytes",
    "Checks",
    "ConcurrentApplyError",
    "ConfigError",
    "DataSource",
    "DataSourceError",
    "DataSourceNotFoundError",
    "DefinitionError",
    "DriftPolicy",
    "EncryptionError",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "Float32",
    "Float64",
    "GovernanceError",
    "Int32",
    "Int64",
    "Lifecycle",
    "LifecycleError",
    "Model",
    "MonitoringError",
    "ObjectNotFoundError",
    "OnDemandFeatureView",
    "OnlineStoreError",
    "ParityError",
    "PartialWriteError",
    "Permission",
    "PermissionDeniedError",
    "PushSource",
    "RegistryError",
    "RepoConfig",
    "RequestDataError",
    "RequestSource",
    "RetrievalError",
    "RetrievalJob",
    "Role",
    "Sla",
    "SnapshotError",
    "StreamSource",
    "String",
    "Timestamp",
    "TransformationError",
    "ValidationError",
    "ValueType",
    "__version__",
    "on_demand_feature_view",
]
