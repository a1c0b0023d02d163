"""Running the server: uvicorn (uvloop, httptools) with N worker processes.

Settings reach the workers through the ``PARITY_SERVER_SETTINGS`` environment variable and
the app factory ``app_from_env``, so every worker builds its own FeatureStore (its own
connections) after it started. SIGTERM or Ctrl-C: uvicorn stops accepting, lets in-flight
requests finish (up to ``graceful_timeout`` seconds), then the app's shutdown waits for
accepted pushes and materializations and closes the store.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from parity.config import RepoConfig
from parity.server.app import DEFAULT_MAX_BODY, AppSettings, ParityApp, create_app
from parity.server.cache import CacheSettings
from parity.server.protocol import CoalescingHttpToolsProtocol

SETTINGS_ENV = "PARITY_SERVER_SETTINGS"


@dataclass(frozen=True)
class ServerSettings:
    """Everything ``parity serve`` takes. ``cache_ttl_seconds`` set: overrides parity.yaml's
    ``cache`` (None: use parity.yaml's, which is off when absent; 0: off)."""

    repo: str = "."
    host: str = "127.0.0.1"
    port: int = 6566
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY
    cache_ttl_seconds: float | None = None
    cache_max_entries: int = 100_000
    graceful_timeout: float = 30.0
    log_level: str = "info"
    access_log: bool = False


def build_app(settings: ServerSettings) -> ParityApp:
    cache: CacheSettings | Literal[False] | None = None  # None: parity.yaml decides
    if settings.cache_ttl_seconds is not None:
        cache = False
        if settings.cache_ttl_seconds > 0:
            cache = CacheSettings(settings.cache_ttl_seconds, settings.cache_max_entries)
    return create_app(
        settings.repo,
        settings=AppSettings(max_body_bytes=settings.max_body_bytes),
        cache=cache,
    )


def app_from_env() -> ParityApp:
    """uvicorn's app factory, called in each worker process."""
    return build_app(ServerSettings(**json.loads(os.environ[SETTINGS_ENV])))


def log_config(level: str) -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["formatters"]["default"]["fmt"] = "%(asctime)s %(levelprefix)s %(message)s"
    cfg["loggers"]["parity.server"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return cfg


@contextlib.contextmanager
def _quiet_signals() -> Iterator[None]:
    """After its graceful shutdown uvicorn raises the signal again, to the handler it found;
    a no-op one here makes SIGTERM / Ctrl-C end ``parity serve`` with status 0."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(settings: ServerSettings) -> None:
    """Serve the repo until SIGTERM / Ctrl-C. A bad repo fails here, before binding."""
    import uvicorn

    config = RepoConfig.load(settings.repo)
    settings = ServerSettings(**{**asdict(settings), "repo": str(config.repo_path)})
    os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))
    metrics_dir = None
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its numbers here; /metrics sums them (prometheus-client).
        metrics_dir = tempfile.mkdtemp(prefix="parity-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    with _quiet_signals():
        try:
            uvicorn.run(
                "parity.server.run:app_from_env",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                loop="uvloop",
                http=CoalescingHttpToolsProtocol,
                lifespan="on",
                access_log=settings.access_log,
                log_level=settings.log_level,
                log_config=log_config(settings.log_level),
                timeout_graceful_shutdown=math.ceil(settings.graceful_timeout),
                server_header=False,
            )
        finally:
            if metrics_dir is not None:
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
                shutil.rmtree(metrics_dir, ignore_errors=True)
