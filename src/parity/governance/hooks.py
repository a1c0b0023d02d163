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
    from parity.governance.policies import PolicyHooks

    hooks: list[Hooks] = []
    if store.config.auth.enabled:
        from parity.governance.enforce import AccessHooks

        hooks.append(AccessHooks(store))
    hooks.append(PolicyHooks(store))  # apply-time policies and encrypt=True's rules
    # decryption: the online store boundary and the offline log (governance.sealing), no hook
    # restriction and masking: always, since restricted keys are masked with auth off too
    from parity.governance.shaping import MaskingHooks

    hooks.append(MaskingHooks(store))
    hooks.extend(audit_hooks(store))  # last: it records what the others decided
    return hooks
