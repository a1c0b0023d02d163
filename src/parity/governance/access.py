"""The access policy: which actor may do which action on which resource.

Actions: ``describe, apply, read_online, read_offline, write_online, write_offline,
materialize, read_pii, admin``. A resource is a registered object (kind, name, tags).
With ``auth.enabled`` false every actor may do everything (and ``enabled`` is False).

INTERFACE (the seams commit): the access helper implements the policy over the repo's
``Role`` definitions, default deny; other parts call only ``enabled``, ``allows`` and
``check``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from parity.governance.context import Actor

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["ACTIONS", "Access", "Resource"]

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


@dataclass(frozen=True)
class Resource:
    """A registered object as access control sees it."""

    kind: str
    name: str
    tags: Mapping[str, str] = field(default_factory=dict)


class Access:
    """The policy of one store (its catalog's roles and ``auth`` settings)."""

    def __init__(self, store: FeatureStore):
        self._store = store

    @property
    def enabled(self) -> bool:
        return self._store.config.auth.enabled

    def allows(self, actor: Actor, action: str, resource: Resource) -> bool:
        """Whether ``actor`` may do ``action`` on ``resource`` (its purpose considered)."""
        return not self.enabled

    def check(self, actor: Actor, action: str, resources: Sequence[Resource]) -> None:
        """Raise ``PermissionDeniedError`` (recorded in the audit log) unless ``actor`` may
        do ``action`` on every one of ``resources``."""
        if self.enabled:
            from parity.errors import PermissionDeniedError

            raise PermissionDeniedError(f"{actor.principal!r} may not {action}: no policy yet")
