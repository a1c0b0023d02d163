"""The JetStream consumer's read fast path: a nats-py client that hands one subscription's
messages over raw, and acknowledgements written as one buffer.

nats-py spends about 11 µs on each message it delivers: header parsing, a ``Msg`` object,
the subscription's pending queue and the callback coroutine reading it, and its protocol
parser a regular expression and a buffer deletion each. ``FastClient`` routes one
subscription (the consumer's pull inbox) around all that: its ``FastParser`` reads runs of
MSG / HMSG without either and hands that subscription's deliveries, a socket read's worth
at a time, to a ``Deliver`` callable as raw bytes; a status message (no reply subject: "404 No Messages", "408 Request Timeout", "409 ...",
"100 Idle Heartbeat") to a ``Status`` one with its headers parsed by the client's own
``_process_headers``. Every other subscription (request replies, the JetStream API) takes
nats-py's usual path.

These are private parts of nats-py, so the fast path is used only where ``supported()``
says so: a version in ``TESTED`` whose ``_process_msg``, ``_process_headers``,
``_send_command`` and protocol parser have the shapes read here (checked against 2.9.0's
and 2.16.0's source; the tests run on the installed one). Elsewhere the consumer keeps to the public API
(``NatsJetStreamConsumer.fast`` says which it took).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from nats.aio.client import Client
from nats.protocol import parser as _parser

from parity.streams.base import Message

__all__ = [
    "ACKED",
    "REPLY",
    "TESTED",
    "Deliver",
    "FastClient",
    "FastParser",
    "Raw",
    "Status",
    "ack_commands",
    "fast_message",
    "supported",
]

log = logging.getLogger("parity.streams")

TESTED = ((2, 9), (3, 0))
"""nats-py versions the fast path was checked against: from 2.9 (inclusive) to 3.0."""

_PROCESS_MSG = ["self", "sid", "subject", "reply", "data", "headers"]


Raw = tuple[bytes, bytes, bytes]
"""A routed delivery as read: subject, reply subject, payload."""

Deliver = Callable[[list[Raw]], None]
"""Gets the routed messages with a reply subject (JetStream deliveries) of one read from the
socket, in order; their headers are not read. Called on the client's loop; must not block
(and may keep the list)."""

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
    parse = getattr(_parser.Parser, "parse", None)
    if not inspect.iscoroutinefunction(parse) or not hasattr(_parser, "AWAITING_CONTROL_LINE"):
        return False
    probe = _parser.Parser(None)  # the parser state FastParser shares with nats-py's loop
    if not isinstance(getattr(probe, "buf", None), bytearray) or not hasattr(probe, "state"):
        return False
    return list(inspect.signature(process_msg).parameters) == _PROCESS_MSG  # type: ignore[arg-type]


REPLY, ACKED = 0, 1
"""A fast-path message's token is a list ``[reply, acked]``: its ack subject (bytes) and
whether it was acknowledged (``Msg.is_acked``'s part). A list, not a class: one is made per
message, and a list is four times quicker to make than a slotted object."""


def fast_message(subject: bytes, reply: bytes, data: bytes) -> Message:
    """The ``Message`` of a routed delivery (``Raw``); its token is ``[reply, False]``.

    The ack subject carries the metadata: $JS.ACK.<stream>.<consumer>.<delivered>.<stream
    seq>.<consumer seq>.<ns>.<pending>, or with <domain>.<account> after ACK (and a token
    at the end)."""
    t = reply.split(b".")
    if len(t) == 9:
        delivered, seq, ns = t[4], t[5], t[7]
    else:
        delivered, seq, ns = t[6], t[7], t[9]
    # tuple.__new__ with every field in order: Message(...) with keywords costs twice as
    # much, and this runs per message.
    return _new_tuple(
        Message,
        (seq.decode(), data, int(ns) // 1000, delivered != b"1", subject.decode(), [reply, False]),
    )


_new_tuple = tuple.__new__


def ack_commands(replies: list[bytes], ack: bytes = b"+ACK") -> bytes:
    """One buffer of PUB commands sending ``ack`` to each reply subject (the wire form of
    ``Msg.ack()``, ``in_progress()``...), for ``Client._send_command``."""
    if not replies:
        return b""
    tail = b" %d\r\n%b\r\n" % (len(ack), ack)
    return b"PUB " + (tail + b"PUB ").join(replies) + tail


class FastParser(_parser.Parser):
    """nats-py's protocol parser, with a quicker loop for runs of MSG / HMSG (what a pull
    consumer mostly reads): no regular expression, one copy of the buffer per read instead
    of one deletion per message, and a routed delivery handed over without a coroutine.
    Anything else (PING, INFO, -ERR, a malformed line) goes to nats-py's own loop, which
    also raises its protocol errors."""

    def __init__(self, nc: FastClient) -> None:
        super().__init__(nc)
        self.fast_nc = nc
        self._wanted = 0  # bytes the buffer needs before the message at its start is whole

    def reset(self) -> None:
        super().reset()
        self._wanted = 0

    async def parse(self, data: bytes = b"") -> None:
        buf = self.buf
        buf.extend(data)
        if self.state != _parser.AWAITING_CONTROL_LINE:  # nats-py's loop left one half-read
            await super().parse()
            return
        if len(buf) < self._wanted:
            return
        self._wanted = 0
        view = bytes(buf)
        size = len(view)
        pos = 0
        nc = self.fast_nc
        process = nc._process_msg
        routed: list[Raw] = []  # handed over in one call; before anything else is processed
        whole = True  # False: the buffer ends inside a message; wait for more
        while pos < size:
            if view.startswith(b"MSG ", pos):
                start, with_headers = pos + 4, False
            elif view.startswith(b"HMSG ", pos):
                start, with_headers = pos + 5, True
            else:
                break
            eol = view.find(b"\r\n", start)
            if eol < 0:
                whole = False
                break
            args = view[start:eol].split()
            try:
                if with_headers:
                    if len(args) == 5:
                        subject, sid, reply, head, total = args
                    else:
                        (subject, sid, head, total), reply = args, b""
                    head_size = int(head)
                else:
                    if len(args) == 4:
                        subject, sid, reply, total = args
                    else:
                        (subject, sid, total), reply = args, b""
                    head_size = 0
                body, end = eol + 2, eol + 2 + int(total)
                sid_n = int(sid)
            except ValueError:  # malformed: nats-py's loop raises its ProtocolError
                break
            if end + 2 > size:
                self._wanted = end + 2 - pos
                whole = False
                break
            payload = view[body + head_size : end]
            pos = end + 2
            if sid_n == nc._routed_sid and reply:
                routed.append((subject, reply, payload))
            else:
                if routed:
                    nc._hand_over(routed)
                    routed = []
                headers = view[body : body + head_size] if head_size else None
                await process(sid_n, subject, reply, payload, headers)  # type: ignore[arg-type]
        if routed:
            nc._hand_over(routed)
        if pos:
            del buf[:pos]
        if buf and whole:
            await super().parse()


class FastClient(Client):
    """A nats-py ``Client`` that hands the messages of one subscription to callables."""

    def __init__(self) -> None:
        super().__init__()
        self._ps = FastParser(self)
        self._acking: set[asyncio.Future[None]] = set()
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
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        if reply:
            self._hand_over([(subject, reply, data)])
        else:
            routes[1](subject, await self._process_headers(headers) or {})

    def _hand_over(self, routed: list[Raw]) -> None:
        routes = self._routes
        if routes is None:
            return
        self.stats["in_msgs"] += len(routed)
        self.stats["in_bytes"] += sum(len(r[2]) for r in routed)
        routes[0](routed)

    async def acknowledge(self, tokens: list[list], *, timeout: float) -> None:
        """Acknowledge the messages of ``tokens`` (``[reply, acked]``, none acked yet): all but
        the last as one buffer of PUBs, the last as a request whose reply says the durable
        applied them all (it handles one consumer's acks in order). They are marked acked
        only then: a failed commit sends them again, and a second ack is harmless."""
        if not tokens:
            return
        await self.send_raw(ack_commands([t[REPLY] for t in tokens[:-1]]))
        await self.request(tokens[-1][REPLY].decode(), b"+ACK", timeout=timeout)
        for t in tokens:
            t[ACKED] = True

    async def in_progress(self, replies: list[bytes]) -> None:
        """Send +WPI (the ack wait starts again) to each reply subject, then flush."""
        await self.send_raw(ack_commands(replies, b"+WPI"))
        await self.flush()

    def ack_soon(self, reply: bytes) -> None:
        """Acknowledge one message without waiting (from a callback on the loop); a
        failure is only logged: the message is delivered again and dropped again."""
        task = asyncio.ensure_future(self.send_raw(ack_commands([reply])))
        self._acking.add(task)
        task.add_done_callback(self._acked)

    def _acked(self, task: asyncio.Future[None]) -> None:
        self._acking.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("acknowledging a message: %s", task.exception())

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
