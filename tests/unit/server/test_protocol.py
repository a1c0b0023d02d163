"""The server's wire details: a response leaves in one write, times as RFC 3339 text."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from parity.server.handlers import iso_times
from parity.server.protocol import CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_writes_of_one_loop_turn_leave_as_one_in_order() -> None:
    async def main() -> RecordingTransport:
        inner = RecordingTransport()
        t = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"")
        t.write(b"body")
        assert inner.writes == []  # nothing sent until the turn ends
        await asyncio.sleep(0)
        t.write(b"next")
        t.close()  # close sends what is pending first
        assert t.get_extra_info("peername") == "info:peername"
        return inner

    inner = asyncio.run(main())
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]
    assert inner.closed


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
micros = st.one_of(st.none(), st.integers(min_value=-(10**15), max_value=4 * 10**15))


@given(st.lists(micros, max_size=20))
def test_times_are_the_same_text_however_many(values: list[int | None]) -> None:
    got = iso_times(values)
    one_by_one = [iso_times([v])[0] for v in values]
    assert got == one_by_one
    for v, text in zip(values, got, strict=True):
        if v is None:
            assert text is None
        else:
            assert text is not None and text.endswith("Z")
            parsed = datetime.fromisoformat(text)
            assert (parsed - EPOCH) // timedelta(microseconds=1) == v
