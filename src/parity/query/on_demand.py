"""On-demand views at retrieval time: one code path for offline and online.

The planner (``parity.query.plan``) has already said which stored features to fetch (always
as ``view__feature`` columns when on-demand views are asked for) and which on-demand views
to run, dependencies first. Both paths then build each view's input the same way (every
input column cast to its declared type, request data included) and call the same function
through ``run_views``:

- offline (``finish_historical``), the fetched columns of the training frame and request
  data from the entity frame's columns;
- online (``finish_online``), the values read from the online store and request data from
  the request's entity columns (``entities={"driver_id": [...], "val_to_add": [...]}``).

So a transformation gives the same value for the same inputs online and offline. An
on-demand output's status is ``present`` when the function returned a value and ``missing``
when it returned null; its event time is the latest event time among the inputs it read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from parity.definitions import Field
from parity.errors import ParityError, RequestDataError, RetrievalError, TransformationError
from parity.online.reader import OnlineResponse
from parity.query.plan import FeaturePlan, Step
from parity.repo.functions import resolve_function
from parity.types import Timestamp, ValueType

__all__ = ["finish_historical", "finish_online", "run_views"]

_PRESENT, _MISSING = "present", "missing"


def finish_historical(plan: FeaturePlan, table: pa.Table, repo_root: Path | None) -> pa.Table:
    """The training frame: ``table`` (the entity frame's columns and the fetched
    ``view__feature`` columns) with the on-demand outputs computed, outputs in order."""
    fetched = set(plan.fetched_columns)
    entity_names = [c for c in table.column_names if c not in fetched]
    check_entity_columns(plan, entity_names, "entity frame")
    columns = {c: _whole(table.column(c)) for c in fetched}
    request = {c: _whole(table.column(c)) for c in entity_names}
    results = run_views(plan.steps, columns, request, table.num_rows, repo_root)
    out = table.select(entity_names)
    for o in plan.outputs:
        out = out.append_column(o.name, results[o.column] if o.on_demand else columns[o.column])
    return out


def finish_online(
    plan: FeaturePlan,
    given: dict[str, list[Any]],
    inner: OnlineResponse | None,
    repo_root: Path | None,
) -> OnlineResponse:
    """The online answer: ``inner`` (the fetched ``view__feature`` values, None when nothing
    is fetched) with the on-demand outputs computed from it and the request's columns."""
    check_entity_columns(plan, list(given), "entities")
    fetched = {c: t for r in plan.fetch for c, t in zip(r.output_names, _dtypes(r), strict=True)}
    if inner is not None:
        data, statuses, stamps = inner.values, inner.statuses, inner.event_micros
    else:
        data, statuses, stamps = {}, {}, {}
    n = len(next(iter(given.values()), []))
    columns = {c: _typed(data[c], t, c) for c, t in fetched.items()}
    results = run_views(plan.steps, columns, given, n, repo_root)
    times = _event_times(plan.steps, stamps, n)
    values: dict[str, list[Any]] = {}
    out_status: dict[str, list[str]] = {}
    out_times: dict[str, list[int | None]] = {}
    dtypes: dict[str, ValueType] = {}
    for o in plan.outputs:
        dtypes[o.name] = o.dtype
        if o.on_demand:
            vals = results[o.column].to_pylist()
            values[o.name] = vals
            out_status[o.name] = [_MISSING if v is None else _PRESENT for v in vals]
            out_times[o.name] = times[o.view]
        else:
            values[o.name] = data[o.column]
            out_status[o.name] = statuses[o.column]
            out_times[o.name] = stamps[o.column]
    return OnlineResponse(given, dtypes, values, out_status, out_times)


def check_entity_columns(plan: FeaturePlan, names: Sequence[str], what: str) -> None:
    """The caller's columns may not share a name with a requested feature."""
    clash = sorted({o.name for o in plan.outputs} & set(names))
    if clash:
        raise RetrievalError(
            f"{what} column(s) {clash} would be overwritten by requested features; "
            "rename them or pass full_feature_names=True"
        )


def _dtypes(r: Any) -> list[ValueType]:
    return [r.view.field(f).dtype for f in r.features]


# -- running ---------------------------------------------------------------------------------


def run_views(
    steps: Sequence[Step],
    columns: Mapping[str, pa.Array],
    request: Mapping[str, Any],
    n: int,
    repo_root: Path | None,
) -> dict[str, pa.Array]:
    """Every step's outputs as ``odfv__feature`` arrays of their declared types.

    ``columns``: the fetched ``view__feature`` arrays; ``request``: the columns request data
    is read from (Arrow arrays or lists), by field name.
    """
    results: dict[str, pa.Array] = {}
    for step in steps:
        arrays: dict[str, pa.Array] = {}
        for name, _, column in step.inputs:
            arrays[name] = results[column] if column in results else columns[column]
        for source, fld in step.request_fields:
            if fld.name not in request:
                raise RequestDataError(
                    f"{step.label} needs request data {fld.name!r} (request source "
                    f"{source!r}); pass it as a column of the entities (given: {sorted(request)})"
                )
            arrays[fld.name] = _request_array(request[fld.name], fld, step.label)
        try:
            fn = resolve_function(step.view, repo_root)
        except ParityError as exc:
            raise TransformationError(str(exc)) from exc
        out = _call(step, fn, pa.table(arrays) if arrays else pa.table({}), n)
        for name, arr in out.items():
            results[f"{step.view.name}__{name}"] = arr
    return results


def _call(step: Step, fn: Callable[[Any], Any], table: pa.Table, n: int) -> dict[str, pa.Array]:
    view = step.view
    where = f"{step.label} (function {view.udf.describe()})"
    names = view.feature_names
    if n == 0:
        return {f.name: pa.array([], f.dtype.to_arrow()) for f in view.schema}
    if view.mode == "python":
        got: dict[str, list[Any]] = {name: [None] * n for name in names}
        for i, row in enumerate(table.to_pylist()):
            try:
                result = fn(row)
            except Exception as exc:
                raise TransformationError(
                    f"{where} raised {type(exc).__name__}: {exc} (entity row {i})"
                ) from exc
            if not isinstance(result, Mapping):
                raise TransformationError(
                    f"{where} returned {type(result).__name__}, not a dict of outputs (entity row {i})"
                )
            missing = [name for name in names if name not in result]
            if missing:
                raise TransformationError(
                    f"{where} did not return {missing} (entity row {i}; it returned {sorted(map(str, result))})"
                )
            for name in names:
                got[name][i] = result[name]
        return {f.name: _output_array(got[f.name], f, where) for f in view.schema}

    import pandas as pd

    frame = table.to_pandas()
    try:
        result = fn(frame)
    except Exception as exc:
        raise TransformationError(f"{where} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, pd.DataFrame):
        raise TransformationError(f"{where} returned {type(result).__name__}, not a DataFrame")
    if len(result) != n:
        raise TransformationError(
            f"{where} returned {len(result)} rows for {n}; a pandas transformation returns "
            "one row per input row, in order"
        )
    missing = [name for name in names if name not in result.columns]
    if missing:
        raise TransformationError(
            f"{where} did not return column(s) {missing} (it returned {list(map(str, result.columns))})"
        )
    return {f.name: _output_array(result[f.name], f, where) for f in view.schema}


def _output_array(values: Any, field: Field, where: str) -> pa.Array:
    """The function's values for one output, cast to its declared type; errors name it."""
    target = field.dtype.to_arrow()
    try:
        arr = pa.array(values) if isinstance(values, list) else pa.Array.from_pandas(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise TransformationError(
            f"{where}: output {field.name!r} holds values that are not all {field.dtype}: {exc}"
        ) from None
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), target)
    if not field.dtype.accepts(arr.type):
        raise TransformationError(
            f"{where}: output {field.name!r} is declared {field.dtype} but the function "
            f"returned {arr.type} values"
        )
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise TransformationError(
            f"{where}: output {field.name!r} does not fit {field.dtype}: {exc}"
        ) from None


def _request_array(values: Any, field: Field, label: str) -> pa.Array:
    """Request data for one field, cast to its declared type; RetrievalError names it."""
    target = field.dtype.to_arrow()
    what = f"{label}: request data {field.name!r}"
    if isinstance(values, pa.ChunkedArray):
        arr = _whole(values)
    elif isinstance(values, pa.Array):
        arr = values
    else:
        values = list(values)
        if field.dtype is Timestamp:
            values = [_time(v, what) for v in values]
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise RetrievalError(f"{what} holds values of mixed types: {exc}") from None
    if arr.null_count:
        row = pc.index(pc.is_null(arr), True).as_py()
        raise RequestDataError(
            f"{what} is null in entity row {row}; an on-demand view's request fields need a "
            "value in every row"
        )
    if not field.dtype.accepts(arr.type):
        raise RetrievalError(f"{what} is declared {field.dtype} but the values are {arr.type}")
    if field.dtype is Timestamp and pa.types.is_timestamp(arr.type) and arr.type.tz is None:
        arr = arr.cast(pa.timestamp(arr.type.unit, tz="UTC"))  # naive is UTC
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise RetrievalError(f"{what} does not fit {field.dtype}: {exc}") from None


def _time(value: Any, what: str) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise RetrievalError(f"{what}: {value!r} is not an ISO 8601 time") from None
    return value


def _typed(values: list[Any], dtype: ValueType, column: str) -> pa.Array:
    try:
        return pa.array(values, dtype.to_arrow())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # a store returned what it should not
        raise TransformationError(f"feature {column!r} read online is not {dtype}: {exc}") from exc


def _whole(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _event_times(
    steps: Sequence[Step], stamps: Mapping[str, list[int | None]], n: int
) -> dict[str, list[int | None]]:
    """Per on-demand view, each row's latest event time (µs) among the inputs it read."""
    out: dict[str, list[int | None]] = {}
    for step in steps:
        sources: list[list[int | None]] = []
        for _, upstream, column in step.inputs:
            sources.append(out[upstream] if upstream in out else stamps.get(column, [None] * n))
        out[step.view.name] = [_latest(s[i] for s in sources) for i in range(n)]
    return out


def _latest(times: Any) -> int | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None
