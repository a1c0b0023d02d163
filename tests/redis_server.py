"""A standalone ``redis-server`` of a test's own, on a free loopback port, that the test may
stop, restart on the same port, freeze (SIGSTOP) or make refuse writes: the real failures an
online store must report truthfully (down, back again, frozen, read-only).

Fails (never skips) when ``redis-server`` cannot start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
READY_SECONDS = 60.0
"""How long a start may take on a busy machine before the test fails with the log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``start()``/``stop()`` a redis-server on one port (kept across restarts)."""

    def __init__(self, directory: Path, port: int | None = None):
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, *extra: str) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not on PATH (Debian: apt-get install redis-server)"
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", str(self.directory),
                *extra]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_SECONDS
        while not _answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(
                    f"redis-server did not start on port {self.port}:\n"
                    + self.log.read_text(errors="replace")[-2000:]
                )
            time.sleep(0.02)
        return self

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing answers (a hung server)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.thaw()
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None
