"""Backends plug in by ``type:`` name: entry points, run-time registration, clear errors for an
unknown type or a missing extra, and each backend's own config checked at load."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from parity import ConfigError, FeatureStore, RepoConfig, plugins
from parity.online.sqlite import SqliteOnlineConfig
from parity.plugins import Backend, BackendContext

ROOT = Path(__file__).parents[2]


def test_builtin_backends_come_from_entry_points() -> None:
    assert {"sqlite", "redis"} <= set(plugins.available("online_store"))
    assert "duckdb" in plugins.available("offline_engine")
    redis = plugins.backend("online_store", "redis")
    assert redis.origin == "redis = parity.online.redis:BACKEND"
    assert redis.extra == "redis" and "redis" in redis.requires


def test_config_is_validated_by_the_backends_own_class(tmp_path: Path) -> None:
    cfg = RepoConfig.from_dict({"project": "p"}, repo_path=tmp_path)
    assert isinstance(cfg.online_store, SqliteOnlineConfig)
    assert cfg.offline_store.type == "duckdb"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"parity\.yaml: online_store\.mmap_size_mb: "):
        RepoConfig.from_dict(
            {"project": "p", "online_store": {"type": "sqlite", "mmap_size_mb": -1}},
            repo_path=tmp_path,
        )
    with pytest.raises(ConfigError, match=r"online_store\.colour: Extra inputs"):
        RepoConfig.from_dict(
            {"project": "p", "online_store": {"type": "redis", "colour": "red"}},
            repo_path=tmp_path,
        )


def test_unknown_type_names_the_file_the_key_and_the_installed_types(tmp_path: Path) -> None:
    (tmp_path / "parity.yaml").write_text("project: p\nonline_store: {type: cassandra}\n")
    with pytest.raises(ConfigError) as info:
        RepoConfig.load(tmp_path)
    message = str(info.value)
    assert (
        f"{tmp_path / 'parity.yaml'}: online_store.type: unknown online store type 'cassandra'"
        in message
    )
    assert "redis" in message and "sqlite" in message
    (tmp_path / "parity.yaml").write_text("project: p\noffline_store: {type: snowflake}\n")
    with pytest.raises(
        ConfigError,
        match=r"offline_store\.type: unknown offline engine type 'snowflake'; installed: duckdb",
    ):
        RepoConfig.load(tmp_path)


class _ListConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["listing"] = "listing"


def test_a_registered_backend_is_used_and_a_missing_extra_is_named(tmp_path: Path) -> None:
    built: list[Any] = []

    def factory(config: _ListConfig, context: BackendContext) -> Any:
        built.append((config, context.project))
        from parity.online.sqlite.store import SqliteOnlineStore

        return SqliteOnlineStore(SqliteOnlineConfig(), context.project, context.repo_path)

    plugins.register(Backend("online_store", "listing", _ListConfig, factory))
    try:
        (tmp_path / "parity.yaml").write_text("project: p\nonline_store: {type: listing}\n")
        store = FeatureStore(tmp_path)
        store.online.setup([])
        assert built == [(_ListConfig(), "p")]
        store.close()
        plugins.register(
            Backend(
                "online_store",
                "listing",
                _ListConfig,
                factory,
                extra="listing",
                requires=("parity_no_such_module",),
            )
        )
        with pytest.raises(ConfigError, match=r"pip install 'parity-feature-store\[listing\]'"):
            FeatureStore(tmp_path).online  # noqa: B018
    finally:
        plugins.unregister("online_store", "listing")


def test_a_missing_redis_extra_is_a_clear_error(tmp_path: Path) -> None:
    """In a fresh process where redis-py cannot be imported (as without the extra)."""
    (tmp_path / "parity.yaml").write_text("project: p\nonline_store: {type: redis}\n")
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["redis"] = None  # what a missing package looks like to import
        from parity import FeatureStore, ConfigError
        try:
            FeatureStore({str(tmp_path)!r}).online
        except ConfigError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "online store type 'redis' needs redis" in out.stdout
    assert "pip install 'parity-feature-store[redis]'" in out.stdout


def test_entry_points_of_other_distributions_are_found(memory_store_installed: str) -> None:
    assert "memory" in plugins.available("online_store")
    found = plugins.backend("online_store", "memory")
    assert found.origin == "memory = parity_memory_store:BACKEND"
    assert found.factory.__module__ == "parity_memory_store"


def test_every_extra_is_declared() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    for extra in ("redis", "postgres", "server", "polars", "all"):
        assert f"\n{extra} = [" in text, extra
    for name in plugins.available("online_store") + plugins.available("offline_engine"):
        kind = "online_store" if name in plugins.available("online_store") else "offline_engine"
        b = plugins.backend(kind, name)  # type: ignore[arg-type]
        assert b.extra is None or f"\n{b.extra} = [" in text, (name, b.extra)
