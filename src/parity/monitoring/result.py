"""The result of a monitoring call: a ``pyarrow.Table`` with what it is about.

Every call (``store.profile``, ``check``, ``drift``, ``freshness``, ``skew``) returns one;
``.table`` is the data (one row per feature, test or view), ``.to_pandas()`` a frame of it,
and ``.id`` the registry id it was stored under (None when it was not stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MonitorResult"]


@dataclass(frozen=True)
class MonitorResult:
    """One monitoring result: ``table`` and what it covers."""

    kind: str
    """``profile`` | ``check`` | ``drift`` | ``freshness`` | ``skew``."""
    table: pa.Table
    view: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    scope: str = "offline"
    """Where the values came from: ``offline``, ``online``, a baseline's name..."""
    id: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    """What a listing shows without the table (counts, verdicts)."""

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def to_pylist(self) -> list[dict[str, Any]]:
        return self.table.to_pylist()

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def num_rows(self) -> int:
        return self.table.num_rows
