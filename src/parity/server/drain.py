"""Graceful shutdown that answers every request received before the signal.

uvicorn's shutdown closes its listening sockets and then every connection that is not in the
middle of a request, and sets ``keep_alive = False`` on the request of the others. That
drops three kinds of requests the client had already sent when SIGTERM came:

- requests pipelined behind the current one on its connection (the connection is closed
  after the current response, with them queued);
- a request whose bytes had arrived but had not been read yet (the loop was busy): the
  connection looked idle and was closed;
- connections the kernel had accepted that were still in the listen backlog: the listening
  socket was closed under them.

Here, on shutdown, the backlog is accepted first and then the listening sockets are closed
(new connections are refused from then on), and each connection *drains*: it answers what
it had received (the current request, the pipelined ones, bytes waiting in its socket) and
closes once it has nothing more to answer. uvicorn still waits for the connections up to its
graceful timeout and then cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

from uvicorn.server import Server
from uvicorn.supervisors.multiprocess import Process

from parity.server.protocol import CoalescingHttpToolsProtocol

log = logging.getLogger("parity.server")


def _bytes_waiting(transport: Any) -> bool:
    """Whether the connection's socket holds bytes not read yet (peeked, not consumed)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as peek:
            return bool(peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:  # BlockingIOError: nothing waiting
        return False


class DrainingHttpToolsProtocol(CoalescingHttpToolsProtocol):
    """The coalescing protocol whose ``shutdown`` drains instead of dropping queued requests."""

    draining = False
    _in_head = False  # a request has begun whose head is not complete yet

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _busy(self) -> bool:
        """A request under way, queued, half received, or waiting in the socket."""
        cycle = self.cycle
        return (
            (cycle is not None and not cycle.response_complete)
            or bool(self.pipeline)
            or self._in_head
            or _bytes_waiting(self.transport)
        )

    def shutdown(self) -> None:
        self.draining = True
        if self.transport.is_closing():
            return
        if not self._busy():
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.draining and not self.transport.is_closing() and not self._busy():
            self.transport.close()


class DrainingServer(Server):
    """uvicorn's server, accepting its backlog before it stops listening (see the module)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        with contextlib.suppress(Exception):  # never let this stand in the way of stopping
            await self._accept_backlog()
        await super().shutdown(sockets)

    async def _accept_backlog(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
            )

        accepted = 0
        for server in self.servers:
            for listener in server.sockets:
                with socket.socket(fileno=os.dup(listener.fileno())) as sock:
                    sock.setblocking(False)
                    while True:
                        try:
                            conn, _ = sock.accept()
                        except (BlockingIOError, InterruptedError):
                            break
                        conn.setblocking(False)
                        await loop.connect_accepted_socket(protocol, conn)
                        accepted += 1
        if accepted:
            log.info("accepted %d waiting connection(s) before stopping listening", accepted)


class DrainingProcess(Process):
    """A supervised worker whose server is a ``DrainingServer``."""

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server
