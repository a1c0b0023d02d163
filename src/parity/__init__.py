"""Parity: an open-source feature store. One definition, the same value in training and serving."""

from parity.config import RepoConfig
from parity.definitions import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileSource,
    PushSource,
    Sla,
)
from parity.errors import (
    ConcurrentApplyError,
    ConfigError,
    DataSourceError,
    DataSourceNotFoundError,
    DefinitionError,
    ObjectNotFoundError,
    OnlineStoreError,
    ParityError,
    RegistryError,
    RetrievalError,
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

__version__ = "0.1.0"

__all__ = [
    "Array",
    "Bool",
    "Bytes",
    "ConcurrentApplyError",
    "ConfigError",
    "DataSource",
    "DataSourceError",
    "DataSourceNotFoundError",
    "DefinitionError",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "ObjectNotFoundError",
    "OnlineStoreError",
    "ParityError",
    "PushSource",
    "RegistryError",
    "RepoConfig",
    "RetrievalError",
    "RetrievalJob",
    "Sla",
    "String",
    "Timestamp",
    "ValidationError",
    "ValueType",
    "__version__",
]
