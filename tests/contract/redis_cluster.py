"""A real Redis Cluster on loopback ports for tests: ``start_cluster(tmp_dir)``.

Starts ``nodes`` primaries (``redis-server --cluster-enabled yes``, no persistence, no
replicas), joins them with ``redis-cli --cluster create`` and waits until every node reports
``cluster_state:ok``. Ports are picked by binding port 0, so several test sessions (xdist
workers) can each run their own cluster; a port taken between the pick and the start is
retried. When ``redis-server`` cannot start this raises ``ClusterStartError`` (tests fail,
never skip). Stop with ``handle.stop()`` or use the handle as a context manager; processes
still running at interpreter exit are stopped too.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
_START_TRIES = 5
_READY_SECONDS = 30.0


class ClusterStartError(RuntimeError):
    """The local Redis Cluster could not be started; the message says why."""


@dataclass
class ClusterHandle:
    """Running cluster nodes; ``nodes`` are ``"127.0.0.1:port"`` strings."""

    nodes: list[str]
    directory: Path
    _processes: list[subprocess.Popen] = field(default_factory=list, repr=False)

    @property
    def ports(self) -> list[int]:
        return [int(n.rsplit(":", 1)[1]) for n in self.nodes]

    def stop(self) -> None:
        """Terminate every node (SIGTERM, then SIGKILL after 10 s); safe to call twice."""
        for proc in self._processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._processes.clear()

    def __enter__(self) -> ClusterHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_cluster(tmp_dir: str | Path, nodes: int = 3) -> ClusterHandle:
    """Start a ``nodes``-primary cluster with its files in ``tmp_dir``; wait until it serves."""
    if nodes < 3:
        raise ValueError("redis-cli --cluster create needs at least 3 primaries")
    server, cli = _binary("redis-server"), _binary("redis-cli")
    directory = Path(tmp_dir)
    directory.mkdir(parents=True, exist_ok=True)
    handle = ClusterHandle(nodes=[], directory=directory)
    atexit.register(handle.stop)
    try:
        for _ in range(nodes):
            port, proc = _start_node(server, directory)
            handle._processes.append(proc)
            handle.nodes.append(f"{HOST}:{port}")
        _create(cli, handle)
        _wait_ok(cli, handle)
    except BaseException:
        handle.stop()
        raise
    return handle


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ClusterStartError(
            f"{name} is not on PATH; the Redis tests need a local Redis "
            "(Debian: apt-get install redis-server)"
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _start_node(server: str, directory: Path) -> tuple[int, subprocess.Popen]:
    """One cluster-enabled redis-server on free ports (client and bus); retries collisions."""
    last_log = ""
    for _ in range(_START_TRIES):
        port, bus = _free_port(), _free_port()
        if port == bus:
            continue
        log = directory / f"redis-{port}.log"
        args = [
            server,
            "--port", str(port),
            "--cluster-enabled", "yes",
            "--cluster-port", str(bus),
            "--cluster-config-file", f"nodes-{port}.conf",
            "--cluster-node-timeout", "5000",
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(directory),
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _READY_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _answers(port):
                return port, proc
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        last_log = log.read_text(errors="replace")
        if "Address already in use" not in last_log:
            break
    tail = "\n".join(last_log.strip().splitlines()[-15:])
    raise ClusterStartError(f"redis-server did not start a cluster node; its log ends:\n{tail}")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _create(cli: str, handle: ClusterHandle) -> None:
    args = [cli, "--cluster", "create", *handle.nodes, "--cluster-replicas", "0"]
    done = subprocess.run(
        [*args, "--cluster-yes"], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise ClusterStartError(
            f"redis-cli --cluster create failed (exit {done.returncode}):\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


def _wait_ok(cli: str, handle: ClusterHandle) -> None:
    deadline = time.monotonic() + _READY_SECONDS
    waiting = list(handle.ports)
    info = ""
    while waiting and time.monotonic() < deadline:
        port = waiting[0]
        info = subprocess.run(
            [cli, "-h", HOST, "-p", str(port), "cluster", "info"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        if "cluster_state:ok" in info:
            waiting.pop(0)
        else:
            time.sleep(0.05)
    if waiting:
        raise ClusterStartError(
            f"cluster node {HOST}:{waiting[0]} is not ok after {_READY_SECONDS:.0f} s:\n{info}"
        )
