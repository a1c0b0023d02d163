"""Old versions: find one by its semantic version, diff two, apply one again (rollback).

``find(records, "1.2.0")`` picks the version written as 1.2.0 (a delete keeps the version it
deleted, so the create or update is the one found); ``compare`` is the field-level diff
between two versions and, for on-demand views, a unified diff of their functions' source;
``rollback`` applies an old spec again as a new version, through the ordinary apply (so it
is validated, its impact weighed and its semantic version bumped from the diff), noting
``rollback to X`` in the history.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from parity.errors import DefinitionError, ObjectNotFoundError
from parity.registry.diff import FieldChange, diff_specs
from parity.registry.records import VersionRecord
from parity.registry.semver import parse

if TYPE_CHECKING:
    from parity.registry.plan import Plan
    from parity.store import FeatureStore

__all__ = ["Comparison", "compare", "find", "one_kind", "rollback", "set_lifecycle", "split_ref"]


@dataclass(frozen=True)
class Comparison:
    """Two versions of one object: the field changes and, for an on-demand view, the code
    diff (``""`` when the code did not change or was not recorded)."""

    old: VersionRecord
    new: VersionRecord
    changes: tuple[FieldChange, ...]
    code_diff: str


def split_ref(text: str) -> tuple[str, str | None]:
    """``"name@1.2.0"`` as ``("name", "1.2.0")``; a plain name as ``(name, None)``."""
    name, sep, version = text.partition("@")
    if not sep:
        return text, None
    parse(version, f"{name}@{version}")
    return name, version.strip()


def one_kind(records: Sequence[VersionRecord], name: str) -> list[VersionRecord]:
    """``records`` of one kind; a ``DefinitionError`` when ``name`` is used by several."""
    kinds = sorted({r.kind for r in records})
    if len(kinds) > 1:
        raise DefinitionError(
            f"{name!r} is the name of several kinds ({', '.join(kinds)}); give the kind "
            "(--kind, or kind= in Python)"
        )
    return list(records)


def find(records: Sequence[VersionRecord], version: str) -> VersionRecord:
    """The version written as ``version`` (``ObjectNotFoundError`` listing the known ones)."""
    wanted = str(parse(version))
    found = [r for r in records if r.version == wanted and r.action != "delete"]
    if found:
        return found[-1]
    first = records[0] if records else None
    known = ", ".join(dict.fromkeys(r.version for r in records if r.action != "delete"))
    raise ObjectNotFoundError(
        f"{first.kind} version" if first else "version",
        f"{first.name}@{wanted}" if first else wanted,
        None,
        f"its versions are {known}" if known else "it has no versions",
    )


def compare(records: Sequence[VersionRecord], old: str, new: str) -> Comparison:
    a, b = find(records, old), find(records, new)
    code = ""
    if a.kind == "on_demand_feature_view" and a.code is not None and b.code is not None:
        code = "".join(
            difflib.unified_diff(
                a.code.splitlines(keepends=True),
                b.code.splitlines(keepends=True),
                fromfile=f"{a.name}@{a.version}",
                tofile=f"{b.name}@{b.version}",
            )
        )
    return Comparison(a, b, diff_specs(a.spec, b.spec), code)


def rollback(
    store: FeatureStore,
    name: str,
    to: str,
    *,
    kind: str | None = None,
    author: str | None = None,
    allow_breaking: bool = False,
) -> Plan:
    """Apply version ``to`` of ``name`` again as a new version (see the module docstring)."""
    from parity.registry import apply

    records = one_kind(store.history(name, kind), name)
    target = find(records, to)
    definition = target.definition
    note = {(target.kind, target.name): f"rollback to {target.version}"}
    return apply.apply(
        store._apply_context(),
        [definition],
        False,
        author,
        allow_breaking=allow_breaking,
        notes=note,
    )


def set_lifecycle(
    store: FeatureStore,
    name: str,
    state: str,
    *,
    reason: str = "",
    successor: str | None = None,
    kind: str | None = None,
    author: str | None = None,
    allow_breaking: bool = False,
) -> Plan:
    """Set the registered object's lifecycle (``definitions.lifecycle``) as a new version
    through the ordinary apply: validated (the successor must exist), weighed for impact
    (retiring or drafting what a service or model reads needs ``allow_breaking``), noted."""
    from parity.definitions.lifecycle import STATES, Lifecycle
    from parity.registry import apply

    if state not in STATES:
        raise DefinitionError(f"lifecycle: the state is one of {', '.join(STATES)}, not {state!r}")
    records = one_kind(store.history(name, kind), name)
    last = records[-1]
    if last.action == "delete":
        raise ObjectNotFoundError(last.kind, name, store.project, "it was deleted")
    current = store.catalog(fresh=True).get(last.kind, name)
    wanted = Lifecycle(state=state, reason=reason, successor=successor)  # type: ignore[arg-type]
    changed = current.model_copy(update={"lifecycle": wanted})
    note = {(last.kind, name): f"lifecycle {wanted.describe()}"}
    return apply.apply(
        store._apply_context(), [changed], False, author, allow_breaking=allow_breaking, notes=note
    )
