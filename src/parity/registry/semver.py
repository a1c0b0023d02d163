"""Semantic versions: ``MAJOR.MINOR.PATCH`` per object, bumped from the field-level diff.

Every object starts at ``1.0.0``. An update is classified by its field changes (the
registry's ``diff_specs`` paths) with the one table of rules below, and the version bumps
by the strongest change: a major bump resets minor and patch, a minor bump resets patch.
A deleted object's record keeps the version it had; an object created again after a delete
continues at the next major version (its consumers lost it in between).

The rules (the README's table is this table), first match per change:

=============================================================  ======  ===================
change (a path of the diff)                                    bump    why
=============================================================  ======  ===================
a field of ``schema`` removed (a feature, an output, a          major   readers lose it
request field)
a field of ``schema`` added                                    minor   compatible addition
``schema[f].dtype`` widened (Int32→Int64, Float32→Float64,     minor   every old value fits
Int32→Float64, an Array of a widened type)
``schema[f].dtype`` any other change (another kind, narrowed)  major   readers break
``entities``, ``join_keys``, an entity's ``dtype``             major   keys change
``source`` of a view, a source's columns and location          major   values change
(``field_mapping``, ``timestamp_field``,
``created_timestamp_field``, ``path``, ``file_format``,
``source_type``, ``query``, stream settings)
an aggregation added                                           minor   a new feature
an aggregation changed or removed, ``hop``                     major   values change
an on-demand view's function (``udf``), inputs (``sources``,   major   values change
``request_sources``) or mode
``ttl`` shortened, or set where there was none                 major   fewer rows match
``ttl`` longer, or removed (no limit)                          minor   more rows match
``online`` turned off                                          major   serving stops
``online`` turned on                                           minor   serving starts
a service's view or feature removed (or a view narrowed from   major   readers lose it
all features to a list)
a service's view or feature added                              minor   compatible addition
a model's ``features`` (the service it reads)                  major   another input
``lifecycle`` set to retired or draft                          major   readers refused
``lifecycle`` set to active or deprecated (or its reason or    patch   still served
successor changed)
``description``, ``owner``, ``tags``, ``sla``, a field's       patch   metadata
``description`` or ``tags``, ``checks``, ``drift``,
``on_check_failure``, ``retention``, ``lawful_basis``,
``purposes``, ``encrypt`` (storage only)
anything else (``classification``, ``mask``, ``pii``, a        minor   behaviour changes,
role's permissions, ...)                                               schema does not
=============================================================  ======  ===================

``breaking(diff)`` is a major bump's reasons: what impact analysis and ``apply`` weigh.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from parity.errors import DefinitionError
from parity.registry.diff import ABSENT, FieldChange, parse_path

__all__ = [
    "FIRST",
    "Bump",
    "Reason",
    "SemVer",
    "bump",
    "classify",
    "classify_change",
    "next_version",
    "parse",
]

Bump = Literal["major", "minor", "patch"]
_ORDER = {"patch": 0, "minor": 1, "major": 2}
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)\Z")

_META = {"description", "owner", "tags", "sla", "checks", "drift", "on_check_failure"}
_META |= {"retention", "lawful_basis", "purposes", "encrypt", "classification_reason"}
_KEYS = {"entities", "join_keys"}
_SOURCE = {"source", "field_mapping", "timestamp_field", "created_timestamp_field", "path"}
_SOURCE |= {"file_format", "source_type", "query", "broker", "stream", "subject", "topic"}
_SOURCE |= {"stream_name", "format", "partition_by", "schema_source"}
_ON_DEMAND = {"udf", "sources", "request_sources", "mode"}
_WIDER = {("Int32", "Int64"), ("Float32", "Float64"), ("Int32", "Float64")}


@dataclass(frozen=True, order=True)
class SemVer:
    """A version ``major.minor.patch``; ``str()`` gives the text form."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def bumped(self, kind: Bump) -> SemVer:
        if kind == "major":
            return SemVer(self.major + 1, 0, 0)
        if kind == "minor":
            return SemVer(self.major, self.minor + 1, 0)
        return SemVer(self.major, self.minor, self.patch + 1)


FIRST = SemVer(1, 0, 0)


def parse(text: str, what: str = "version") -> SemVer:
    """``"1.2.0"`` as a ``SemVer``; anything else is a ``DefinitionError`` naming it."""
    m = _SEMVER.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise DefinitionError(f"{what}: {text!r} is not a version MAJOR.MINOR.PATCH like 1.2.0")
    return SemVer(int(m.group(1)), int(m.group(2)), int(m.group(3)))


@dataclass(frozen=True)
class Reason:
    """Why one field change bumps what it bumps."""

    path: str
    bump: Bump
    why: str

    def render(self) -> str:
        return f"{self.bump}: {self.path} ({self.why})"


def classify_change(kind: str, change: FieldChange) -> Reason:
    """The rule of the module's table that ``change`` (of an object of ``kind``) meets."""
    tokens = parse_path(change.path)
    head = tokens[0][1] if tokens else ""
    rest = tokens[1:]
    path = change.path
    if head in _META:
        return Reason(path, "patch", "metadata")
    if head == "lifecycle":
        if rest and rest[0][1] != "state":
            return Reason(path, "patch", "the lifecycle's reason or successor")
        state = _state(change.new)
        if state in ("retired", "draft"):
            return Reason(path, "major", f"now {state}: no longer served to every reader")
        return Reason(path, "patch", f"now {state}")
    if head == "schema":
        return _schema(path, rest, change)
    if head in _KEYS or (kind == "entity" and head == "dtype"):
        return Reason(path, "major", "entities or join keys changed")
    if kind == "model" and head == "features":
        return Reason(path, "major", "the model reads another service")
    if kind == "feature_service" and head == "features":
        return _service(path, rest, change)
    if head in _SOURCE:
        return Reason(path, "major", "the source or its columns changed")
    if head == "aggregations":
        if len(rest) == 1 and change.old is ABSENT:
            return Reason(path, "minor", "an aggregation added")
        if not rest and _appended(change.old, change.new):
            return Reason(path, "minor", "an aggregation added")
        return Reason(path, "major", "an aggregation changed or removed")
    if head in ("hop", "window"):
        return Reason(path, "major", "the window's hop changed")
    if kind == "on_demand_feature_view" and head in _ON_DEMAND:
        return Reason(path, "major", "the function or its inputs changed")
    if head == "ttl":
        return _ttl(path, change)
    if head == "online":
        if change.new is False or change.new is ABSENT:
            return Reason(path, "major", "no longer served online")
        return Reason(path, "minor", "served online")
    return Reason(path, "minor", "behaviour changed, schema did not")


def classify(kind: str, diff: Iterable[FieldChange]) -> tuple[Bump, tuple[Reason, ...]]:
    """The bump an update with ``diff`` makes and the reason for each change (a change of
    nothing is a patch: the content hash moved without a field change)."""
    reasons = tuple(classify_change(kind, c) for c in diff)
    if not reasons:
        return "patch", ()
    strongest = max(reasons, key=lambda r: _ORDER[r.bump]).bump
    return strongest, reasons


def bump(kind: str, diff: Iterable[FieldChange]) -> Bump:
    return classify(kind, diff)[0]


def next_version(
    kind: str,
    action: str,
    previous: SemVer | None,
    diff: Sequence[FieldChange],
    *,
    deleted: bool = False,
) -> SemVer:
    """The version a change writes: ``previous`` is the last version recorded for the object
    (None: never seen); ``deleted`` when that last record was its delete."""
    if action == "delete":
        return previous if previous is not None else FIRST
    if action == "create" or previous is None:
        if previous is None:
            return FIRST
        return previous.bumped("major") if deleted else previous
    return previous.bumped(bump(kind, diff))


# -- the rules' details ------------------------------------------------------------------------


def _schema(path: str, rest: list[tuple[str, Any]], change: FieldChange) -> Reason:
    if not rest:  # the whole list reported (reordered or retyped)
        return _whole_schema(path, change)
    if len(rest) == 1:  # a field added or removed
        if change.old is ABSENT:
            return Reason(path, "minor", "a field added")
        if change.new is ABSENT:
            return Reason(path, "major", "a field removed")
        return Reason(path, "major", "a field replaced")
    leaf = rest[1][1]
    if leaf in ("description", "tags"):
        return Reason(path, "patch", "metadata")
    if leaf == "encrypt" or leaf in _META:
        return Reason(path, "patch", "metadata")
    if leaf == "dtype":
        if _widens(change.old, change.new):
            return Reason(path, "minor", f"type widened {change.old} -> {change.new}")
        return Reason(path, "major", f"type changed {change.old} -> {change.new}")
    if leaf == "name":
        return Reason(path, "major", "a field renamed")
    return Reason(path, "minor", "a field's behaviour changed")


def _whole_schema(path: str, change: FieldChange) -> Reason:
    old, new = _names(change.old), _names(change.new)
    if old is None or new is None:
        return Reason(path, "major", "the schema was replaced")
    if set(old) - set(new):
        return Reason(path, "major", "a field removed")
    if set(new) - set(old):
        return Reason(path, "minor", "fields reordered and added")
    return Reason(path, "patch", "fields reordered")


def _names(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    names = [item.get("name") for item in value if isinstance(item, dict)]
    if len(names) != len(value) or not all(isinstance(n, str) for n in names):
        return None
    return [str(n) for n in names]


def _service(path: str, rest: list[tuple[str, Any]], change: FieldChange) -> Reason:
    if len(rest) <= 1:
        if change.old is ABSENT:
            return Reason(path, "minor", "a view added to the service")
        if change.new is ABSENT:
            return Reason(path, "major", "a view removed from the service")
        if not rest and _superset_service(change.old, change.new):
            return Reason(path, "minor", "views added to the service")
        return Reason(path, "major", "the service's views changed")
    old, new = change.old, change.new
    if len(rest) == 2:  # features[view].features: None (all) or a list
        if new is None or new is ABSENT:
            return Reason(path, "minor", "the service takes every feature of the view")
        if old is None or old is ABSENT:
            return Reason(path, "major", "the service takes fewer features of the view")
        if isinstance(old, list) and isinstance(new, list) and set(old) <= set(new):
            return Reason(path, "minor", "features added to the service")
        return Reason(path, "major", "features removed from the service")
    # features[view].features[i]: one name in the list changed, added or removed
    if change.old is ABSENT:
        return Reason(path, "minor", "a feature added to the service")
    return Reason(path, "major", "a feature removed from the service")


def _superset_service(old: Any, new: Any) -> bool:
    if not isinstance(old, list) or not isinstance(new, list):
        return False
    have = {item.get("view"): item.get("features") for item in new if isinstance(item, dict)}
    for item in old:
        if not isinstance(item, dict) or item.get("view") not in have:
            return False
        before, after = item.get("features"), have[item.get("view")]
        if after is None:
            continue
        if before is None or not set(before) <= set(after):
            return False
    return True


def _state(value: Any) -> str:
    """The lifecycle state a spec's ``lifecycle`` (or its ``state``) holds."""
    if isinstance(value, dict):
        return str(value.get("state", "active"))
    if isinstance(value, str):
        return value
    return "active"


def _appended(old: Any, new: Any) -> bool:
    return isinstance(old, list) and isinstance(new, list) and new[: len(old)] == old


def _ttl(path: str, change: FieldChange) -> Reason:
    from parity.definitions.base import parse_duration

    def length(value: Any) -> float | None:  # None: no limit
        if value is None or value is ABSENT:
            return None
        return parse_duration(value).total_seconds()

    old, new = length(change.old), length(change.new)
    if new is None:
        return Reason(path, "minor", "ttl removed: no limit")
    if old is None or new < old:
        return Reason(path, "major", "ttl shortened")
    return Reason(path, "minor", "ttl longer")


def _widens(old: Any, new: Any) -> bool:
    if not isinstance(old, str) or not isinstance(new, str):
        return False
    if (old, new) in _WIDER:
        return True
    inner = re.fullmatch(r"Array\((.+)\)", old), re.fullmatch(r"Array\((.+)\)", new)
    if inner[0] and inner[1]:
        return _widens(inner[0].group(1), inner[1].group(1))
    return False


def order(kind: Bump) -> int:
    return _ORDER[kind]
