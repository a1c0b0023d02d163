"""Backends by ``type:`` name: online stores, offline engines and stream consumers, found
through entry points.

A backend is a ``Backend``: its kind, its ``type:`` name, its pydantic config class (with a
``type: Literal[name]`` field) and a factory. Backends are published under the entry-point
groups ``parity.online_stores``, ``parity.offline_engines`` and ``parity.stream_consumers``
(the way ibis finds its backends; a stream consumer's name is a stream source's broker and
its config the ``StreamSource`` itself); Parity's own are declared in its ``pyproject.toml`` like anyone else's::

    [project.entry-points."parity.online_stores"]
    redis = "parity.online.redis:BACKEND"

The object an entry point names must be light to import (the config class and a factory that
imports the store's code when called), so reading ``parity.yaml`` never imports Redis or
DuckDB. ``register(backend)`` adds one at run time (tests, notebooks). Missing third-party
packages are found before anything is imported and reported with the ``pip install`` to run.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from parity.errors import ConfigError

__all__ = [
    "DEFAULTS",
    "GROUPS",
    "Backend",
    "BackendContext",
    "Kind",
    "available",
    "backend",
    "create",
    "register",
    "require",
]

Kind = Literal["online_store", "offline_engine", "stream_consumer"]

GROUPS: dict[Kind, str] = {
    "online_store": "parity.online_stores",
    "offline_engine": "parity.offline_engines",
    "stream_consumer": "parity.stream_consumers",
}
"""The entry-point group of each kind of backend."""

DEFAULTS: dict[Kind, str] = {"online_store": "sqlite", "offline_engine": "duckdb"}
"""The embedded defaults, used when ``parity.yaml`` names no backend of a kind."""

DISTRIBUTION = "parity-feature-store"


LogReader = Callable[[str, Path], Any]
"""(push source name, log folder) -> a ``pyarrow.Table`` or None."""


@dataclass(frozen=True)
class BackendContext:
    """What a factory gets besides its config: the project and where the repo lives."""

    project: str
    repo_path: Path
    offline_log: Path
    """Where rows pushed to push sources' offline side are kept (``parity.offline.log``)."""
    log_reader: LogReader | None = None
    """How an engine reads a push source's log folder when it holds encrypted columns:
    ``log_reader(source_name, folder)`` -> the plaintext table, or None to read the files
    as they are (``parity.governance.sealing``)."""


@dataclass(frozen=True)
class Backend:
    """One pluggable backend.

    ``factory(config, context)`` builds it; ``requires`` are the importable modules it needs
    beyond Parity's core, installed by ``pip install 'parity-feature-store[<extra>]'``.
    """

    kind: Kind
    name: str
    config: type[BaseModel]
    factory: Callable[[Any, Any], Any]
    """``factory(config, context)``: ``context`` is a ``BackendContext`` for stores and
    engines, a ``parity.streams.ConsumerOptions`` for stream consumers."""
    extra: str | None = None
    requires: tuple[str, ...] = ()
    description: str = ""
    origin: str = field(default="", compare=False)
    """Where it came from: the entry point (``redis = parity.online.redis:BACKEND``)."""


_LOCK = threading.Lock()
_REGISTERED: dict[tuple[Kind, str], Backend] = {}
_LOADED: dict[tuple[Kind, str], Backend] = {}


def register(backend: Backend) -> Backend:
    """Make ``backend`` available by its name, ahead of any entry point of the same name."""
    if backend.kind not in GROUPS:
        raise ConfigError(f"backend {backend.name!r}: unknown kind {backend.kind!r}")
    with _LOCK:
        _REGISTERED[(backend.kind, backend.name)] = backend
    return backend


def unregister(kind: Kind, name: str) -> None:
    """Forget a backend added with ``register`` (tests)."""
    with _LOCK:
        _REGISTERED.pop((kind, name), None)


def available(kind: Kind) -> list[str]:
    """Every installed or registered ``type:`` name of a kind, sorted."""
    names = {ep.name for ep in entry_points(group=GROUPS[kind])}
    with _LOCK:
        names.update(n for k, n in _REGISTERED if k == kind)
    return sorted(names)


def _label(kind: Kind) -> str:
    return kind.replace("_", " ")


def backend(kind: Kind, name: str, *, where: str = "") -> Backend:
    """The backend of ``kind`` called ``name``; ``ConfigError`` naming ``where`` (the file and
    key) and the installed types when there is none."""
    with _LOCK:
        found = _REGISTERED.get((kind, name)) or _LOADED.get((kind, name))
    if found is not None:
        return found
    matches = [ep for ep in entry_points(group=GROUPS[kind]) if ep.name == name]
    if not matches:
        prefix = f"{where}: " if where else ""
        raise ConfigError(
            f"{prefix}unknown {_label(kind)} type {name!r}; installed: "
            f"{', '.join(available(kind)) or 'none'} (a backend is found through the "
            f"{GROUPS[kind]!r} entry-point group)"
        )
    ep = matches[0]
    try:
        obj = ep.load()
    except Exception as exc:
        raise ConfigError(
            f"{_label(kind)} type {name!r}: its entry point {ep.value!r} cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(obj, Backend) or obj.kind != kind or obj.name != name:
        raise ConfigError(
            f"{_label(kind)} type {name!r}: entry point {ep.value!r} is not a "
            f"parity.plugins.Backend of kind {kind!r} named {name!r}"
        )
    obj = Backend(**{**obj.__dict__, "origin": f"{ep.name} = {ep.value}"})
    with _LOCK:
        _LOADED[(kind, name)] = obj
    return obj


def require(modules: tuple[str, ...], extra: str | None, what: str) -> None:
    """``ConfigError`` naming the ``pip install`` to run when a module is not installed."""
    missing = [m for m in modules if not _installed(m)]
    if missing:
        pkg = f"'{DISTRIBUTION}[{extra}]'" if extra else " ".join(missing)
        raise ConfigError(
            f"{what} needs {', '.join(missing)}, which is not installed: run `pip install {pkg}`"
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a None in sys.modules
        return False


def create(kind: Kind, config: BaseModel, context: BackendContext) -> Any:
    """Build the backend ``config`` describes (its ``type`` names it)."""
    name = str(getattr(config, "type", ""))
    found = backend(kind, name)
    require(found.requires, found.extra, f"{_label(kind)} type {name!r}")
    return found.factory(config, context)
