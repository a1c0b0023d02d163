"""The observers monitoring puts on every store: the write gate and the freshness marks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parity.hooks import Hooks
    from parity.store import FeatureStore

__all__ = ["builtin_hooks"]


def builtin_hooks(store: FeatureStore) -> list[Hooks]:
    """The hooks a ``FeatureStore`` starts with: quality gating of writes
    (``parity.monitoring.gate``) and the newest event time per view
    (``parity.monitoring.watermarks``)."""
    from parity.monitoring.gate import QualityGate
    from parity.monitoring.watermarks import Watermarks

    return [QualityGate(), Watermarks(lambda: store.registry)]
