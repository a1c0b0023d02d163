"""The observers monitoring puts on every store: the write gate and the freshness marks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parity.hooks import Hooks
    from parity.store import FeatureStore

__all__ = ["builtin_hooks", "settle"]


def builtin_hooks(store: FeatureStore) -> list[Hooks]:
    """The hooks a ``FeatureStore`` starts with: quality gating of writes
    (``parity.monitoring.gate``) and the newest event time per view
    (``parity.monitoring.watermarks``)."""
    from parity.monitoring.gate import QualityGate
    from parity.monitoring.watermarks import Watermarks

    return [QualityGate(), Watermarks(lambda: store.registry)]


def settle(store: FeatureStore) -> None:
    """Write what monitoring's hooks hold back (the freshness marks throttled in memory):
    ``store.close()`` calls it, so a process that closes its store leaves the registry
    exact. Never raises (a registry that cannot be written is logged)."""
    from parity.monitoring.watermarks import Watermarks

    for hook in store.hooks:
        if isinstance(hook, Watermarks):
            hook.flush()
