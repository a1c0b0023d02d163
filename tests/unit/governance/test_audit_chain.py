"""The audit log's hash chain, without a database: any edited, deleted or inserted record is
found and named, for any record contents; an intact chain always verifies."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity.governance.audit_chain import GENESIS, AuditRecord, ChainCheck, canonical, chain_hash

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

texts = st.text(max_size=40)
entries = st.fixed_dictionaries(
    {
        "principal": st.text(min_size=1, max_size=20),
        "action": st.sampled_from(["apply", "read_online", "push", "token_create", "erase"]),
        "resources": st.lists(texts, max_size=4).map(tuple),
        "counts": st.dictionaries(st.text(max_size=8), st.integers(-(2**62), 2**62), max_size=3),
        "outcome": st.sampled_from(["ok", "denied", "error"]),
        "detail": texts,
        "token_id": st.none() | st.text(min_size=1, max_size=12),
        "micros": st.integers(0, 10**12),
    }
)


def chain(items: list[dict], project: str = "p") -> list[AuditRecord]:
    out, prev = [], GENESIS
    for seq, e in enumerate(items, start=1):
        fields = {k: v for k, v in e.items() if k != "micros"}
        fields.update(project=project, seq=seq, at=T0 + timedelta(microseconds=e["micros"]))
        digest = chain_hash(**fields, prev_hash=prev)
        out.append(AuditRecord(**fields, prev_hash=prev, hash=digest))
        prev = digest
    return out


def check(records: list[AuditRecord], head: tuple[int, str] | None, **kw):
    c = ChainCheck(**kw)
    c.feed(records)
    return c.finish(head)


def head_of(records: list[AuditRecord]) -> tuple[int, str]:
    return (records[-1].seq, records[-1].hash) if records else (0, GENESIS)


@settings(max_examples=60, deadline=None)
@given(st.lists(entries, max_size=8))
def test_an_intact_chain_verifies(items):
    records = chain(items)
    result = check(records, head_of(records))
    assert result.ok, result.problem
    assert (result.records, result.head_seq) == (len(records), len(records))


FIELDS = ["principal", "action", "resources", "counts", "outcome", "detail", "token_id", "at"]


def _changed(record: AuditRecord, field: str) -> AuditRecord:
    value = getattr(record, field)
    if field == "at":
        new = value + timedelta(microseconds=1)
    elif field == "resources":
        new = (*value, "feature_view:x")
    elif field == "counts":
        new = {**value, "rows": value.get("rows", 0) + 1}
    elif field == "token_id":
        new = "other" if value != "other" else None
    elif field == "outcome":
        new = "ok" if value != "ok" else "denied"
    else:
        new = value + "x"
    return dataclasses.replace(record, **{field: new})


@settings(max_examples=80, deadline=None)
@given(st.lists(entries, min_size=1, max_size=8), st.data())
def test_an_edited_record_is_named(items, data):
    records = chain(items)
    i = data.draw(st.integers(0, len(records) - 1), label="edited")
    field = data.draw(st.sampled_from(FIELDS), label="field")
    records[i] = _changed(records[i], field)
    result = check(records, head_of(chain(items)))
    assert not result.ok
    assert result.broken_seq == i + 1
    assert "edited" in result.problem


@settings(max_examples=60, deadline=None)
@given(st.lists(entries, min_size=2, max_size=8), st.data())
def test_a_deleted_record_is_named_middle_first_or_newest(items, data):
    records = chain(items)
    head = head_of(records)
    i = data.draw(st.integers(0, len(records) - 1), label="deleted")
    del records[i]
    result = check(records, head)
    assert not result.ok
    assert result.broken_seq == i + 1
    assert "deleted" in result.problem


def test_the_newest_record_deleted_with_the_head_moved_back_needs_a_kept_head():
    records = chain(
        [
            dict(
                principal="a",
                action="apply",
                resources=(),
                counts={},
                outcome="ok",
                detail="",
                token_id=None,
                micros=i,
            )
            for i in range(3)
        ]
    )
    kept = head_of(records)
    shortened = records[:-1]
    assert check(shortened, head_of(shortened)).ok  # consistent, so only an anchor tells
    result = check(shortened, head_of(shortened), expect_head=kept)
    assert (result.ok, result.broken_seq) == (False, 3)
    rewritten = chain(
        [
            dict(
                principal="b",
                action="apply",
                resources=(),
                counts={},
                outcome="ok",
                detail="",
                token_id=None,
                micros=i,
            )
            for i in range(3)
        ]
    )
    result = check(rewritten, head_of(rewritten), expect_head=kept)
    assert (result.ok, result.broken_seq) == (False, 3)
    assert "kept head" in result.problem


@settings(max_examples=60, deadline=None)
@given(st.lists(entries, min_size=1, max_size=6), entries, st.data())
def test_an_inserted_record_is_named(items, extra, data):
    records = chain(items)
    head = head_of(records)
    i = data.draw(st.integers(0, len(records)), label="inserted before")
    # a forger who hashes the new record properly and renumbers what follows it
    prev = records[i - 1].hash if i else GENESIS
    [inserted] = chain([extra])
    fields = {f.name: getattr(inserted, f.name) for f in dataclasses.fields(inserted)}
    fields.update(seq=i + 1, prev_hash=prev, hash="")
    fields["hash"] = dataclasses.replace(AuditRecord(**fields)).expected_hash()
    forged = [
        *records[:i],
        AuditRecord(**fields),
        *(dataclasses.replace(r, seq=r.seq + 1) for r in records[i:]),
    ]
    result = check(forged, head)
    assert not result.ok
    assert result.broken_seq == i + 1
    assert "inserted" in result.problem


def test_a_missing_head_with_records_is_broken_and_an_empty_log_is_intact():
    records = chain(
        [
            dict(
                principal="a",
                action="apply",
                resources=(),
                counts={},
                outcome="ok",
                detail="",
                token_id=None,
                micros=0,
            )
        ]
    )
    assert not check(records, None).ok
    assert check([], None).ok
    assert check([], (0, GENESIS)).ok


def test_the_canonical_form_is_stable():
    """A record's hash never changes between versions: old logs must still verify."""
    fields = dict(
        project="p",
        seq=1,
        at=T0,
        principal="alice",
        action="read_online",
        resources=("feature_view:drivers",),
        counts={"keys": 3},
        outcome="ok",
        detail="purpose=fraud",
        token_id="ab12",
        prev_hash=GENESIS,
    )
    expected = (
        b'["p",1,"2026-12-01T08:00:00.000000+00:00","alice","read_online",'
        b'["feature_view:drivers"],{"keys":3},"ok","purpose=fraud","ab12","' + b"0" * 64 + b'"]'
    )
    assert canonical(**fields) == expected
    assert chain_hash(**fields) == hashlib.sha256(expected).hexdigest()


@pytest.mark.parametrize("hours", [5, -3])
def test_the_time_is_hashed_in_utc(hours):
    from datetime import timezone

    at = T0.astimezone(timezone(timedelta(hours=hours)))
    fields = dict(
        project="p",
        seq=1,
        principal="a",
        action="x",
        resources=(),
        counts={},
        outcome="ok",
        detail="",
        token_id=None,
        prev_hash=GENESIS,
    )
    assert chain_hash(at=at, **fields) == chain_hash(at=T0, **fields)


@settings(max_examples=100, deadline=None)
@given(entries, st.integers(1, 2**62), st.text(max_size=10))
def test_the_canonical_form_is_the_documented_json(e, seq, project):
    """Assembled from parts for speed, it is exactly json.dumps of the fields in order."""
    import json

    at = T0 + timedelta(microseconds=e["micros"])
    fields = {k: v for k, v in e.items() if k != "micros"}
    doc = [project, seq, at.isoformat(timespec="microseconds"), fields["principal"],
           fields["action"], list(fields["resources"]), fields["counts"], fields["outcome"],
           fields["detail"], fields["token_id"], GENESIS]  # fmt: skip
    expected = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert canonical(project=project, seq=seq, at=at, prev_hash=GENESIS, **fields) == (
        expected.encode()
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, min_size=1, max_size=6), st.booleans(), st.sampled_from([0, 5, -3]))
def test_the_writers_rows_hash_and_store_what_the_chain_defines(es, pg, hours):
    """The writer assembles each record's hash from parts remembered per record shape; the
    hashes are ``chain_hash`` of the fields, each chained to the one before, and the stored
    time and counts are what reading back expects."""
    import json
    from datetime import UTC, timezone

    from parity.governance.audit_store import Entry, _chained_rows, _sqlite_time

    zone = UTC if hours == 0 else timezone(timedelta(hours=hours))
    batch = [
        Entry((T0 + timedelta(microseconds=e["micros"])).astimezone(zone), e["principal"],
              e["action"], tuple(e["resources"]), e["counts"], e["outcome"], e["detail"],
              e["token_id"])
        for e in es
    ]  # fmt: skip
    for _ in range(2):  # the second time from the remembered parts
        rows, last_seq, last = _chained_rows("proj", batch, 7, GENESIS, pg=pg)
        prev = GENESIS
        for i, (entry, row) in enumerate(zip(batch, rows, strict=True)):
            fields = entry._asdict()
            want = chain_hash(project="proj", seq=8 + i, prev_hash=prev, **fields)
            assert row[1] == 8 + i and row[9] == prev and row[10] == want
            assert row[2] == (entry.at if pg else _sqlite_time(entry.at))
            assert json.loads(row[6]) == entry.counts and row[11] == entry.token_id
            assert json.loads(row[5]) == list(entry.resources)
            prev = want
        assert (last_seq, last) == (7 + len(batch), prev)
