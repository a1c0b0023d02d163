"""The audit log: who did what, when, to which resources, with what outcome.

INTERFACE (the seams commit): the audit helper implements the hash-chained log in the
registry database. Other parts call ``store.governance.audit.record(...)``; when the log is
off (``audit.enabled``, default: ``auth.enabled``) recording does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from parity.governance.context import Actor

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["NullAudit", "Outcome", "audit_log"]

Outcome = Literal["ok", "denied", "error"]


class NullAudit:
    """The recorder when the audit log is off: records nothing."""

    enabled = False

    def record(
        self,
        *,
        action: str,
        resources: Sequence[str] = (),
        counts: Mapping[str, int] | None = None,
        outcome: Outcome = "ok",
        detail: str = "",
        actor: Actor | None = None,
    ) -> None:
        """Append one record (``resources`` as ``kind:name`` text, ``counts`` such as
        ``{"keys": 3}``; never values or secrets); raises ``AuditError`` if it cannot."""


def audit_log(store: FeatureStore) -> NullAudit:
    """The store's audit log (a ``NullAudit`` while it is off)."""
    return NullAudit()
