"""``parity.clock.parse_time``: the one parser of times given as text (CLI and store)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity.clock import iso_time, parse_time
from parity.errors import RetrievalError

offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
naive = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))


@given(naive, offsets, st.sampled_from([" ", "T"]))
def test_iso_text_reads_back_the_same_instant(value: datetime, tz: timezone, sep: str):
    aware = value.replace(tzinfo=tz)
    assert parse_time(aware.isoformat(sep=sep), "end") == aware
    assert parse_time(aware.isoformat(), "end").utcoffset() == aware.utcoffset()


@given(naive)
def test_naive_text_and_naive_datetimes_are_utc(value: datetime):
    assert parse_time(value.isoformat(), "start") == value.replace(tzinfo=UTC)
    assert parse_time(value, "start") == value.replace(tzinfo=UTC)
    assert parse_time(value.date().isoformat(), "start") == datetime.combine(
        value.date(), datetime.min.time(), UTC
    )
    assert parse_time(value.date(), "start") == parse_time(value.date().isoformat(), "start")


@given(st.text())
def test_any_text_is_a_time_or_a_clear_refusal_naming_what(text: str):
    try:
        value = parse_time(text, "START")
    except RetrievalError as exc:
        assert str(exc).startswith(f"START: {text!r} is not a time")
        assert "ISO 8601" in str(exc) and "'now'" in str(exc)
    else:
        assert value.tzinfo is not None
        if text.strip().lower() != "now":
            assert value == iso_time(text)


def test_now_is_the_given_clock_and_other_types_are_refused():
    fixed = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_time(" NOW ", "end", now=lambda: fixed) == fixed
    before = datetime.now(UTC)
    assert before <= parse_time("now", "end") <= datetime.now(UTC)
    for bad in (None, 20240101, 1.5, b"2024-01-01"):
        with pytest.raises(RetrievalError, match="end must be a datetime or ISO 8601 text"):
            parse_time(bad, "end")  # type: ignore[arg-type]
    assert parse_time(date(2024, 1, 31), "end") == datetime(2024, 1, 31, tzinfo=UTC)
