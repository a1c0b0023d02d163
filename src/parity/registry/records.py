"""What the registry hands back: version records, consistent snapshots, not-found hints."""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from parity.definitions import KINDS, Definition, from_spec
from parity.errors import DefinitionError, ObjectNotFoundError, RegistryError
from parity.registry.diff import FieldChange

__all__ = ["RegistrySnapshot", "VersionRecord", "check_kind", "not_found", "rebuild"]


@dataclass(frozen=True)
class VersionRecord:
    """One version of one object: who wrote it, when, in which registry revision.

    ``version`` is the semantic version (``"1.2.0"``, bumped by ``registry.semver``'s
    rules); ``number`` counts the object's versions from 1. ``spec``/``content_hash`` are
    the object after the change; for a ``delete`` they are the object that was deleted.
    ``diff`` lists the field changes of an ``update`` (empty for a create or delete).
    ``note`` says why the version was written when it was more than an apply (an
    ``--allow-breaking`` override, a rollback). ``applied_at`` is timezone-aware UTC.
    """

    kind: str
    name: str
    number: int
    action: Literal["create", "update", "delete"]
    spec: dict[str, Any]
    content_hash: str
    diff: tuple[FieldChange, ...]
    author: str
    applied_at: datetime
    revision: int
    version: str = "1.0.0"
    note: str = ""
    code: str | None = None
    """An on-demand view's function source at this version, when it was known."""

    @property
    def definition(self) -> Definition:
        """The object as it was at this version (for a delete, as it was deleted)."""
        return rebuild(self.kind, self.spec, f"version {self.version}")

    @property
    def bump(self) -> str:
        """``major``, ``minor`` or ``patch`` for an update; ``""`` for a create or delete."""
        if self.action != "update":
            return ""
        from parity.registry.semver import bump

        return bump(self.kind, self.diff)


@dataclass(frozen=True)
class RegistrySnapshot:
    """Every live object of a project and the revision they belong to, read consistently."""

    project: str
    revision: int
    objects: tuple[Definition, ...]

    def list(self, kind: str | None = None) -> builtins.list[Definition]:
        """The live objects, optionally of one kind, sorted by (kind order, name)."""
        if kind is not None:
            check_kind(kind)
        return [o for o in self.objects if kind is None or o.kind == kind]

    def get(self, kind: str, name: str) -> Definition:
        """One live object; ``ObjectNotFoundError`` with close names as a hint."""
        check_kind(kind)
        for o in self.objects:
            if o.kind == kind and o.name == name:
                return o
        raise not_found(self.project, kind, name, ((o.kind, o.name) for o in self.objects))

    def find(self, name: str) -> builtins.list[Definition]:
        """Live objects of any kind called ``name``."""
        return [o for o in self.objects if o.name == name]


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise DefinitionError(f"unknown definition kind {kind!r}; known: {list(KINDS)}")


def not_found(
    project: str,
    kind: str,
    name: str,
    live: Iterable[tuple[str, str]],
    *,
    deleted_at: int | None = None,
) -> ObjectNotFoundError:
    """An ``ObjectNotFoundError`` whose hint names close matches and same-named objects."""
    live = list(live)
    # kind "object" means any kind (a lookup by name alone)
    same_kind = sorted({n for k, n in live if k == kind or kind == "object"})
    hints = []
    if deleted_at is not None:
        hints.append(f"it was deleted in revision {deleted_at}")
    close = difflib.get_close_matches(name, same_kind, n=3, cutoff=0.6)
    if close:
        hints.append("did you mean " + " or ".join(repr(c) for c in close) + "?")
    elsewhere = sorted(k for k, n in live if n == name and k != kind)
    if elsewhere:
        hints.append(f"{name!r} exists as {', '.join(elsewhere)}")
    if not same_kind:
        hints.append(f"the project has no {kind} yet")
    elif not close and len(same_kind) <= 10:
        hints.append(f"known {kind}s: {', '.join(same_kind)}")
    return ObjectNotFoundError(kind, name, project, "; ".join(hints))


def rebuild(kind: str, spec: dict[str, Any], what: str = "live") -> Definition:
    """A definition from a stored spec; a spec this code cannot read is a registry error."""
    try:
        return from_spec(kind, spec)
    except DefinitionError as exc:
        raise RegistryError(
            f"the registry holds a {kind} ({what}) this version of Parity cannot read: {exc}"
        ) from exc


@dataclass(frozen=True)
class MaterializationRecord:
    """One materialization run of one view: the event-time window it loaded."""

    view: str
    start: datetime
    end: datetime
    rows: int
    stored: int
    finished_at: datetime
