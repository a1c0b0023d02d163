"""Governance's own hooks, installed in every ``FeatureStore`` before any other, in this
order: access checks (refuse before any work), decryption, restriction and masking (each
shapes what a read returns, decryption first), the audit log (records every outcome).
Parts that are off (``auth``, ``audit``, ``encryption`` in ``parity.yaml``) add nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parity.governance.audit_hooks import audit_hooks
from parity.hooks import Hooks

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["builtin_hooks"]


def builtin_hooks(store: FeatureStore) -> list[Hooks]:
    """The governance hooks ``store``'s configuration asks for, in their order."""
    hooks: list[Hooks] = []
    hooks.extend(audit_hooks(store))  # last: it records what the others decided
    return hooks
