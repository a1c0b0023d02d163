"""Roles: named sets of permissions, declared in the repo like any other definition.

::

    Role("analyst", permissions=[
        Permission(actions=["describe", "read_online"], kinds=["feature_view"],
                   names=["driver_*"], tags={"team": "risk"}),
        Permission(actions=["read_pii"], names=["driver_*"], purposes=["fraud"]),
    ])

A permission grants each of its ``actions`` on every resource whose kind is one of
``kinds`` (``"*"``: any kind), whose name matches one of the ``names`` globs (fnmatch,
case-sensitive) and whose tags include every one of ``tags``; with ``purposes`` it grants
only to a caller that declared one of them. ``admin`` grants every action on everything.
Access is default deny: what no permission grants is refused (``parity.governance.access``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import field_validator

from parity.definitions.base import Definition
from parity.definitions.entity import Entity
from parity.definitions.feature_service import FeatureService
from parity.definitions.feature_view import FeatureView, _Part
from parity.definitions.on_demand import OnDemandFeatureView
from parity.definitions.source import DataSource

__all__ = ["ACTIONS", "RESOURCE_KINDS", "Permission", "Role"]

ACTIONS = (
    "describe",
    "apply",
    "read_online",
    "read_offline",
    "write_online",
    "write_offline",
    "materialize",
    "read_pii",
    "admin",
)
"""Every action a permission may grant; ``admin`` implies all the others."""

RESOURCE_KINDS = (
    Entity.kind,
    DataSource.kind,
    FeatureView.kind,
    OnDemandFeatureView.kind,
    FeatureService.kind,
    "model",
    "role",
)
"""The registry's kinds (``parity.definitions.KINDS``, which lists this module's too)."""


def _texts(v: Any, what: str) -> Any:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list | tuple | set | frozenset):
        bad = [x for x in v if not isinstance(x, str) or not x]
        if bad:
            raise ValueError(f"{what} must be non-empty text, got {bad[0]!r}")
        return tuple(sorted(set(v))) if isinstance(v, set | frozenset) else tuple(v)
    return v


class Permission(_Part):
    """Some actions on the resources a kind, name and tag filter selects (see the module)."""

    _label: ClassVar[str] = "permission"
    _sparse: ClassVar[tuple[str, ...]] = ("purposes",)

    actions: tuple[str, ...]
    kinds: tuple[str, ...] = ("*",)
    names: tuple[str, ...] = ("*",)
    tags: dict[str, str] = {}
    purposes: tuple[str, ...] | None = None

    @field_validator("actions", mode="before")
    @classmethod
    def _known_actions(cls, v: Any) -> Any:
        v = _texts(v, "actions")
        if isinstance(v, tuple):
            if not v:
                raise ValueError("a permission needs at least one action")
            unknown = [a for a in v if a not in ACTIONS]
            if unknown:
                raise ValueError(f"unknown action {unknown[0]!r}; known: {', '.join(ACTIONS)}")
        return v

    @field_validator("kinds", mode="before")
    @classmethod
    def _known_kinds(cls, v: Any) -> Any:
        v = _texts(v, "kinds")
        if isinstance(v, tuple):
            if not v:
                raise ValueError('a permission needs at least one kind (or "*")')
            unknown = [k for k in v if k != "*" and k not in RESOURCE_KINDS]
            if unknown:
                raise ValueError(
                    f"unknown kind {unknown[0]!r}; known: *, {', '.join(RESOURCE_KINDS)}"
                )
        return v

    @field_validator("names", mode="before")
    @classmethod
    def _globs(cls, v: Any) -> Any:
        v = _texts(v, "names")
        if isinstance(v, tuple) and not v:
            raise ValueError('a permission needs at least one name glob (or "*")')
        return v

    @field_validator("purposes", mode="before")
    @classmethod
    def _purposes(cls, v: Any) -> Any:
        v = _texts(v, "purposes")
        if isinstance(v, tuple) and not v:
            raise ValueError("purposes: give at least one purpose, or leave it out")
        return v

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_as_text(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): str(val) for k, val in v.items()}
        return v


class Role(Definition):
    """A named list of permissions; tokens and principals are given roles by name."""

    kind: ClassVar[str] = "role"

    permissions: list[Permission] = []

    def __init__(
        self,
        name: str,
        permissions: Sequence[Permission | dict[str, Any]] = (),
        **data: Any,
    ) -> None:
        super().__init__(name=name, permissions=list(permissions), **data)

    def actions(self) -> set[str]:
        """Every action some permission of the role names."""
        return {a for p in self.permissions for a in p.actions}
