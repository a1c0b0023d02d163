"""SIGTERM while requests wait behind a slow one: every request received is answered.

The slow request is honest: a test-only ``sitecustomize`` makes ``GET /feature-views/{name}``
hold the event loop until the test creates a gate file (as a large read held it), so the
requests sent meanwhile are received by the machine but not yet read by the server: a
second request on a keep-alive connection, new connections still in the listen backlog, and
requests pipelined on one connection. Then SIGTERM, then the gate: each must get its
complete answer, a new connection must be refused, and the server must exit 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path

import orjson
import psutil
import pytest
from tests.integration.test_server import (
    DRIVERS,
    Server,
    make_repo,
    push_rows,
    wait_for,
    workers_of,
)

from parity import FeatureStore

HOLD = """
import os, pathlib, time

hold = os.environ.get("PARITY_TEST_HOLD_DIR")
if hold:
    import parity.server.handlers as handlers

    original = handlers.Handlers.feature_view

    def feature_view(self, name):
        # on the event loop: nothing else runs in this worker until the gate opens
        folder = pathlib.Path(hold)
        (folder / f"entered-{os.getpid()}").touch()
        while not (folder / "gate").exists():
            time.sleep(0.02)
        return original(self, name)

    handlers.Handlers.feature_view = feature_view
"""


def hold_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = tmp_path / "hold_site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HOLD)
    hold = tmp_path / "hold"
    hold.mkdir()
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PARITY_TEST_HOLD_DIR": str(hold)}, hold


def request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """``count`` complete HTTP/1.1 responses (status, body) from ``sock``, in order; fewer
    if the server closes the connection first."""
    data = b""
    out: list[tuple[int, bytes]] = []
    while len(out) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].decode("latin-1").split("\r\n")
            length = next(
                int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:")
            )
            if len(data) >= end + 4 + length:
                out.append((int(head[0].split()[1]), data[end + 4 : end + 4 + length]))
                data = data[end + 4 + length :]
                continue
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        data += chunk
    return out


def sigterm_pending(pid: int) -> bool:
    """Whether SIGTERM is still pending in any thread of ``pid`` (its handler not run)."""
    bit = 1 << (signal.SIGTERM - 1)
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & bit:
                    return True
    return False


def established(port: int, socks: list[socket.socket]) -> bool:
    """The machine has accepted each of ``socks`` on the server's side (listen backlog
    included) and holds all that was sent on it: nothing left in the client's send queue."""
    mine = {s.getsockname()[1] for s in socks}
    seen = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
        lport, rport = int(local.split(":")[1], 16), int(remote.split(":")[1], 16)
        delivered = int(queues.split(":")[0], 16) == 0  # nothing left in the tx queue
        if state == "01" and lport in mine and rport == port and delivered:
            seen.add(lport)
    return seen == mine


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_requests_waiting_behind_a_slow_one(tmp_path, workers):
    repo = make_repo(tmp_path / "repo", None)
    env, hold = hold_env(tmp_path)
    srv = Server(repo, "--workers", str(workers), env=env)
    try:
        port = srv.port
        if workers > 1:
            wait_for(
                lambda: srv.output().count("Application startup complete") == workers,
                "every worker started",
                srv.output,
            )
        read = orjson.dumps(
            {"features": ["driver_live:conv_rate"], "entities": {"driver_id": DRIVERS}}
        )
        push = orjson.dumps({"push_source_name": "driver_live_push", "df": push_rows([1001], 0.7)})

        # one keep-alive connection per worker, each answered once (now idle in the server)
        idle: list[socket.socket] = []
        while len(idle) < 4:
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            sock.sendall(request("GET", "/health"))
            assert read_responses(sock, 1) == [(200, b'{"status":"ok"}')]
            idle.append(sock)
        # the slow request: it holds the loop of the worker that takes it (with several
        # workers, the requests below reach either; those on the held one wait)
        slow = socket.create_connection(("127.0.0.1", port), timeout=60)
        slow.sendall(request("GET", "/feature-views/driver_live"))
        wait_for(lambda: any(hold.glob("entered-*")), "a worker is held", srv.output)
        pids = workers_of(srv.proc) if workers > 1 else {srv.proc.pid}
        # waiting behind them: a second request on each idle connection, new connections
        # (in the backlog), and three requests pipelined on one connection
        for sock in idle:
            sock.sendall(request("POST", "/get-online-features", read))
        fresh = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(4)]
        for sock in fresh:
            sock.sendall(request("POST", "/get-online-features", read))
        piped = socket.create_connection(("127.0.0.1", port), timeout=60)
        piped.sendall(
            request("POST", "/push", push)
            + request("POST", "/get-online-features", read)
            + request("GET", "/health")
        )
        everyone = [*idle, *fresh, piped]
        wait_for(lambda: established(port, everyone), "every request is received", srv.output)

        srv.proc.send_signal(signal.SIGTERM)
        for pid in pids:  # the workers' handlers have run (the supervisor passed it on)
            wait_for(lambda p=pid: not sigterm_pending(p), f"SIGTERM handled by {pid}")
        if workers > 1:
            wait_for(lambda: "Received SIGTERM" in srv.output(), "supervisor got SIGTERM")
        (hold / "gate").touch()

        [(status, body)] = read_responses(slow, 1)
        assert status == 200 and orjson.loads(body)["name"] == "driver_live"
        for sock in [*idle, *fresh]:
            answers = read_responses(sock, 1)
            assert [s for s, _ in answers] == [200], answers
            assert orjson.loads(answers[0][1])["metadata"]["feature_names"]
        answers = read_responses(piped, 3)
        assert [s for s, _ in answers] == [200, 200, 200], answers
        assert orjson.loads(answers[0][1])["rows"] == 1
        assert answers[2][1] == b'{"status":"ok"}'
        wait_for(lambda: refused(port), "new connections are refused", srv.output)
        code = srv.proc.wait(timeout=120)
        assert code == 0, srv.output()
        for sock in [*idle, *fresh, slow, piped]:
            sock.close()
        with FeatureStore(repo) as fs:  # the pipelined push landed
            got = fs.get_online_features(["driver_live:conv_rate"], entities={"driver_id": [1001]})
            assert got.to_dict()["conv_rate"] == [0.7]
    finally:
        (hold / "gate").touch()
        if srv.proc.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess, subprocess.TimeoutExpired):
                srv.proc.kill()
                srv.proc.wait(30)
        srv._log.close()
