"""Plans: what an apply would do (or did), object by object, field by field.

``compute_plan`` is pure: it compares the live objects with the desired ones by content hash
and never touches a database, so the registry can run it inside its write transaction on the
state it read under the lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from parity.definitions import KINDS
from parity.registry.diff import FieldChange, diff_specs

if TYPE_CHECKING:
    from parity.registry.impact import Impact
    from parity.registry.semver import Reason

__all__ = ["Action", "Change", "Plan", "Stored", "compute_plan", "sort_key"]

Action = Literal["create", "update", "delete", "unchanged"]

_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}
_SYMBOL = {"create": "+", "update": "~", "delete": "-", "unchanged": " "}


def sort_key(kind: str, name: str) -> tuple[int, str, str]:
    """Dependency order of kinds (entities first), then name."""
    return (_KIND_ORDER.get(kind, len(_KIND_ORDER)), kind, name)


@dataclass(frozen=True)
class Stored:
    """An object's spec and content hash, as stored or as desired."""

    spec: dict[str, Any]
    content_hash: str


@dataclass(frozen=True)
class Change:
    """What happens to one object. ``old``/``new`` are specs (None when there is none)."""

    kind: str
    name: str
    action: Action
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    diff: tuple[FieldChange, ...] = ()

    @property
    def bump(self) -> str:
        """The semantic-version bump of an update (``major``, ``minor``, ``patch``); a
        create starts at 1.0.0 and a delete keeps its version (``""`` for both)."""
        if self.action != "update":
            return ""
        from parity.registry.semver import bump

        return bump(self.kind, self.diff)

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """Each field change's rule (``registry.semver``)."""
        from parity.registry.semver import classify

        return classify(self.kind, self.diff)[1] if self.action == "update" else ()

    def render(self) -> str:
        """``~ feature_view driver_stats (major)`` followed by one indented line per field
        change."""
        bump = f" ({self.bump})" if self.bump else ""
        lines = [f"{_SYMBOL[self.action]} {self.kind} {self.name}{bump}"]
        if self.action == "update":
            lines += [f"    {fc.render()}" for fc in self.diff]
        return "\n".join(lines)


@dataclass(frozen=True)
class Plan:
    """Every object's change, sorted by (kind in dependency order, name).

    ``base_revision`` is the registry revision the plan was computed against; after an apply,
    ``revision`` is the revision it produced (equal to ``base_revision`` when nothing changed).
    A plan that was only computed has ``revision=None``. ``impacts`` are the downstream
    objects each change reaches and whether it breaks them (``registry.impact``).
    """

    changes: tuple[Change, ...]
    base_revision: int | None = None
    revision: int | None = None
    impacts: tuple[Impact, ...] = ()
    """What each change reaches downstream (``registry.impact``), when analysed."""

    @property
    def has_changes(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def of(self, *actions: Action) -> tuple[Change, ...]:
        """The changes with one of ``actions``: ``plan.of("create", "update")``."""
        return tuple(c for c in self.changes if c.action in actions)

    def summary(self) -> str:
        """``"2 to create, 1 to change, 0 to delete"``."""
        counts = {a: len(self.of(a)) for a in ("create", "update", "delete")}
        return (
            f"{counts['create']} to create, {counts['update']} to change, "
            f"{counts['delete']} to delete"
        )

    @property
    def breaking(self) -> tuple[Impact, ...]:
        """The impacts that break a feature service or a model."""
        return tuple(i for i in self.impacts if i.blocks)

    def render(self) -> str:
        """A terraform-like, human-readable diff, ending with the summary."""
        impacts = {(i.kind, i.name): i for i in self.impacts}
        changed = []
        for c in self.changes:
            if c.action == "unchanged":
                continue
            found = impacts.get((c.kind, c.name))
            changed.append(c.render() + (f"\n{found.render()}" if found and found.reached else ""))
        unchanged = len(self.of("unchanged"))
        if not changed:
            return f"No changes; {unchanged} object(s) up to date."
        tail = f"Plan: {self.summary()}" + (f" ({unchanged} unchanged)." if unchanged else ".")
        return "\n".join([*changed, "", tail])

    def __str__(self) -> str:
        return self.render()


def compute_plan(
    live: Mapping[tuple[str, str], Stored],
    desired: Mapping[tuple[str, str], Stored],
    *,
    delete_missing: bool = False,
) -> Plan:
    """The changes that turn ``live`` into ``desired``; both keyed by (kind, name).

    Objects live but not desired are deleted only with ``delete_missing``, otherwise left
    alone and not listed. A desired object that says nothing of its lifecycle keeps the one
    it has (``definitions.lifecycle``: ``parity lifecycle`` is not undone by an apply).
    """
    changes: list[Change] = []
    for key, want in desired.items():
        want = _keep_lifecycle(live.get(key), want)
        kind, name = key
        have = live.get(key)
        if have is None:
            changes.append(Change(kind, name, "create", None, want.spec))
        elif have.content_hash == want.content_hash:
            changes.append(Change(kind, name, "unchanged", have.spec, want.spec))
        else:
            diff = diff_specs(have.spec, want.spec)
            changes.append(Change(kind, name, "update", have.spec, want.spec, diff))
    if delete_missing:
        for key, have in live.items():
            if key not in desired:
                changes.append(Change(key[0], key[1], "delete", have.spec, None))
    changes.sort(key=lambda c: sort_key(c.kind, c.name))
    return Plan(tuple(changes))


def _keep_lifecycle(have: Stored | None, want: Stored) -> Stored:
    if have is None or "lifecycle" in want.spec or "lifecycle" not in have.spec:
        return want
    from parity.definitions import spec_hash

    spec = {**want.spec, "lifecycle": have.spec["lifecycle"]}
    return Stored(spec, spec_hash(spec))
