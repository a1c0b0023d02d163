"""Durations: the text form users write (``"2h"``, ``"1h30m"``) and the one the registry stores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity.definitions import FeatureView, Field, parse_duration
from parity.definitions.base import format_duration
from parity.errors import DefinitionError


@settings(max_examples=300)
@given(st.timedeltas())
def test_format_then_parse_is_identity(td: timedelta) -> None:
    # st.timedeltas covers the whole range: negative, microseconds, ~2.7 million years.
    text = format_duration(td)
    assert parse_duration(text) == td


_UNITS = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "us": timedelta(microseconds=1),
}


@given(st.timedeltas(min_value=timedelta(microseconds=1)))
def test_format_uses_the_largest_whole_unit(td: timedelta) -> None:
    text = format_duration(td)
    unit = text.lstrip("0123456789")
    assert int(text.removesuffix(unit)) * _UNITS[unit] == td
    larger = list(_UNITS)[: list(_UNITS).index(unit)]
    assert all(td % _UNITS[u] for u in larger), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("5ms", timedelta(milliseconds=5)),
        ("250us", timedelta(microseconds=250)),
        ("1w", timedelta(weeks=1)),
        ("1.5h", timedelta(minutes=90)),
        (" 2 h ", timedelta(hours=2)),
        ("1D2H", timedelta(days=1, hours=2)),
        ("1m30s", timedelta(seconds=90)),
        ("-1d", timedelta(days=-1)),
        ("PT2H", timedelta(hours=2)),
        ("P1DT30M", timedelta(days=1, minutes=30)),
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(hours=3), timedelta(hours=3)),
    ],
)
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        "",
        "5",
        "h",
        "1x",
        "1h 30",
        "--1d",
        "PTx",
        "9999999999d",
        True,
        None,
        [1],
        float("inf"),
    ],
)
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(days=1), "1d"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(milliseconds=1500), "1500000us"),
        (timedelta(0), "0d"),
        (timedelta(days=-2), "-2d"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


def test_a_ttl_given_any_way_is_the_same_view() -> None:
    def view(ttl: object) -> FeatureView:
        return FeatureView(
            name="v", entities=["e"], source="s", schema=[Field(name="f", dtype="Int64")], ttl=ttl
        )

    forms = [view("2h"), view("120m"), view(7200), view(timedelta(hours=2)), view("PT2H")]
    assert {v.to_spec()["ttl"] for v in forms} == {"2h"}
    assert len({v.content_hash() for v in forms}) == 1
    with pytest.raises(DefinitionError, match=r"feature_view 'v': ttl: not a duration: 'abc'"):
        view("abc")
