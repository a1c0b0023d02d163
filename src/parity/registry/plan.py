"""Plans: what an apply would do (or did), object by object, field by field.

``compute_plan`` is pure: it compares the live objects with the desired ones by content hash
and never touches a database, so the registry can run it inside its write transaction on the
state it read under the lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
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


class Stored:
    """An object's spec and content hash, as stored or as desired. The spec may be given
    as its JSON text (as the registry stores it) or as a function making it (a
    definition's ``stored_spec``), worked out only when asked for: a plan of thousands
    of unchanged objects compares hashes and needs no spec."""

    __slots__ = ("_spec", "content_hash")

    def __init__(
        self, spec: dict[str, Any] | str | Callable[[], dict[str, Any]], content_hash: str
    ):
        self._spec = spec
        self.content_hash = content_hash

    @property
    def spec(self) -> dict[str, Any]:
        spec = self._spec
        if isinstance(spec, str):
            spec = self._spec = json.loads(spec)
        elif callable(spec):
            spec = self._spec = spec()
        return spec

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stored):
            return NotImplemented
        return self.content_hash == other.content_hash and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(self.content_hash)

    def __repr__(self) -> str:
        return f"Stored(content_hash={self.content_hash!r})"


class Change:
    """What happens to one object. ``old``/``new`` are specs (None when there is none);
    an immutable value. Either may be given as a ``Stored``, whose spec is read when
    first asked for (an unchanged object's, seldom)."""

    __slots__ = ("_new", "_old", "action", "diff", "kind", "name")

    kind: str
    name: str
    action: Action
    diff: tuple[FieldChange, ...]
    _old: dict[str, Any] | Stored | None
    _new: dict[str, Any] | Stored | None

    def __init__(
        self,
        kind: str,
        name: str,
        action: Action,
        old: dict[str, Any] | Stored | None,
        new: dict[str, Any] | Stored | None,
        diff: tuple[FieldChange, ...] = (),
    ):
        for attr, value in (
            ("kind", kind),
            ("name", name),
            ("action", action),
            ("_old", old),
            ("_new", new),
            ("diff", tuple(diff)),
        ):
            object.__setattr__(self, attr, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Change is immutable: cannot set {name!r}")

    @property
    def old(self) -> dict[str, Any] | None:
        return self._old.spec if isinstance(self._old, Stored) else self._old

    @property
    def new(self) -> dict[str, Any] | None:
        return self._new.spec if isinstance(self._new, Stored) else self._new

    def _key(self) -> tuple[Any, ...]:
        return (self.kind, self.name, self.action, self.old, self.new, self.diff)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Change):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.kind, self.name, self.action, self.diff))

    def __repr__(self) -> str:
        return (
            f"Change(kind={self.kind!r}, name={self.name!r}, action={self.action!r}, "
            f"old={self.old!r}, new={self.new!r}, diff={self.diff!r})"
        )

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
        kind, name = key
        have = live.get(key)
        if have is not None and have.content_hash != want.content_hash:
            want = _keep_lifecycle(have, want)
        if have is None:
            changes.append(Change(kind, name, "create", None, want.spec))
        elif have.content_hash == want.content_hash:  # equal hashes, equal specs
            changes.append(Change(kind, name, "unchanged", want, want))
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
