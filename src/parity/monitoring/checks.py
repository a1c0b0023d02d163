"""Quality checks: the rules declared on fields (``Field.checks``) evaluated over Arrow rows.

``evaluate(table, fields)`` is the one evaluation: ``store.check`` / ``parity check`` run it
over a view's source rows in a range, the write gate (``parity.monitoring.gate``) over each
batch written, the monitor on its schedule. It is vectorised (``pyarrow.compute``), one pass
per rule.

What each rule means (NaN counts as null: a missing value, never a number):

- ``max_null_ratio``  nulls / all rows <= the ratio; offending rows: the nulls
- ``min`` / ``max``   every non-null value >= min / <= max; observed: the smallest / largest
- ``allowed``         every non-null value is one of the list; observed: how many are not
- ``min_unique``      distinct non-null values >= n; observed: that count (no rows offend)
- ``unique``          no non-null value repeats; observed and offending rows: the repeats
                      (each row whose value an earlier row had)
- ``max_outlier_ratio``  values outside [p25 - k*IQR, p75 + k*IQR] (quantiles by linear
                      interpolation, k = ``outlier_k``) / non-null values <= the ratio

On no rows every rule passes but ``min_unique``; on no non-null values ``min``, ``max`` and
the outlier ratio pass with no observed value. ``CheckFailedError`` is how a blocking view
refuses a batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from parity.definitions import FeatureView, Field
from parity.errors import MonitoringError
from parity.ingest.rows import IngestError
from parity.monitoring.result import MonitorResult
from parity.monitoring.sources import EVENT_US, fields_of, keep, read_rows, time_range

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = [
    "SAMPLE_ROWS",
    "CheckFailedError",
    "RuleResult",
    "check",
    "checked_fields",
    "evaluate",
    "results_table",
    "violations_text",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SAMPLE_ROWS = 5
"""How many offending rows a result keeps (and an error shows)."""

ROW = "row"
"""The key of a sample row's index in the rows evaluated."""

SCHEMA = pa.schema(
    [
        ("feature", pa.string()),
        ("rule", pa.string()),
        ("threshold", pa.string()),
        ("observed", pa.float64()),
        ("passed", pa.bool_()),
        ("offending_rows", pa.int64()),
        ("sample", pa.string()),
    ]
)


@dataclass(frozen=True)
class RuleResult:
    """One rule of one feature, evaluated."""

    feature: str
    rule: str
    threshold: Any
    observed: float | None
    passed: bool
    offending_rows: int = 0
    sample: tuple[dict[str, Any], ...] = ()
    """Up to ``SAMPLE_ROWS`` offending rows: ``row`` (index in the rows evaluated), the
    key columns and the feature."""
    view: str | None = None
    setting: dict[str, Any] = field(default_factory=dict)
    """What else the rule used (``outlier_k``)."""

    def describe(self) -> str:
        """``feature 'x': max 150 -> observed 212 (3 row(s), e.g. [...])``."""
        where = f"feature view {self.view!r}: " if self.view else ""
        extra = "".join(f", {k} {v}" for k, v in self.setting.items())
        observed = "none" if self.observed is None else f"{self.observed:g}"
        text = (
            f"{where}field {self.feature!r}: rule {self.rule} {_threshold_text(self.threshold)}"
            f"{extra}: observed {observed}"
        )
        if self.offending_rows:
            sample = json.dumps(list(self.sample), default=str)
            text += f" ({self.offending_rows} offending row(s), e.g. {sample})"
        return text


class CheckFailedError(IngestError):
    """A batch refused by a view's checks (``on_check_failure: block``); nothing of it was
    written. ``violations``: the rules that failed, each naming view, field, observed value
    and threshold, and a sample of offending rows."""

    def __init__(self, message: str, violations: Sequence[RuleResult]):
        super().__init__(message, row=None)
        self.violations = tuple(violations)
        self.field = self.violations[0].feature if self.violations else None
        self.letter_reason = "check"
        """The stream runner sets every event of the batch aside under this reason."""


def checked_fields(view: FeatureView) -> list[Field]:
    """The view's input fields that declare checks (a plain view's features, an
    aggregated view's source columns)."""
    return [f for f in fields_of(view) if f.checks is not None and f.checks.rules]


def evaluate(
    table: pa.Table,
    fields: Sequence[Field],
    *,
    keys: Sequence[str] = (),
    view: str | None = None,
) -> list[RuleResult]:
    """Every rule of ``fields`` over ``table`` (columns named as the fields), in declared
    order. ``keys``: columns shown in sample rows besides the feature. MonitoringError when
    a field is not a column or a rule cannot apply to the column's type."""
    out: list[RuleResult] = []
    for f in fields:
        if f.checks is None:
            continue
        if f.name not in table.column_names:
            raise MonitoringError(
                f"{_label(view)}field {f.name!r} has checks but is not among the columns "
                f"{table.column_names}"
            )
        col = _normalised(table.column(f.name))
        shown = [k for k in keys if k in table.column_names and k != f.name] + [f.name]
        ev = _Column(table, col, shown)
        for rule, value in f.checks.rules.items():
            out.append(ev.rule(f, rule, value, view))
    return out


class _Column:
    """One column's figures, computed once and shared by its rules."""

    def __init__(self, table: pa.Table, col: pa.ChunkedArray, shown: list[str]):
        self.table, self.col, self.shown = table, col, shown
        self.rows = len(col)
        self.nulls = col.null_count
        self.valid = pc.is_valid(col)

    def rule(self, f: Field, rule: str, value: Any, view: str | None) -> RuleResult:
        fn = getattr(self, f"_{rule}", None)
        if fn is None:
            raise MonitoringError(f"{_label(view)}field {f.name!r}: no rule named {rule!r}")
        kind = getattr(f.dtype, "kind", None)
        numeric = pa.types.is_integer(self.col.type) or pa.types.is_floating(self.col.type)
        if rule in ("min", "max", "max_outlier_ratio") and not numeric:
            raise MonitoringError(
                f"{_label(view)}field {f.name!r}: check {rule!r} applies to numbers, and the "
                f"column is {self.col.type}"
            )
        if rule in ("unique", "min_unique") and (kind is None or pa.types.is_nested(self.col.type)):
            raise MonitoringError(
                f"{_label(view)}field {f.name!r}: check {rule!r} applies to single values, "
                f"and the column is {self.col.type}"
            )
        observed, passed, bad = fn(value, f)
        count = 0 if bad is None else int(pc.sum(bad).as_py() or 0)
        setting = {"outlier_k": f.checks.outlier_k} if rule == "max_outlier_ratio" else {}  # type: ignore[union-attr]
        return RuleResult(
            f.name,
            rule,
            value,
            observed,
            passed,
            count,
            self._sample(bad) if count else (),
            view,
            setting,
        )

    def _sample(self, bad: pa.ChunkedArray | pa.Array) -> tuple[dict[str, Any], ...]:
        idx = pc.indices_nonzero(bad).slice(0, SAMPLE_ROWS)
        part = self.table.select(self.shown).take(idx).to_pylist()
        return tuple(
            {ROW: int(i), **{k: _plain(v) for k, v in r.items()}}
            for i, r in zip(idx.to_pylist(), part, strict=True)
        )

    def _values(self) -> pa.ChunkedArray:
        return pc.drop_null(self.col)

    # -- the rules: (observed, passed, offending mask or None) ---------------------------
    def _max_null_ratio(self, value: float, _f: Field) -> Any:
        ratio = self.nulls / self.rows if self.rows else 0.0
        return ratio, ratio <= value, pc.invert(self.valid)

    def _min(self, value: float, _f: Field) -> Any:
        low = pc.min(self.col).as_py()
        bad = pc.fill_null(pc.less(self.col, value), False)
        return _float(low), low is None or low >= value, bad

    def _max(self, value: float, _f: Field) -> Any:
        high = pc.max(self.col).as_py()
        bad = pc.fill_null(pc.greater(self.col, value), False)
        return _float(high), high is None or high <= value, bad

    def _allowed(self, value: list[Any], _f: Field) -> Any:
        choices = pa.array(value).cast(self.col.type)
        bad = pc.and_(self.valid, pc.invert(pc.fill_null(pc.is_in(self.col, choices), False)))
        count = int(pc.sum(bad).as_py() or 0)
        return float(count), count == 0, bad

    def _distinct(self) -> int:
        """Distinct non-null values (``unique`` hashes faster than ``count_distinct``)."""
        if not hasattr(self, "_n_distinct"):
            self._n_distinct = len(pc.unique(self._values()))
        return self._n_distinct

    def _min_unique(self, value: int, _f: Field) -> Any:
        distinct = self._distinct()
        return float(distinct), distinct >= value, None

    def _unique(self, _value: bool, _f: Field) -> Any:
        if self._distinct() == self.rows - self.nulls:  # the usual case: no repeats to find
            return 0.0, True, None
        index = pa.array(range(self.rows), pa.int64()) if self.rows else pa.array([], pa.int64())
        t = pa.table({"v": self.col, "i": index}).filter(self.valid)
        first = t.group_by("v", use_threads=False).aggregate([("i", "min")]).column("i_min")
        bad = pc.and_(self.valid, pc.invert(pc.is_in(index, first.combine_chunks())))
        count = int(pc.sum(bad).as_py() or 0)
        return float(count), count == 0, bad

    def _max_outlier_ratio(self, value: float, f: Field) -> Any:
        values = pc.cast(self._values(), pa.float64())
        if not len(values):
            return None, True, None
        p25, p75 = pc.quantile(values, q=[0.25, 0.75], interpolation="linear").to_pylist()
        k = f.checks.outlier_k  # type: ignore[union-attr]
        lo, hi = p25 - k * (p75 - p25), p75 + k * (p75 - p25)
        as_float = pc.cast(self.col, pa.float64())
        bad = pc.fill_null(pc.or_(pc.less(as_float, lo), pc.greater(as_float, hi)), False)
        ratio = int(pc.sum(bad).as_py() or 0) / len(values)
        return ratio, ratio <= value, bad


def _normalised(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """NaN as null (a missing value) and -0.0 as 0.0 (one value, as it compares)."""
    if pa.types.is_floating(col.type):
        col = pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
        return pc.add(col, pa.scalar(0.0, col.type))
    return col


def _plain(v: Any) -> Any:
    """A sample value JSON can hold: NaN and infinities as text."""
    return str(v) if isinstance(v, float) and not math.isfinite(v) else v


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def _label(view: str | None) -> str:
    return f"feature view {view!r}: " if view else ""


def _threshold_text(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, float) else f"{value:g}"


def violations_text(failed: Sequence[RuleResult], *, rows: int) -> str:
    """The failed rules, one line each."""
    lines = "\n".join(f"  - {r.describe()}" for r in failed)
    return f"{len(failed)} check(s) failed on {rows} row(s):\n{lines}"


def results_table(results: Sequence[RuleResult]) -> pa.Table:
    """The ``check`` result table (one row per feature and rule; see the brief's shape)."""
    return pa.table(
        {
            "feature": [r.feature for r in results],
            "rule": [r.rule for r in results],
            "threshold": [json.dumps(r.threshold) for r in results],
            "observed": [r.observed for r in results],
            "passed": [r.passed for r in results],
            "offending_rows": [r.offending_rows for r in results],
            "sample": [json.dumps(list(r.sample), default=str) for r in results],
        },
        schema=SCHEMA,
    )


def check(
    store: FeatureStore,
    view: str,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    save: bool = True,
) -> MonitorResult:
    """The view's checks over its source rows in [start, end] (``store.check``).

    A view with no checks gives an empty table (``summary["rules"] == 0``) and stores
    nothing. MonitoringError when the range is empty (start after end) or holds no rows."""
    fv = store.catalog().view(view)
    lo, hi = time_range(
        start, end, now=lambda: _EPOCH + timedelta(microseconds=store.clock.now_us())
    )
    fields = checked_fields(fv)
    if not fields:
        return MonitorResult(
            "check",
            results_table([]),
            fv.name,
            lo,
            hi,
            summary={"violations": 0, "rules": 0, "rows": 0},
        )
    rows = read_rows(store, fv, fields, lo, hi)
    if not rows.num_rows:
        span = f"{lo.isoformat() if lo else 'the start'} to {hi.isoformat() if hi else 'the end'}"
        raise MonitoringError(
            f"feature view {fv.name!r}: no source rows from {span}, nothing to check"
        )
    keys = [c for c in rows.column_names if c not in {f.name for f in fields} and c != EVENT_US]
    results = evaluate(rows, fields, keys=keys, view=fv.name)
    table = results_table(results)
    failed = [r for r in results if not r.passed]
    summary = {
        "violations": len(failed),
        "rules": len(results),
        "rows": rows.num_rows,
        "failed": [f"{r.feature}:{r.rule}" for r in failed],
    }
    rid = keep(store, "check", fv.name, table, summary, lo, hi, save=save)
    return MonitorResult("check", table, fv.name, lo, hi, id=rid, summary=summary)
