"""How `parity history` words a change: durations in words, named items by their facts."""

from __future__ import annotations

import re
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from parity.cli.changes import describe_change, describe_changes, human_duration
from parity.definitions.base import format_duration
from parity.registry.diff import ABSENT, FieldChange, diff_specs

_UNIT_US = {"day": 86_400_000_000, "hour": 3_600_000_000, "minute": 60_000_000,
            "second": 1_000_000, "ms": 1_000, "µs": 1}  # fmt: skip


def read_back(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    total = sum(
        int(n) * _UNIT_US[u.rstrip("s") if u not in ("ms", "µs") else u]
        for n, u in re.findall(r"(\d+) (days?|hours?|minutes?|seconds?|ms|µs)", text)
    )
    return sign * total


@given(st.integers(-(10**15), 10**15))
def test_human_durations_are_exact(micros: int):
    text = human_duration(micros)
    assert read_back(text) == micros or (micros == 0 and text == "0 seconds")


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
def test_a_ttl_change_reads_in_words(td: timedelta):
    change = FieldChange("ttl", "1d", format_duration(td))
    old, new = describe_change(change).removeprefix("ttl: ").split(" → ")
    assert old == "1 day"
    assert read_back(new) == td // timedelta(microseconds=1)


def test_added_removed_and_none():
    assert describe_change(FieldChange("ttl", "2h", None)) == "ttl: 2 hours → no limit"
    added = FieldChange("schema[city]", ABSENT, {"name": "city", "dtype": "String", "tags": {}})
    assert describe_change(added) == "+ schema[city]: String"
    removed = FieldChange(
        "schema[rate]", {"name": "rate", "dtype": "Float64", "description": "a b"}, ABSENT
    )
    assert describe_change(removed) == '- schema[rate]: Float64, description "a b"'
    assert describe_change(FieldChange("sla.freshness", "1h", "90m")) == (
        "sla.freshness: 1 hour → 1 hour 30 minutes"
    )


def test_a_reordered_schema_is_shown_item_by_item():
    old = {"schema": [{"name": "a", "dtype": "Int64"}, {"name": "b", "dtype": "String"}]}
    new = {"schema": [{"name": "c", "dtype": "Bool"}, {"name": "a", "dtype": "Float64"}]}
    (whole,) = diff_specs(old, new)
    assert whole.path == "schema"  # the registry's diff reports a reorder as one change
    assert describe_changes(whole) == [
        "schema[a].dtype: Int64 → Float64",
        "- schema[b]: String",
        "+ schema[c]: Bool",
    ]
    swapped = {"schema": list(reversed(old["schema"]))}
    (change,) = diff_specs(old, swapped)
    assert describe_changes(change) == ["schema order: [a, b] → [b, a]"]
