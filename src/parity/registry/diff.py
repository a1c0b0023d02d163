"""Field-level differences between two specs: pure functions over JSON-ready values.

``diff_specs(old, new)`` walks two specs and returns one ``FieldChange`` per leaf that differs,
with a dotted path such as ``ttl``, ``tags.team`` or ``schema[conv_rate].dtype``:

- dict keys are followed by ``.key`` (or ``["odd key"]`` when the key is not an identifier);
- a list whose items are all dicts carrying a unique ``name`` (else ``view``) is matched item
  by item on that key: ``schema[conv_rate]``; any other list is matched by index: ``join_keys[0]``;
- a value that was added has ``old=ABSENT``, one that was removed has ``new=ABSENT``;
- when keyed items were reordered (so per-item changes could not rebuild the list), the whole
  list is reported as one change at its path.

``apply_changes(old, changes)`` rebuilds ``new`` from ``old`` and the changes; the tests hold
``apply_changes(a, diff_specs(a, b)) == b`` and ``diff_specs(a, a) == ()`` for random specs.
Scalars are equal only when of the same JSON type (``1``, ``1.0`` and ``True`` all differ).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ABSENT",
    "FieldChange",
    "apply_changes",
    "diff_specs",
    "format_path",
    "format_value",
    "parse_path",
]


class _Absent(enum.Enum):
    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT = _Absent.ABSENT
"""Stands for "no value here": the ``old`` of an added field, the ``new`` of a removed one."""

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(
    r"""\.?(?P<key>[A-Za-z_][A-Za-z0-9_]*)      # .key  (or key at the start)
    | \[(?P<index>\d+)\]                        # [3]
    | \[(?P<ident>[A-Za-z_][A-Za-z0-9_]*)\]     # [conv_rate]
    | \[(?P<quoted>"(?:[^"\\]|\\.)*")\]         # ["odd key"]
    """,
    re.VERBOSE,
)

# A path token: ("key", str) for a dict key or a keyed list item, ("index", int) for a position.
Token = tuple[str, Any]


@dataclass(frozen=True)
class FieldChange:
    """One leaf that differs between two specs; ``old``/``new`` may be ``ABSENT``."""

    path: str
    old: Any
    new: Any

    @property
    def added(self) -> bool:
        return self.old is ABSENT

    @property
    def removed(self) -> bool:
        return self.new is ABSENT

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the registry; an absent side is left out."""
        out: dict[str, Any] = {"path": self.path}
        if self.old is not ABSENT:
            out["old"] = self.old
        if self.new is not ABSENT:
            out["new"] = self.new
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldChange:
        return cls(data["path"], data.get("old", ABSENT), data.get("new", ABSENT))

    def render(self) -> str:
        """One line: ``path: old -> new``, ``+ path: new`` or ``- path: old``."""
        if self.added:
            return f"+ {self.path}: {format_value(self.new)}"
        if self.removed:
            return f"- {self.path}: {format_value(self.old)}"
        return f"{self.path}: {format_value(self.old)} -> {format_value(self.new)}"


def diff_specs(old: Any, new: Any) -> tuple[FieldChange, ...]:
    """Every leaf that differs from ``old`` to ``new``, in document order."""
    out: list[FieldChange] = []
    _diff(old, new, (), out)
    return tuple(out)


def apply_changes(old: Any, changes: Iterable[FieldChange]) -> Any:
    """``old`` with ``changes`` applied (a new value; ``old`` is not modified)."""
    items = [(parse_path(c.path), c) for c in changes]
    return _apply(old, items) if items else old


def format_path(tokens: Iterable[Token]) -> str:
    parts: list[str] = []
    for i, (tag, value) in enumerate(tokens):
        if tag == "index":
            parts.append(f"[{value}]")
        elif tag == "item":
            parts.append(f"[{value}]" if _IDENT.fullmatch(value) else f"[{_quote(value)}]")
        elif _IDENT.fullmatch(value):
            parts.append(value if i == 0 else f".{value}")
        else:
            parts.append(f"[{_quote(value)}]")
    return "".join(parts)


def parse_path(path: str) -> list[Token]:
    """The tokens of a path; a bracketed name is a dict key or a keyed list item alike."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None or (m.group("key") and path[pos] != "." and pos != 0):
            raise ValueError(f"bad spec path {path!r} at position {pos}")
        if m.group("index") is not None:
            tokens.append(("index", int(m.group("index"))))
        elif m.group("quoted") is not None:
            tokens.append(("key", json.loads(m.group("quoted"))))
        else:
            tokens.append(("key", m.group("key") or m.group("ident")))
        pos = m.end()
    return tokens


def format_value(value: Any) -> str:
    """A compact, readable form: bare text for plain strings, JSON for the rest."""
    if value is ABSENT:
        return "(absent)"
    if isinstance(value, str) and value and value.strip() == value and not _looks_like_json(value):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


# -- internals -------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _looks_like_json(text: str) -> bool:
    if text in ("null", "true", "false") or text[0] in "[{\"'":
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: same shape, same scalar types, equal leaves."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _item_key(item: Any) -> str | None:
    if isinstance(item, dict):
        for field in ("name", "view"):
            key = item.get(field)
            if isinstance(key, str):
                return key
    return None


def _keys(items: list[Any]) -> list[str] | None:
    """The item keys when every item has one and none repeats; else None (match by index)."""
    keys = [_item_key(x) for x in items]
    if any(k is None for k in keys) or len(set(keys)) != len(keys):
        return None
    return keys  # type: ignore[return-value]


def _diff(old: Any, new: Any, path: tuple[Token, ...], out: list[FieldChange]) -> None:
    if _same(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            _diff(old.get(key, ABSENT), new.get(key, ABSENT), (*path, ("key", key)), out)
    elif isinstance(old, list | tuple) and isinstance(new, list | tuple):
        _diff_lists(list(old), list(new), path, out)
    else:  # a leaf, an added or removed value, or a change of type
        out.append(FieldChange(format_path(path), old, new))


def _diff_lists(old: list[Any], new: list[Any], path: tuple[Token, ...], out: list[Any]) -> None:
    old_keys, new_keys = _keys(old), _keys(new)
    if old_keys is not None and new_keys is not None and (old or new):
        # Removals, in-place edits and appends can rebuild the list; a reorder cannot.
        kept = [k for k in old_keys if k in set(new_keys)]
        added = [k for k in new_keys if k not in set(old_keys)]
        if kept + added != new_keys:
            out.append(FieldChange(format_path(path), old, new))
            return
        by_old = dict(zip(old_keys, old, strict=True))
        by_new = dict(zip(new_keys, new, strict=True))
        for key in [*old_keys, *added]:
            _diff(by_old.get(key, ABSENT), by_new.get(key, ABSENT), (*path, ("item", key)), out)
        return
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else ABSENT
        b = new[i] if i < len(new) else ABSENT
        _diff(a, b, (*path, ("index", i)), out)


def _apply(value: Any, items: list[tuple[list[Token], FieldChange]]) -> Any:
    for tokens, change in items:
        if not tokens:
            if len(items) != 1:
                raise ValueError(f"conflicting changes at {change.path!r}")
            return change.new
    groups: dict[Token, list[tuple[list[Token], FieldChange]]] = {}
    for tokens, change in items:
        groups.setdefault(tokens[0], []).append((tokens[1:], change))

    if isinstance(value, dict):
        result = dict(value)
        for (tag, key), sub in groups.items():
            if tag != "key":
                raise ValueError(f"index [{key}] used on an object")
            child = _apply(result.get(key, ABSENT), sub)
            if child is ABSENT:
                result.pop(key, None)
            else:
                result[key] = child
        return result

    if isinstance(value, list | tuple):
        value = list(value)
        if any(tag == "key" for tag, _ in groups):  # a keyed list
            out = []
            seen = set()
            for item in value:
                key = _item_key(item)
                seen.add(key)
                keyed = groups.get(("key", key))
                child = _apply(item, keyed) if keyed else item
                if child is not ABSENT:
                    out.append(child)
            for (_, key), sub in groups.items():
                if key not in seen:
                    child = _apply(ABSENT, sub)
                    if child is not ABSENT:
                        out.append(child)
            return out
        size = max([len(value), *(i + 1 for _, i in groups)])
        out = []
        for i in range(size):
            item = value[i] if i < len(value) else ABSENT
            at = groups.get(("index", i))
            child = _apply(item, at) if at else item
            if child is not ABSENT:
                out.append(child)
        return out

    raise ValueError(f"cannot apply {[c.path for _, c in items]} to the scalar {value!r}")
