"""The JetStream consumer's read fast path: a nats-py client that hands one subscription's
messages over raw, and acknowledgements written as one buffer.

nats-py spends about 11 µs on each message it delivers: header parsing, a ``Msg`` object,
the subscription's pending queue and the callback coroutine reading it. ``FastClient``
overrides the client's ``_process_msg`` for one subscription (the consumer's pull inbox):
a delivery goes straight to a ``Deliver`` callable as the bytes the protocol parser read,
a status message (no reply subject: "404 No Messages", "408 Request Timeout", "409 ...",
"100 Idle Heartbeat") to a ``Status`` one with its headers parsed by the client's own
``_process_headers``. Every other subscription (request replies, the JetStream API) takes
nats-py's usual path.

These are private parts of nats-py, so the fast path is used only where ``supported()``
says so: a version in ``TESTED`` whose ``_process_msg``, ``_process_headers`` and
``_send_command`` have the shapes read here. Elsewhere the consumer keeps to the public API
(``NatsJetStreamConsumer.fast`` says which it took).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from nats.aio.client import Client

__all__ = ["TESTED", "Deliver", "FastClient", "Status", "ack_commands", "supported"]

TESTED = ((2, 9), (3, 0))
"""nats-py versions the fast path was checked against: from 2.9 (inclusive) to 3.0."""

_PROCESS_MSG = ["self", "sid", "subject", "reply", "data", "headers"]


Deliver = Callable[[bytes, bytes, bytes], None]
"""Gets a routed message with a reply subject (a JetStream delivery): subject, reply, data;
its headers are not read. Called on the client's loop; must not block."""

Status = Callable[[bytes, dict[str, str]], None]
"""Gets a routed message without one (a pull status): subject, headers (``Status``,
``Description``, and any others the server sent)."""


def supported(installed: str | None = None) -> bool:
    """Whether the fast path may be used with nats-py ``installed`` (default: the one
    imported): its version is in ``TESTED`` and the private methods it relies on look as
    expected."""
    if installed is None:
        try:
            installed = version("nats-py")
        except PackageNotFoundError:
            return False
    try:
        parts = tuple(int(p) for p in installed.split(".")[:2])
    except ValueError:  # "2.10.0rc1" still parses; anything stranger is not a tested one
        return False
    low, high = TESTED
    if not low <= parts < high:
        return False
    process_msg = getattr(Client, "_process_msg", None)
    headers = getattr(Client, "_process_headers", None)
    send = getattr(Client, "_send_command", None)
    if not all(inspect.iscoroutinefunction(f) for f in (process_msg, headers, send)):
        return False
    return list(inspect.signature(process_msg).parameters) == _PROCESS_MSG  # type: ignore[arg-type]


def ack_commands(replies: list[bytes], ack: bytes = b"+ACK") -> bytes:
    """One buffer of PUB commands sending ``ack`` to each reply subject (the wire form of
    ``Msg.ack()``, ``in_progress()``...), for ``Client._send_command``."""
    if not replies:
        return b""
    tail = b" %d\r\n%b\r\n" % (len(ack), ack)
    return b"PUB " + (tail + b"PUB ").join(replies) + tail


class FastClient(Client):
    """A nats-py ``Client`` that hands the messages of one subscription to an ``Inbox``."""

    def __init__(self) -> None:
        super().__init__()
        self._routed_sid = -1
        self._routes: tuple[Deliver, Status] | None = None

    def route(self, sid: int, deliver: Deliver, status: Status) -> None:
        """Hand subscription ``sid``'s messages to ``deliver`` / ``status`` from now on (its
        callback and pending queue are bypassed: nothing reaches them)."""
        self._routes, self._routed_sid = (deliver, status), sid

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes
    ) -> None:
        routes = self._routes
        if sid != self._routed_sid or routes is None:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        stats = self.stats
        stats["in_msgs"] += 1
        stats["in_bytes"] += len(data)
        if reply:
            routes[0](subject, reply, data)
        else:
            routes[1](subject, await self._process_headers(headers) or {})

    async def send_raw(self, commands: bytes) -> None:
        """Queue protocol ``commands`` (``ack_commands``) for the flusher, as ``publish``
        does with one PUB; raises as ``publish`` does on a closed connection."""
        if self.is_closed:
            from nats.errors import ConnectionClosedError

            raise ConnectionClosedError
        if commands:
            await self._send_command(commands)
            if self._flush_queue is not None and self._flush_queue.empty():
                await self._flush_pending()
