"""Field changes as a person reads them: ``ttl: 1 day → 2 hours``, ``+ schema[city]: String``.

``describe_change`` turns one ``FieldChange`` of a version's diff into one line: durations
(``ttl``, ``hop``, ``window``, ``freshness``) in words, an added or removed schema field or
other named item as its type and other set values, a list of named items by their names.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parity.registry.diff import FieldChange

ARROW = "→"
DURATION_FIELDS = frozenset({"ttl", "hop", "window", "freshness"})
_UNITS = (
    ("day", 86_400_000_000),
    ("hour", 3_600_000_000),
    ("minute", 60_000_000),
    ("second", 1_000_000),
    ("ms", 1_000),
    ("µs", 1),
)


def human_duration(micros: int) -> str:
    """``1 day 2 hours``: every non-zero unit, largest first, exact."""
    if micros == 0:
        return "0 seconds"
    sign, micros = ("-" if micros < 0 else ""), abs(micros)
    parts = []
    for unit, size in _UNITS:
        count, micros = divmod(micros, size)
        if count:
            plural = "s" if count != 1 and unit not in ("ms", "µs") else ""
            parts.append(f"{count} {unit}{plural}")
    return sign + " ".join(parts)


def _leaf(path: str) -> str:
    """The last key of a spec path: ``ttl``, ``window`` of ``aggregations[x].window``."""
    tail = path.rsplit(".", 1)[-1]
    return tail.split("[", 1)[0]


def describe_value(value: Any, path: str) -> str:
    """One value of a spec, readable: durations in words, named items by their facts."""
    from parity.registry.diff import ABSENT, format_value

    if value is ABSENT:
        return "(absent)"
    if _leaf(path) in DURATION_FIELDS:
        if value is None:
            return "no limit" if _leaf(path) == "ttl" else "none"
        if isinstance(value, str):
            from parity.definitions.base import parse_duration

            try:
                td = parse_duration(value)
            except ValueError:
                return format_value(value)
            return human_duration(td // td.resolution)
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return _item(value)
    if isinstance(value, list) and value and all(_named(v) for v in value):
        return "[" + ", ".join(_name(v) for v in value) + "]"
    if isinstance(value, str) and (not value or " " in value):
        return json.dumps(value, ensure_ascii=False)  # quoted where bare text would blur
    return format_value(value)


def _named(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("name") or value.get("view"), str)


def _item(value: dict[str, Any]) -> str:
    """A named item (a schema field, an aggregation) by what is set in it, name left out."""
    facts = []
    for key, v in value.items():
        if key == "name" or v in (None, "", {}, [], False):
            continue
        shown = describe_value(v, key)
        facts.append(shown if key in ("dtype", "function") else f"{key} {shown}")
    return ", ".join(facts) or json.dumps(value.get("name"))


def describe_changes(change: FieldChange) -> list[str]:
    """The lines of one change: a list of named items replaced whole (its items were
    reordered, so the registry's diff could not go item by item) is shown item by item,
    as removed, added and changed fields, then its new order."""
    from parity.registry.diff import FieldChange, diff_specs

    old, new = change.old, change.new
    if not (_named_list(old) and _named_list(new)):
        return [describe_change(change)]
    before = {_name(v): v for v in old}
    after = {_name(v): v for v in new}
    lines = []
    for key in [*before, *(k for k in after if k not in before)]:
        at = f"{change.path}[{key}]"
        if key not in after:
            lines.append(f"- {at}: {_item(before[key])}")
        elif key not in before:
            lines.append(f"+ {at}: {_item(after[key])}")
        else:
            for sub in diff_specs(before[key], after[key]):
                path = f"{at}{'' if sub.path.startswith('[') else '.'}{sub.path}"
                lines.append(describe_change(FieldChange(path, sub.old, sub.new)))
    kept_before = [k for k in before if k in after]
    kept_after = [k for k in after if k in before]
    if kept_before != kept_after:
        lines.append(
            f"{change.path} order: {describe_value(old, change.path)} {ARROW} "
            f"{describe_value(new, change.path)}"
        )
    return lines


def _named_list(value: Any) -> bool:
    if not isinstance(value, list) or not value or not all(_named(v) for v in value):
        return False
    names = [_name(v) for v in value]
    return len(set(names)) == len(names)


def _name(value: dict[str, Any]) -> str:
    return str(value.get("name") or value.get("view"))


def describe_change(change: FieldChange) -> str:
    """``path: old → new``, ``+ path: new`` (added) or ``- path: old`` (removed)."""
    if change.added:
        return f"+ {change.path}: {describe_value(change.new, change.path)}"
    if change.removed:
        return f"- {change.path}: {describe_value(change.old, change.path)}"
    old = describe_value(change.old, change.path)
    new = describe_value(change.new, change.path)
    return f"{change.path}: {old} {ARROW} {new}"


__all__ = ["ARROW", "describe_change", "describe_changes", "describe_value", "human_duration"]
