"""The access policy: which actor may do which action on which resource.

Actions: ``describe, apply, read_online, read_offline, write_online, write_offline,
materialize, read_pii, admin``. A resource is a registered object (kind, name, tags), or
the project itself (kind ``project``: only a permission of ``kinds: ["*"]`` reaches it;
token management needs ``admin`` on it). A feature's resource is its view.

With ``auth.enabled`` false every actor may do everything (and ``enabled`` is False). On,
access is default deny over the repo's ``Role`` definitions (``parity.definitions.role``)
and the built-in role ``admin`` (every action on everything; the name is reserved): an
actor may do what some permission of one of its roles grants (see ``Role`` for matching).
A role an actor names that the registry does not hold grants nothing.

Decisions are cached per (roles, purpose, action, resource) until the catalog's revision
moves, so the hot path is one dict lookup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from parity.definitions.role import ACTIONS, Permission, Role
from parity.governance.context import Actor

if TYPE_CHECKING:
    from parity.registry.catalog import Catalog
    from parity.store import FeatureStore

__all__ = ["ACTIONS", "ADMIN_ROLE", "PROJECT", "Access", "Resource", "resources_of"]

PROJECT = "project"
"""The kind of the resource that is the project itself (tokens, restrictions, audit)."""

ADMIN_ROLE = Role.model_construct(
    name="admin",
    description="built in: every action on everything",
    owner="",
    tags={},
    permissions=[Permission(actions=("admin",))],
)
"""The built-in role: every action on everything. A repo cannot define another ``admin``."""


@dataclass(frozen=True)
class Resource:
    """A registered object as access control sees it."""

    kind: str
    name: str
    tags: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def grants(permission: Permission, action: str, resource: Resource, purpose: str | None) -> bool:
    """Whether ``permission`` lets an actor with ``purpose`` do ``action`` on ``resource``."""
    if action not in permission.actions and "admin" not in permission.actions:
        return False
    if "*" not in permission.kinds and resource.kind not in permission.kinds:
        return False
    if not any(fnmatchcase(resource.name, g) for g in permission.names):
        return False
    if any(resource.tags.get(k) != v for k, v in permission.tags.items()):
        return False
    return permission.purposes is None or purpose in permission.purposes


def resources_of(catalog: Catalog, kind: str, names: Iterable[str]) -> list[Resource]:
    """The resources of objects ``kind name`` with their tags (none for unknown names)."""
    out = []
    objects = catalog.objects.get(kind, {})
    for name in names:
        obj = objects.get(name)
        out.append(Resource(kind, name, obj.tags if obj is not None else {}))
    return out


_Key = tuple[tuple[str, ...], str | None, str, str, str, tuple[tuple[str, str], ...]]


class Access:
    """The policy of one store (its catalog's roles and ``auth`` settings)."""

    def __init__(self, store: FeatureStore):
        self._store = store
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._roles: dict[str, Role] = {}
        self._decisions: dict[_Key, bool] = {}

    @property
    def enabled(self) -> bool:
        return self._store.config.auth.enabled

    def roles(self) -> dict[str, Role]:
        """Every role by name: the repo's and the built-in ``admin``."""
        self._current()
        return dict(self._roles)

    def _current(self) -> dict[_Key, bool]:
        catalog = self._store.catalog()
        if catalog.revision != self._revision:
            with self._lock:
                if catalog.revision != self._revision:
                    found: dict[str, Any] = dict(catalog.objects.get("role", {}))
                    found["admin"] = ADMIN_ROLE
                    self._roles = found
                    self._decisions = {}
                    self._revision = catalog.revision
        return self._decisions

    def generation(self) -> object:
        """An object that stays the same while the roles do (a new one after an apply
        changed them): what a caller remembering decisions keys them by."""
        return self._current()

    def allows(self, actor: Actor, action: str, resource: Resource) -> bool:
        """Whether ``actor`` may do ``action`` on ``resource`` (its purpose considered)."""
        if not self.enabled:
            return True
        return self._allows(self._current(), actor, action, resource)

    def _allows(
        self, decisions: dict[_Key, bool], actor: Actor, action: str, resource: Resource
    ) -> bool:
        key: _Key = (
            actor.roles,
            actor.purpose,
            action,
            resource.kind,
            resource.name,
            tuple(sorted(resource.tags.items())) if resource.tags else (),
        )
        found = decisions.get(key)
        if found is None:
            found = self._decide(actor.roles, actor.purpose, action, resource)
            decisions[key] = found
        return found

    def _decide(
        self, roles: Sequence[str], purpose: str | None, action: str, resource: Resource
    ) -> bool:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
        for name in roles:
            role = self._roles.get(name)
            if role is not None and any(
                grants(p, action, resource, purpose) for p in role.permissions
            ):
                return True
        return False

    def is_admin(self, actor: Actor) -> bool:
        """Whether ``actor`` holds ``admin`` on the whole project (token management)."""
        return self.allows(actor, "admin", Resource(PROJECT, self._store.project))

    def check(
        self,
        actor: Actor,
        action: str,
        resources: Sequence[Resource | tuple[str, str]],
    ) -> None:
        """Raise ``PermissionDeniedError`` (recorded in the audit log) unless ``actor`` may
        do ``action`` on every one of ``resources``. ``(kind, name)`` pairs are looked up in
        the catalog for their tags. Code ``purpose_not_allowed`` when a permission would
        grant it for another purpose, else ``forbidden``."""
        if not self.enabled:
            return
        decisions = self._current()  # one catalog check per call, then dict lookups
        denied = []
        for res in resources:
            if not isinstance(res, Resource):
                res = resources_of(self._store.catalog(), res[0], [res[1]])[0]
            if not self._allows(decisions, actor, action, res):
                denied.append(res)
        if denied:
            raise self.denial(actor, action, denied)

    def denial(self, actor: Actor, action: str, denied: Sequence[Resource]) -> Exception:
        """The ``PermissionDeniedError`` for ``denied``, recorded in the audit log."""
        from parity.errors import PermissionDeniedError

        code = "forbidden"
        if any(self._for_other_purpose(actor, action, r) for r in denied):
            code = "purpose_not_allowed"
        names = ", ".join(f"{r.kind} {r.name!r}" for r in denied[:5])
        more = f" and {len(denied) - 5} more" if len(denied) > 5 else ""
        roles = ", ".join(actor.roles) or "none"
        if code == "purpose_not_allowed":
            why = (
                f"for purpose {actor.purpose!r}"
                if actor.purpose
                else "without a declared purpose (purpose= / X-Parity-Purpose)"
            )
            message = f"{actor.principal!r} may not {action} {names}{more} {why}"
        else:
            message = f"{actor.principal!r} (roles: {roles}) may not {action} {names}{more}"
            if actor.via == "local":
                message += " (no PARITY_TOKEN is set: running as the local user, without roles)"
        self._store.governance.audit.record(
            action=action,
            resources=[str(r) for r in denied],
            outcome="denied",
            detail=code,
            actor=actor,
        )
        return PermissionDeniedError(message, code=code)

    def _for_other_purpose(self, actor: Actor, action: str, resource: Resource) -> bool:
        for name in actor.roles:
            role = self._roles.get(name)
            for p in role.permissions if role is not None else ():
                if p.purposes is not None and grants(p, action, resource, p.purposes[0]):
                    return True
        return False
