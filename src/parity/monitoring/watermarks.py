"""The newest event time that reached each view (placeholder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from parity.hooks import Hooks

if TYPE_CHECKING:
    from parity.registry import Registry

__all__ = ["Watermarks"]


class Watermarks(Hooks):
    """Records the newest event time written per view (to be built)."""

    def __init__(self, registry: Callable[[], Registry]):
        self._registry = registry
