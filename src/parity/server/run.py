"""Running the server: uvicorn (uvloop, httptools) with N worker processes.

Settings reach the workers through the ``PARITY_SERVER_SETTINGS`` environment variable and
the app factory ``app_from_env``, so every worker builds its own FeatureStore (its own
connections) after it started. SIGTERM or Ctrl-C: the server accepts the connections
waiting in its backlog, stops listening (new connections are refused), answers every request
it had received, pipelined and unread ones included (``parity.server.drain``; up to
``graceful_timeout`` seconds), then the app's shutdown waits for accepted pushes and
materializations and closes the store; the process exits 0. With workers, the supervisor
stops listening too, passes the signal to every worker and waits for them.

With ``workers > 1`` the workers are supervised by ``WorkerSupervisor``: uvicorn's, except that
a worker still starting is given ``worker_start_timeout`` seconds instead of uvicorn's 5 s
health check (which killed workers that were still importing on a busy machine).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process, logger

from parity.config import RepoConfig
from parity.server.app import DEFAULT_MAX_BODY, AppSettings, ParityApp, create_app
from parity.server.cache import CacheSettings
from parity.server.drain import DrainingHttpToolsProtocol, DrainingProcess, DrainingServer
from parity.server.handlers import DEFAULT_LARGE_READ_ROWS, DEFAULT_MAX_ENTITY_ROWS

if TYPE_CHECKING:
    from socket import socket

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
    max_entity_rows: int = DEFAULT_MAX_ENTITY_ROWS
    large_read_rows: int = DEFAULT_LARGE_READ_ROWS
    cache_ttl_seconds: float | None = None
    cache_max_entries: int = 100_000
    graceful_timeout: float = 30.0
    log_level: str = "info"
    access_log: bool = False
    errors: str | None = None
    """Error bodies: ``parity`` or ``feast`` (``parity.server.feast_errors``); None:
    parity.yaml's ``server.errors``."""
    worker_start_timeout: float = 120.0
    """With ``workers > 1``: seconds a worker may take from its spawn to serving; past them
    it counts as hung and is killed and replaced."""


def build_app(settings: ServerSettings) -> ParityApp:
    cache: CacheSettings | Literal[False] | None = None  # None: parity.yaml decides
    if settings.cache_ttl_seconds is not None:
        cache = False
        if settings.cache_ttl_seconds > 0:
            cache = CacheSettings(settings.cache_ttl_seconds, settings.cache_max_entries)
    return create_app(
        settings.repo,
        settings=AppSettings(
            max_body_bytes=settings.max_body_bytes,
            max_entity_rows=settings.max_entity_rows,
            large_read_rows=settings.large_read_rows,
            errors=settings.errors,
        ),
        cache=cache,
    )


def app_from_env() -> ParityApp:
    """uvicorn's app factory, called in each worker process."""
    # A large read on the reader thread and the loop's thread contend for the GIL; a 1 ms
    # switch interval (Python's is 5 ms) bounds the loop's wait for it. With one thread
    # running, as on the 1-row hot path, it changes nothing.
    sys.setswitchinterval(0.001)
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


@dataclass
class _Start:
    """A worker that has not said it serves yet: its deadline, and whether it has a ping of
    ours to answer."""

    deadline: float
    pinged: bool = False


class WorkerSupervisor(Multiprocess):
    """uvicorn's worker supervisor, except for workers that have not started serving yet.

    uvicorn pings every worker each half second and kills one that does not answer within
    ``timeout_worker_healthcheck`` (5 s). A spawned worker first imports Parity (its
    ``__main__`` and the protocol class are unpickled) and only then starts the thread that
    answers pings, so on a busy machine uvicorn killed workers that were still importing, and
    their replacements the same way. Here a starting worker is checked without waiting: it
    must be alive, and it is sent one ping at a time, whose answer is read once there; it
    serves when it answers "started". One not serving ``start_timeout`` seconds after its
    spawn counts as hung: killed and replaced. One that dies while starting is handled as
    uvicorn does (replaced; everything stops if it exited with uvicorn's start-up failure
    status). A serving worker gets uvicorn's own check: killed and replaced when it dies or
    does not answer a ping within 5 s. (SIGHUP's rolling restart is uvicorn's, unchanged.)
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket], start_timeout: float):
        super().__init__(config, sockets)
        self.start_timeout = start_timeout
        self.starting: dict[Process, _Start] = {}

    def spawn(self) -> Process:
        process = DrainingProcess(self.config, self.sockets)
        process.start()
        self.starting[process] = _Start(time.monotonic() + self.start_timeout)
        return process

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self.spawn())

    def handle_ttin(self) -> None:
        logger.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.processes.append(self.spawn())

    def starts_well(self, process: Process) -> bool:
        """A starting worker: False if it died or is past its time; True otherwise (it is
        then either still starting or, having answered "started", serving)."""
        start = self.starting[process]
        if not process.process.is_alive():
            return False
        try:
            if not start.pinged:
                process.parent_conn.send(b"ping")
                start.pinged = True
            if process.parent_conn.poll(0):
                start.pinged = False
                if process.parent_conn.recv() is True:
                    del self.starting[process]
                    return True
        except (OSError, EOFError, pickle.UnpicklingError):
            return False
        if time.monotonic() < start.deadline:
            return True
        logger.error(
            f"Child process [{process.pid}] did not start serving within "
            f"{self.start_timeout:g} s; killing it"
        )
        return False

    def terminate_all(self) -> None:
        """Stop listening here first (the workers hold the socket too and stop listening as
        they drain), then pass the signal on; ``run`` then waits for every worker."""
        for sock in self.sockets:
            sock.close()
        super().terminate_all()

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process in self.starting:
                if self.starts_well(process):
                    continue
                del self.starting[process]
            elif process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logger.error(
                    f"Child process [{process.pid}] failed to start, stopping the parent process."
                )
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info(f"Child process [{process.pid}] died")
            self.processes[idx] = self.spawn()


def serve(settings: ServerSettings) -> None:
    """Serve the repo until SIGTERM / Ctrl-C. A bad repo fails here, before binding."""
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
            options: dict[str, Any] = dict(
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                loop="uvloop",
                http=DrainingHttpToolsProtocol,
                lifespan="on",
                access_log=settings.access_log,
                log_level=settings.log_level,
                log_config=log_config(settings.log_level),
                timeout_graceful_shutdown=math.ceil(settings.graceful_timeout),
                server_header=False,
            )
            app = "parity.server.run:app_from_env"
            if settings.workers > 1:  # what uvicorn.run does, with our supervisor
                uv_config = uvicorn.Config(app, **options)
                sockets = [uv_config.bind_socket()]
                WorkerSupervisor(uv_config, sockets, settings.worker_start_timeout).run()
            else:  # what uvicorn.run does, with our server
                server = DrainingServer(uvicorn.Config(app, **options))
                server.run()
                if not server.started:
                    raise SystemExit(STARTUP_FAILURE)
        finally:
            if metrics_dir is not None:
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
                shutil.rmtree(metrics_dir, ignore_errors=True)
