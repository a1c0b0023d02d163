"""The feature repo's configuration, read from ``parity.yaml``.

::

    project: demo
    registry: data/registry.db          # a path = SQLite; or an SQLAlchemy URL
    offline_store: { type: duckdb }     # the default
    online_store:  { type: sqlite, path: data/online.db }

Relative paths are resolved against the repo folder. Every failure is a ``ConfigError`` that
names the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from parity.definitions.base import NAME_RE
from parity.errors import ConfigError
from parity.offline.config import DuckDBOfflineConfig
from parity.online.config import RedisOnlineConfig, SqliteOnlineConfig

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


OfflineStoreConfig = Annotated[DuckDBOfflineConfig, Field(discriminator="type")]
OnlineStoreConfig = Annotated[SqliteOnlineConfig | RedisOnlineConfig, Field(discriminator="type")]


class CacheConfig(BaseModel):
    """The feature server's in-process cache of online records (off unless configured)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttl_seconds: float = Field(gt=0, description="how long a cached record may be served")
    max_entries: int = Field(default=100_000, ge=1)


class RepoConfig(BaseModel):
    """The whole of ``parity.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str
    registry: RegistryConfig = RegistryConfig(path="data/registry.db")
    offline_store: OfflineStoreConfig = DuckDBOfflineConfig()
    cache: CacheConfig | None = None
    offline_log: str = Field(
        default="data/offline_log",
        description="where rows pushed to push sources' offline side are appended",
    )
    online_store: OnlineStoreConfig = SqliteOnlineConfig()
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

    @field_validator("registry", mode="before")
    @classmethod
    def _registry(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"url": v} if "://" in v else {"path": v}
        return v

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
        try:
            return cls(**data, repo_path=repo_path)
        except PydanticValidationError as exc:
            raise config_error(source, exc) from None


def config_error(source: str, exc: PydanticValidationError) -> ConfigError:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("duckdb", "sqlite", "redis"))
        parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return ConfigError(f"{source}: " + "; ".join(parts))
