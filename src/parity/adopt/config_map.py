"""``feature_store.yaml`` as ``parity.yaml``: project, registry, online and offline store.

The offline store is always DuckDB (Parity's engine, reading the same Parquet files); the
online store keeps its kind where Parity has it (SQLite, Redis); the registry keeps its
place (a local file becomes a SQLite file in the new repo, an SQL registry keeps its URL).
Whatever cannot be said in ``parity.yaml`` is a ``Problem`` naming the key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from parity.adopt.model import Problem
from parity.definitions.base import NAME_RE

__all__ = ["convert_config", "redis_url"]

_KIND = "feature_store.yaml"
_IGNORED_KEYS = {"project", "provider", "entity_key_serialization_version", "repo_path"}
_DEFAULT_REGISTRY = "data/registry.db"


def convert_config(config: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The ``parity.yaml`` mapping for a Feast config, and what could not be carried over."""
    problems: list[Problem] = []

    def note(key: str, reason: str) -> None:
        problems.append(Problem(_KIND, key, reason, dropped=False))

    project = str(config["project"])
    if not NAME_RE.match(project):
        fixed = re.sub(r"\W", "_", project)
        fixed = fixed if re.match(r"[A-Za-z_]", fixed) else f"p_{fixed}"
        note("project", f"{project!r} is not a Parity name; the project is {fixed!r}")
        project = fixed
    out: dict[str, Any] = {"project": project}
    out["registry"] = _registry(config.get("registry"), note)
    out["offline_store"] = {"type": "duckdb"}
    offline = config.get("offline_store")
    offline_type = offline.get("type") if isinstance(offline, dict) else offline
    if offline_type not in (None, "file", "duckdb", "dask"):
        note(
            "offline_store",
            f"type {offline_type!r} is not converted: Parity's offline store is DuckDB over "
            "the sources' files",
        )
    out["online_store"] = _online(config.get("online_store"), note)
    provider = config.get("provider", "local")
    if provider not in ("local", None):
        note("provider", f"provider {provider!r}: Parity has no providers; the stores above apply")
    engine = config.get("batch_engine")
    engine_type = engine.get("type") if isinstance(engine, dict) else engine
    if engine_type not in (None, "local"):
        note("batch_engine", f"{engine_type!r}: Parity materializes in process (DuckDB)")
    auth = config.get("auth")
    auth_type = auth.get("type") if isinstance(auth, dict) else auth
    if auth_type not in (None, "no_auth"):
        note("auth", f"{auth_type!r}: Parity's server has no authentication settings")
    for key in sorted(set(config) - _IGNORED_KEYS - {"registry", "offline_store"}):
        if key not in ("online_store", "batch_engine", "auth"):
            note(key, "not converted: Parity has no such setting")
    return out, problems


def _registry(value: Any, note: Any) -> Any:
    if value is None:
        return _DEFAULT_REGISTRY
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict):
        note("registry", f"cannot read {value!r}; using {_DEFAULT_REGISTRY}")
        return _DEFAULT_REGISTRY
    kind = value.get("registry_type", "file")
    path = str(value.get("path", "") or "")
    if kind == "sql":
        note(
            "registry",
            "the SQL registry's URL is kept; Parity keeps its own tables there (Feast's "
            "objects are not read from it)",
        )
        return {"url": path}
    if kind == "remote":
        note(
            "registry", f"a remote registry ({path}) cannot be converted; using {_DEFAULT_REGISTRY}"
        )
        return _DEFAULT_REGISTRY
    if kind != "file" or "://" in path:
        note(
            "registry",
            f"registry {path or kind!r} is not a local file; Parity's registry is SQLite or an "
            f"SQL database: using {_DEFAULT_REGISTRY}",
        )
        return _DEFAULT_REGISTRY
    if not path or Path(path).is_absolute():
        if path:
            note(
                "registry",
                f"{path} is Feast's registry file; the new repo's is {_DEFAULT_REGISTRY}",
            )
        return _DEFAULT_REGISTRY
    return path  # relative: a new SQLite file at the same place in the new repo


def _online(value: Any, note: Any) -> dict[str, Any]:
    default = {"type": "sqlite", "path": "data/online.db"}
    if value is None:
        return default
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        note("online_store", f"cannot read {value!r}; using SQLite at data/online.db")
        return default
    kind = value.get("type", "sqlite")
    if kind == "sqlite":
        path = str(value.get("path") or "data/online.db")
        if Path(path).is_absolute():
            note(
                "online_store", f"{path} is Feast's online store; the new repo's is data/online.db"
            )
            path = "data/online.db"
        return {"type": "sqlite", "path": path}
    if kind == "redis":
        url, cluster, dropped = redis_url(
            str(value.get("connection_string", "localhost:6379")),
            cluster=value.get("redis_type") == "redis_cluster",
        )
        for key in dropped:
            note("online_store", f"redis connection setting {key!r} is not converted")
        for key in ("key_ttl_seconds", "redis_type"):
            if key == "redis_type" and value.get(key) in (None, "redis", "redis_cluster"):
                continue
            if value.get(key) is not None:
                note("online_store", f"redis {key}: {value[key]!r} is not converted")
        out: dict[str, Any] = {"type": "redis", "url": url}
        if cluster:
            out["cluster"] = cluster
        return out
    note(
        "online_store", f"type {kind!r}: Parity's online stores are sqlite and redis; using sqlite"
    )
    return default


def _feast_value(text: str) -> str:
    """A connection-string value as Feast reads it: JSON text (``"a,b"``) is decoded."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else text


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def redis_url(connection: str, cluster: bool = False) -> tuple[str, bool | list[str], list[str]]:
    """Feast's ``host:port,db=1,password=x,ssl=true`` as a ``redis://`` URL, the cluster
    setting (a list of nodes when several are named) and the settings left out."""
    nodes = [c.strip() for c in connection.split(",") if c.strip() and "=" not in c]
    params = {}
    for part in connection.split(","):
        if "=" in part:
            key, _, val = part.partition("=")
            params[key.strip()] = _feast_value(val)
    first = nodes[0] if nodes else "localhost:6379"
    if ":" not in first:
        first += ":6379"
    for key in ("password", "username"):
        if key in params and not _utf8(params[key]):
            # Not text a URL (or Redis) can carry: a lone surrogate from a YAML escape.
            params[f"{key} (not UTF-8 text)"] = params.pop(key)
    ssl = params.pop("ssl", "false").lower() in ("true", "1", "yes")
    password = params.pop("password", None)
    username = params.pop("username", None)
    db = params.pop("db", "0")
    auth = ""
    if password is not None:
        auth = f"{quote(username or '', safe='')}:{quote(password, safe='')}@"
    url = f"{'rediss' if ssl else 'redis'}://{auth}{first}/{db}"
    params.pop("skip_full_coverage_check", None)
    out_cluster: bool | list[str] = False
    if cluster:
        out_cluster = nodes if len(nodes) > 1 else True
    return url, out_cluster, sorted(params)
