"""Compare a candidate Arrow table with a reference table, column by column."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

MAX_EXAMPLES = 5


@dataclass
class Comparison:
    """Outcome of a comparison: problems make it a mismatch, notes do not."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def match(self) -> bool:
        """Whether the candidate matches the reference."""
        return not self.problems


def compare_tables(expected: pa.Table, actual: pa.Table) -> Comparison:
    """Check that ``actual`` has every column of ``expected`` with equal values and nulls.

    Columns are matched by name, so column order and extra columns do not matter (extra ones
    are listed in the notes). Rows must be equal in number and order. A column whose type
    differs is noted and compared after casting it to the reference type.
    """
    result = Comparison()
    if actual.num_rows != expected.num_rows:
        result.problems.append(f"{actual.num_rows:,} rows, reference has {expected.num_rows:,}")
        return result
    missing = [name for name in expected.column_names if name not in actual.column_names]
    if missing:
        result.problems.append(f"missing columns: {', '.join(missing)}")
    extra = [name for name in actual.column_names if name not in expected.column_names]
    if extra:
        result.notes.append(f"extra columns: {', '.join(extra)}")
    for name in expected.column_names:
        if name not in missing:
            _compare_column(name, expected[name], actual[name], result)
    return result


def _compare_column(
    name: str, expected: pa.ChunkedArray, actual: pa.ChunkedArray, result: Comparison
) -> None:
    """Compare one column, adding to ``result`` what differs."""
    if actual.type != expected.type:
        result.notes.append(f"{name}: type {actual.type}, reference {expected.type}")
        try:
            actual = actual.cast(expected.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            result.problems.append(f"{name}: cannot cast {actual.type} to {expected.type}: {exc}")
            return
    exp, act = expected.combine_chunks(), actual.combine_chunks()
    if act.equals(exp):
        return
    unequal = pc.fill_null(pc.not_equal(exp, act), False)
    null_differs = pc.xor(exp.is_null(), act.is_null())
    differs = pc.or_(unequal, null_differs)
    rows = pc.indices_nonzero(differs)
    examples = "; ".join(
        f"row {i}: {act[i].as_py()!r} (reference {exp[i].as_py()!r})"
        for i in rows[:MAX_EXAMPLES].to_pylist()
    )
    result.problems.append(
        f"{name}: {len(rows):,} rows differ ({pc.sum(null_differs).as_py() or 0:,} in nullness);"
        f" e.g. {examples}"
    )
