"""Time-window aggregations: one feature computed over an entity's events in a window.

The value at time ``t`` aggregates the entity's events with event time in ``(start, t]``,
``start = t - window``, or with a view ``hop``, ``start`` rounded down to a multiple of the hop
(from the Unix epoch). No events: ``count`` (and ``count_distinct``,
``approx_count_distinct``) is 0, every other function null. Null values are skipped by every
function but ``count`` without a column, which counts events.

YAML: ``transformation: window_sum(7d)`` with ``column: amount`` maps to
``Aggregation(column="amount", function="sum", window=timedelta(days=7))``;
``window_last_n(7d, 5)`` passes ``n``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import ValidationError as PydanticValidationError

from parity import types as T
from parity.definitions.base import Duration, Name, definition_error, format_duration

FUNCTIONS = (
    "count",
    "sum",
    "mean",
    "min",
    "max",
    "stddev",
    "first",
    "last",
    "last_n",
    "count_distinct",
    "approx_count_distinct",
)
"""Every aggregation function, in the order the docs list them."""

_NEEDS_NUMBER = {"sum", "mean", "stddev"}
_ORDERED = {"min", "max"}
_HASHABLE = (T.Int32, T.Int64, T.String, T.Bool)
"""Types ``approx_count_distinct`` hashes: their text form is the same in every engine."""
MAX_LAST_N = 1000
_YAML_RE = re.compile(r"^window_([a-z_]+)\(\s*([^,()]+?)\s*(?:,\s*(\d+)\s*)?\)$")


class Aggregation(BaseModel):
    """``function`` of ``column`` over ``window``; ``name`` defaults to e.g. ``amount_sum_30d``.

    ``count`` without a column counts events; every other function needs a column. ``n`` is
    the list length of ``last_n`` (most recent first).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    _label: ClassVar[str] = "aggregation"

    function: str
    window: Duration
    column: Name | None = None
    name: Name | None = None
    n: int | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except PydanticValidationError as exc:
            raise definition_error(
                self._label, data.get("name") or data.get("function"), exc
            ) from None

    @model_validator(mode="after")
    def _check(self) -> Aggregation:
        if self.function not in FUNCTIONS:
            raise ValueError(f"function {self.function!r} is not one of {list(FUNCTIONS)}")
        if self.window <= timedelta(0):
            raise ValueError(f"window must be positive, got {self.window}")
        if self.window % timedelta(microseconds=1):
            raise ValueError(f"window must be whole microseconds, got {self.window}")
        if self.column is None and self.function != "count":
            raise ValueError(f"{self.function} needs a column")
        if self.function == "last_n":
            if self.n is None or not 1 <= self.n <= MAX_LAST_N:
                raise ValueError(f"last_n needs n between 1 and {MAX_LAST_N}, got {self.n}")
        elif self.n is not None:
            raise ValueError(f"n is only for last_n, not {self.function}")
        return self

    @property
    def output_name(self) -> str:
        if self.name:
            return self.name
        window = format_duration(self.window)
        fn = f"last_{self.n}" if self.function == "last_n" else self.function
        return f"{self.column}_{fn}_{window}" if self.column else f"{fn}_{window}"

    @property
    def window_us(self) -> int:
        return self.window // timedelta(microseconds=1)

    def output_type(self, column_type: T.ValueType | None) -> T.ValueType:
        """The feature's type given the column's (None for ``count`` of events)."""
        fn = self.function
        if fn in ("count", "count_distinct", "approx_count_distinct"):
            return T.Int64
        assert column_type is not None
        if fn == "sum":
            return T.Int64 if column_type in (T.Int32, T.Int64) else T.Float64
        if fn in ("mean", "stddev"):
            return T.Float64
        if fn == "last_n":
            return T.Array(column_type)
        return column_type

    def problems(self, column_type: T.ValueType | None) -> list[str]:
        """Why this function cannot run over a column of ``column_type`` (empty: it can)."""
        fn, where = self.function, f"aggregation {self.output_name!r}"
        if column_type is None:
            return []
        numeric = column_type in (T.Int32, T.Int64, T.Float32, T.Float64)
        if fn in _NEEDS_NUMBER and not numeric:
            return [f"{where}: {fn} needs a number column, {self.column!r} is {column_type}"]
        if isinstance(column_type, T.Array) and fn not in ("count", "first", "last"):
            return [f"{where}: {fn} cannot run over the array column {self.column!r}"]
        if fn in _ORDERED and column_type is T.Bytes:
            return [f"{where}: {fn} cannot order the bytes column {self.column!r}"]
        if fn == "approx_count_distinct" and column_type not in _HASHABLE:
            return [
                f"{where}: approx_count_distinct hashes Int32, Int64, String or Bool columns, "
                f"{self.column!r} is {column_type} (use count_distinct)"
            ]
        return []

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"function": self.function, "window": format_duration(self.window)}
        for key in ("column", "name", "n"):
            if getattr(self, key) is not None:
                spec[key] = getattr(self, key)
        return spec


def aggregation_from_yaml(transformation: str, column: str | None, name: str | None) -> Aggregation:
    """``window_sum(7d)`` (and ``window_last_n(7d, 5)``) as an Aggregation."""
    m = _YAML_RE.match(transformation.strip())
    if not m:
        raise ValueError(
            f"transformation {transformation!r}: expected window_<function>(<window>), "
            f"e.g. window_count(30d) or window_sum(7d); functions: {', '.join(FUNCTIONS)}"
        )
    fn, window, n = m.group(1), m.group(2), m.group(3)
    return Aggregation(
        function=fn, window=window, column=column, name=name, n=int(n) if n else None
    )


__all__ = ["FUNCTIONS", "Aggregation", "aggregation_from_yaml"]
