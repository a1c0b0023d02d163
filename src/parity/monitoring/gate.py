"""The write gate: a view's checks evaluated on each batch written (placeholder)."""

from __future__ import annotations

from parity.hooks import Hooks

__all__ = ["QualityGate"]


class QualityGate(Hooks):
    """Evaluates ``on_check_failure`` views' checks before a write (to be built)."""
