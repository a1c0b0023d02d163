"""The feature repo's configuration, read from ``parity.yaml``.

::

    project: demo
    registry: data/registry.db          # a path = SQLite; or an SQLAlchemy URL
    offline_store: { type: duckdb }     # the default
    online_store:  { type: sqlite, path: data/online.db }
    server:        { errors: feast }        # parity serve's error shape (default: parity)
    serving_log:   { sample_rate: 0.01 }    # what parity serve served, for `parity skew`
    snapshots:     { path: data/snapshots }  # training snapshots' files (parity snapshot)
    monitoring:    { enabled: true, every: 60s, webhooks: [http://alerts.example/hook] }
    usage:         { enabled: true, flush_seconds: 5 }   # read counts (the default; parity.discovery)
    auth:          { enabled: true }        # roles and tokens; parity.governance.settings
    audit:         { enabled: true }        # also: encryption, governance, masking

Relative paths are resolved against the repo folder. Every failure is a ``ConfigError`` that
names the file and the key.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator
from pydantic import ValidationError as PydanticValidationError

from parity import plugins
from parity.definitions.base import NAME_RE, Duration
from parity.errors import ConfigError
from parity.governance.settings import (
    AuditConfig,
    AuthConfig,
    EncryptionConfig,
    GovernanceConfig,
    MaskingConfig,
)

CONFIG_FILE = "parity.yaml"


class RegistryConfig(BaseModel):
    """Where definitions live: ``path`` (SQLite file) or ``url`` (any SQLAlchemy URL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    url: str | None = None
    schema_name: str | None = Field(default=None, alias="schema")
    cache_ttl_seconds: float = Field(
        default=1.0,
        ge=0,
        description="how long a FeatureStore reuses its registry snapshot before re-checking",
    )

    def location(self) -> str:
        loc = self.url or self.path
        if not loc:
            raise ValueError("registry needs a path or a url")
        return loc


_BACKEND_KEYS: dict[str, plugins.Kind] = {
    "offline_store": "offline_engine",
    "online_store": "online_store",
}
"""parity.yaml's key for each kind of backend."""


def backend_config(key: str, value: Any, source: str = CONFIG_FILE) -> BaseModel:
    """The config of the backend ``value`` (a mapping with ``type``) names, validated by that
    backend's own config class; ``ConfigError`` naming ``source`` and the key."""
    kind = _BACKEND_KEYS[key]
    if isinstance(value, BaseModel):
        return value
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {key}: expected a mapping with a type, got {value!r}")
    name = value.get("type", plugins.DEFAULTS[kind])
    if not isinstance(name, str):
        raise ConfigError(f"{source}: {key}.type: expected a name, got {name!r}")
    found = plugins.backend(kind, name, where=f"{source}: {key}.type")
    try:
        return found.config.model_validate({**value, "type": name})
    except PydanticValidationError as exc:
        raise config_error(source, exc, prefix=f"{key}.") from None


class CacheConfig(BaseModel):
    """The feature server's in-process cache of online records (off unless configured)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttl_seconds: float = Field(gt=0, description="how long a cached record may be served")
    max_entries: int = Field(default=100_000, ge=1)


class ServerConfig(BaseModel):
    """Settings of ``parity serve`` kept with the repo (its flags override them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    errors: Literal["parity", "feast"] = Field(
        default="parity",
        description="error bodies: Parity's error object, or the incumbent SDK's shape",
    )


class ServingLogConfig(BaseModel):
    """The feature server's log of what it served (``parity.monitoring.serving_log``), which
    ``parity skew`` replays through the point-in-time join."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rate: float = Field(
        default=0.01, ge=0, le=1, description="the fraction of requests logged"
    )
    path: str = Field(
        default="data/serving_log", description="the folder the log's Parquet files go to"
    )
    flush_seconds: float = Field(
        default=5.0, gt=0, description="how often logged rows are written out at the latest"
    )
    max_rows_per_file: int = Field(default=100_000, ge=1)


class SnapshotsConfig(BaseModel):
    """Training snapshots (``parity.snapshots``): where their Parquet files are kept and how
    the source files they were made from are fingerprinted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(
        default="data/snapshots",
        description="the folder of the snapshots' content-addressed Parquet files",
    )
    fingerprint: Literal["stats", "content"] = Field(
        default="stats",
        description="stats: a Parquet file's size, time and footer (row-group statistics; "
        "CSV files are hashed whole); content: a SHA-256 of every file's bytes",
    )


class WebhookConfig(BaseModel):
    """Where an alert is sent: a JSON POST to ``url`` (with ``headers``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    headers: dict[str, str] = {}
    timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"a webhook url starts with http:// or https://, got {v!r}")
        return v


class MonitoringConfig(BaseModel):
    """What ``parity monitor run`` (and ``parity serve`` when ``enabled``) evaluates, how
    often, and where alerts go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=False, description="whether parity serve runs the monitor")
    every: Duration = Field(
        default=timedelta(seconds=60), description="how often the rules are evaluated"
    )
    webhooks: list[WebhookConfig] = []
    grace: Duration = Field(
        default=timedelta(minutes=2), description="how far past a view's freshness SLA it may lag"
    )
    drift_window: Duration | None = Field(
        default=None,
        description="drift of the last window against the one before (e.g. 1d); None: off",
    )
    checks_window: Duration | None = Field(
        default=timedelta(days=1),
        description="the window of source rows the checks run over; None: off",
    )

    @field_validator("webhooks", mode="before")
    @classmethod
    def _webhooks(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"url": w} if isinstance(w, str) else w for w in v]
        return v

    @field_validator("every")
    @classmethod
    def _every(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError(f"every must be positive, got {v}")
        return v


class UsageConfig(BaseModel):
    """Usage statistics (``parity.discovery.usage``): reads counted per feature and consumer
    in memory and written to the registry every ``flush_seconds`` and at close."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="whether reads are counted")
    flush_seconds: float = Field(
        default=5.0, gt=0, description="how often counted reads are written at the latest"
    )


class RepoConfig(BaseModel):
    """The whole of ``parity.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str
    registry: RegistryConfig = RegistryConfig(path="data/registry.db")
    offline_store: SerializeAsAny[BaseModel] = Field(
        default_factory=lambda: backend_config("offline_store", None), validate_default=False
    )
    cache: CacheConfig | None = None
    server: ServerConfig = ServerConfig()
    serving_log: ServingLogConfig | None = None
    snapshots: SnapshotsConfig = SnapshotsConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    usage: UsageConfig = UsageConfig()
    auth: AuthConfig = AuthConfig()
    audit: AuditConfig = AuditConfig()
    encryption: EncryptionConfig | None = None
    governance: GovernanceConfig = GovernanceConfig()
    masking: MaskingConfig = MaskingConfig()
    offline_log: str = Field(
        default="data/offline_log",
        description="where rows pushed to push sources' offline side are appended",
    )
    online_store: SerializeAsAny[BaseModel] = Field(
        default_factory=lambda: backend_config("online_store", None), validate_default=False
    )
    repo_path: Path = Path(".")

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                f"invalid project name {v!r}: letters, digits and underscores, "
                "starting with a letter"
            )
        return v

    @field_validator("offline_store", "online_store", mode="before")
    @classmethod
    def _backend(cls, v: Any, info: Any) -> Any:
        return backend_config(info.field_name, v, "RepoConfig")

    @field_validator("registry", mode="before")
    @classmethod
    def _registry(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"url": v} if "://" in v else {"path": v}
        return v

    @property
    def audit_enabled(self) -> bool:
        """Whether operations are recorded in the audit log (``audit.enabled``, else
        ``auth.enabled``)."""
        return self.auth.enabled if self.audit.enabled is None else self.audit.enabled

    def resolve(self, path: str | Path) -> Path:
        """A path from the config, relative to the repo folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.repo_path / p)

    @classmethod
    def load(cls, repo_path: str | Path) -> RepoConfig:
        """Read ``parity.yaml`` from a repo folder (or the file itself)."""
        path = Path(repo_path)
        file = path if path.is_file() else path / CONFIG_FILE
        if not file.exists():
            raise ConfigError(
                f"no {CONFIG_FILE} in {path.resolve()}: is this a feature repo? "
                "Create one with `parity init NAME`."
            )
        try:
            data = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: expected a mapping of keys, got {type(data).__name__}")
        return cls.from_dict(data, repo_path=file.parent.resolve(), source=str(file))

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, repo_path: Path, source: str = CONFIG_FILE
    ) -> RepoConfig:
        if "repo_path" in data:
            raise ConfigError(f"{source}: repo_path: not a config key (it is the folder)")
        data = dict(data)
        for key in _BACKEND_KEYS:  # each backend's own config class checks its part
            if key in data:
                data[key] = backend_config(key, data[key], source)
        try:
            return cls(**data, repo_path=repo_path)
        except PydanticValidationError as exc:
            raise config_error(source, exc) from None


def config_error(source: str, exc: PydanticValidationError, prefix: str = "") -> ConfigError:
    parts = []
    for err in exc.errors():
        loc = prefix + ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return ConfigError(f"{source}: " + "; ".join(parts))
