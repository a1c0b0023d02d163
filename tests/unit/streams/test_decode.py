"""Message payloads into rows: every good event becomes its row, every bad one a dead letter
naming its field, and one bad message never costs its neighbours (``parity.streams.decode``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgpack
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity import Entity, FeatureView, Field, FileSource, StreamSource
from parity import types as T
from parity.streams.base import Message
from parity.streams.decode import Needs, decode

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T0_US = int(T0.timestamp()) * 1_000_000


def source(**fields) -> StreamSource:
    batch = FileSource(
        name="hist",
        path="h.parquet",
        timestamp_field="ts",
        created_timestamp_field=fields.pop("created", None),
        event_id_field=fields.pop("event_id", None),
        field_mapping=fields.pop("field_mapping", {}),
    )
    return StreamSource(name="s", kind="redis_streams", stream="k", batch_source=batch, **fields)


def needs(src: StreamSource, *, timestamp_feature: bool = False) -> Needs:
    features = {
        src.column_for("amount"): ("amount", T.Float64),
        src.column_for("items"): ("items", T.Int64),
        src.column_for("city"): ("city", T.String),
    }
    if timestamp_feature:
        features["seen"] = ("seen", T.Timestamp)
    eid = src.event_id_field
    return Needs(
        keys={src.column_for("customer_id"): ("customer_id", T.Int64)},
        features=features,
        timestamp=src.timestamp_field,
        created=src.created_timestamp_field,
        event_id=src.column_for(eid) if eid else None,
    )


def msg(i: int, body, *, append_us: int | None = None, raw: bool = False) -> Message:
    payload = body if raw else json.dumps(body).encode()
    return Message(f"{1700000000000 + i}-0", payload, append_us or T0_US + i)


def event(i: int, **over) -> dict:
    return {
        "customer_id": i,
        "ts": T0_US / 1e6 + i,
        "amount": 0.5 * i,
        "items": i,
        "city": "x",
    } | over


events = st.lists(
    st.tuples(
        st.integers(-(2**63), 2**63 - 1),
        st.integers(0, 4_000_000_000),  # seconds after 1970: every one inside 1900..2100
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        st.one_of(st.none(), st.text(max_size=5)),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(rows=events, fmt=st.sampled_from(["json", "msgpack"]))
def test_every_good_event_becomes_its_row(rows, fmt):
    src = source(format=fmt)
    pack = (lambda b: json.dumps(b).encode()) if fmt == "json" else msgpack.packb
    messages = [
        Message(f"{i}-0", pack({"customer_id": k, "ts": s, "amount": a, "items": n, "city": c}), i)
        for i, (k, s, a, n, c) in enumerate(rows)
    ]
    out = decode(messages, src, needs(src))
    assert out.letters == []
    assert out.messages == messages
    t = out.table
    assert t.column("customer_id").to_pylist() == [r[0] for r in rows]
    assert t.column("ts").cast(pa.int64()).to_pylist() == [r[1] * 1_000_000 for r in rows]
    assert t.column("amount").to_pylist() == [r[2] for r in rows]
    assert t.column("items").to_pylist() == [r[3] for r in rows]
    assert t.column("city").to_pylist() == [r[4] for r in rows]


BAD = [
    (b"not json", "decode", None),
    (b"[1, 2]", "decode", None),
    (
        json.dumps({"ts": 1, "amount": 1.0, "items": 1, "city": "x"}).encode(),
        "missing_field",
        "customer_id",
    ),
    (json.dumps(event(1, customer_id=None)).encode(), "null_key", "customer_id"),
    (
        json.dumps({k: v for k, v in event(1).items() if k != "amount"}).encode(),
        "missing_field",
        "amount",
    ),
    (json.dumps({k: v for k, v in event(1).items() if k != "ts"}).encode(), "missing_field", "ts"),
    (json.dumps(event(1, ts="yesterday")).encode(), "timestamp", "ts"),
    (json.dumps(event(1, ts=None)).encode(), "timestamp", "ts"),
    (json.dumps(event(1, ts=5_000_000_000)).encode(), "timestamp", "ts"),  # 2128
    (json.dumps(event(1, amount="abc")).encode(), "type", "amount"),
    (json.dumps(event(1, items=1.5)).encode(), "type", "items"),
    (json.dumps(event(1, items=2**70)).encode(), "type", "items"),
    (json.dumps(event(1, items=True)).encode(), "type", "items"),
    (json.dumps(event(1, customer_id="seven")).encode(), "type", "customer_id"),
]


@pytest.mark.parametrize(
    ("payload", "reason", "field"), BAD, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD)]
)
@settings(max_examples=25, deadline=None)
@given(before=st.integers(0, 6), after=st.integers(0, 6))
def test_a_bad_message_is_a_letter_naming_its_field_and_its_neighbours_are_rows(
    payload, reason, field, before, after
):
    src = source()
    good = [msg(i, event(i)) for i in range(before + after)]
    bad = msg(99, None, raw=True)._replace(payload=payload)
    messages = [*good[:before], bad, *good[before:]]
    out = decode(messages, src, needs(src))
    assert [(letter.message, letter.reason) for letter in out.letters] == [(bad, reason)]
    if field is not None:
        assert out.letters[0].field == field
        assert repr(field) in out.letters[0].detail
    assert out.messages == good
    assert out.table.column("customer_id").to_pylist() == list(range(before + after))


def test_a_message_without_payload_is_a_decode_letter():
    src = source()
    out = decode([msg(0, event(0)), Message("1-0", None, 0)], src, needs(src))
    assert [letter.reason for letter in out.letters] == ["decode"]
    assert "'data'" in out.letters[0].detail
    assert out.table.num_rows == 1


@pytest.mark.parametrize(
    ("value", "unit", "expected_us"),
    [
        ("2026-01-01T00:00:00Z", "s", T0_US),
        ("2026-01-01T02:00:00+02:00", "ms", T0_US),
        ("2026-01-01 00:00:00.000123", "s", T0_US + 123),  # naive text: UTC
        (T0_US // 1_000_000, "s", T0_US),
        (T0_US / 1e6 + 0.25, "s", T0_US + 250_000),
        (T0_US // 1000, "ms", T0_US),
        (T0_US, "us", T0_US),
        (T0_US * 1000 + 999, "ns", T0_US),
    ],
)
def test_event_times_as_iso_text_or_epoch_numbers_in_the_unit(value, unit, expected_us):
    src = source(timestamp_unit=unit)
    out = decode([msg(0, event(0, ts=value)), msg(1, event(1, ts=value))], src, needs(src))
    assert out.letters == []
    assert out.table.column("ts").cast(pa.int64()).to_pylist() == [expected_us] * 2


def test_mixed_time_forms_in_one_batch_each_read_alone():
    src = source()
    out = decode(
        [msg(0, event(0, ts="2026-01-01T00:00:00Z")), msg(1, event(1, ts=T0_US / 1e6 + 1))],
        src,
        needs(src),
    )
    assert out.table.column("ts").cast(pa.int64()).to_pylist() == [T0_US, T0_US + 1_000_000]


def test_created_time_is_the_messages_own_or_the_brokers_append_time():
    src = source(created="cr")
    own = msg(0, event(0, cr="2026-01-01T00:00:05Z"), append_us=T0_US + 7)
    none = msg(1, event(1), append_us=T0_US + 9)
    out = decode([own, none], src, needs(src))
    assert out.table.column("cr").cast(pa.int64()).to_pylist() == [T0_US + 5_000_000, T0_US + 9]


def test_field_mapping_reads_source_columns_under_the_views_names():
    src = source(field_mapping={"amt": "amount"})
    body = {k if k != "amount" else "amt": v for k, v in event(3).items()}
    out = decode([msg(0, body)], src, needs(src))
    assert out.letters == []
    assert out.table.column("amount").to_pylist() == [1.5]


def test_a_declared_event_id_is_required_and_not_null():
    src = source(event_id="eid")
    out = decode(
        [msg(0, event(0, eid="a")), msg(1, event(1)), msg(2, event(2, eid=None))], src, needs(src)
    )
    assert [(letter.message.offset, letter.reason) for letter in out.letters] == [
        ("1700000000001-0", "missing_field"),
        ("1700000000002-0", "null_key"),
    ]
    assert out.table.column("eid").to_pylist() == ["a"]


def test_timestamp_features_and_msgpack_times():
    src = source(format="msgpack")
    body = event(0, seen="2026-01-01T00:00:01Z")
    out = decode([Message("0-0", msgpack.packb(body), 0)], src, needs(src, timestamp_feature=True))
    assert out.table.column("seen").cast(pa.int64()).to_pylist() == [T0_US + 1_000_000]
    stamped = msgpack.packb(event(1, seen=T0 + timedelta(seconds=2)), datetime=True)
    out = decode([Message("1-0", stamped, 0)], src, needs(src, timestamp_feature=True))
    assert out.letters == [], out.letters
    assert out.table.column("seen").cast(pa.int64()).to_pylist() == [T0_US + 2_000_000]


def test_non_finite_numbers_are_not_json():
    src = source()
    out = decode(
        [msg(0, None, raw=True)._replace(payload=b'{"customer_id": 1, "ts": NaN}')], src, needs(src)
    )
    assert [letter.reason for letter in out.letters] == ["decode"]


def test_views_of_the_source_define_what_is_needed():
    """``needs_of`` reads the views' join keys and schema fields by source column."""
    from parity.registry.catalog import Catalog
    from parity.streams.decode import needs_of

    customer = Entity(name="customer", join_keys=["customer_id"], dtype=T.Int64)
    src = source(field_mapping={"amt": "amount"})
    view = FeatureView(
        name="v",
        entities=[customer],
        source=src,
        schema=[Field(name="amount", dtype=T.Float64)],
    )
    catalog = Catalog.of([customer, src, view])
    found = needs_of(src, [view], catalog)
    assert found.keys == {"customer_id": ("customer_id", T.Int64)}
    assert found.features == {"amt": ("amount", T.Float64)}
