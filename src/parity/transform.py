"""On-demand transformations at retrieval time: one code path for offline and online.

``plan_on_demand`` splits a request: the plain features to fetch (those asked for and those
the on-demand views read, always fetched as ``view__feature`` columns) and the on-demand
views to run, dependencies first. It returns None when no on-demand view is asked for, so
plain requests pay one dictionary lookup.

Both paths then build each view's input the same way (every input column cast to its
declared type, request data included) and call the same function through ``run_views``:

- offline, the fetched columns of the training frame and request data from the entity
  frame's columns;
- online, the values read from the online store and request data from the request's entity
  columns (``entities={"driver_id": [...], "val_to_add": [...]}``).

So a transformation gives the same value for the same inputs online and offline. An
on-demand output's status is ``present`` when the function returned a value and ``missing``
when it returned null; its event time is the latest event time among the inputs it read.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from parity.catalog import Catalog
from parity.definitions import FeatureService, Field, OnDemandFeatureView
from parity.errors import ParityError, RetrievalError, TransformationError
from parity.offline.base import ArrowRetrievalJob, RetrievalJob
from parity.online.reader import OnlineResponse, entity_columns
from parity.types import Timestamp, ValueType

__all__ = [
    "OnDemandPlan",
    "Step",
    "plan_on_demand",
    "run_views",
]

MAX_PLANS = 1024
_PRESENT, _MISSING = "present", "missing"


@dataclass(frozen=True)
class Output:
    """One requested feature: where its values are (``column``) and what the caller sees."""

    view: str
    feature: str
    name: str
    column: str
    dtype: ValueType
    on_demand: bool


@dataclass(frozen=True)
class Step:
    """One on-demand view to run: its inputs (input name, upstream view, internal column) and
    request fields."""

    view: OnDemandFeatureView
    inputs: tuple[tuple[str, str, str], ...]
    request_fields: tuple[tuple[str, Field], ...]
    """(request source name, field) per request field the function reads."""

    @property
    def label(self) -> str:
        return f"on-demand feature view {self.view.name!r}"


@dataclass(frozen=True)
class OnDemandPlan:
    """A request with on-demand features, split into a plain fetch and the views to run."""

    plain_refs: tuple[str, ...]
    plain_types: tuple[tuple[str, ValueType], ...]
    """Every fetched ``view__feature`` column and its type."""
    steps: tuple[Step, ...]
    outputs: tuple[Output, ...]

    # -- offline ---------------------------------------------------------------------------
    def historical(
        self,
        fetch: Callable[[list[str]], RetrievalJob],
        entity_frame: Callable[[], pa.Table],
        repo_root: Path | None,
    ) -> RetrievalJob:
        """The job: ``fetch(plain refs)`` (full names), then the transforms row by row.

        ``entity_frame`` reads the caller's frame when there is nothing to fetch.
        """
        inner = fetch(list(self.plain_refs)) if self.plain_refs else None

        def compute() -> pa.Table:
            table = inner.to_arrow() if inner is not None else entity_frame()
            fetched = {c for c, _ in self.plain_types}
            entity_names = [c for c in table.column_names if c not in fetched]
            self._check_entity_columns(entity_names, "entity frame")
            columns = {c: _whole(table.column(c)) for c in fetched}
            request = {c: _whole(table.column(c)) for c in entity_names}
            results = run_views(self.steps, columns, request, table.num_rows, repo_root)
            out = table.select(entity_names)
            for o in self.outputs:
                out = out.append_column(
                    o.name, results[o.column] if o.on_demand else columns[o.column]
                )
            return out

        return ArrowRetrievalJob(compute)

    # -- online ----------------------------------------------------------------------------
    def online(
        self,
        read: Callable[[list[str]], OnlineResponse],
        entity_rows: Sequence[Mapping[str, Any]] | None,
        entities: Mapping[str, Sequence[Any]] | None,
        repo_root: Path | None,
    ) -> OnlineResponse:
        """``read(plain refs)`` (full names) from the online store, then the transforms."""
        inner = read(list(self.plain_refs)) if self.plain_refs else None
        return self._finish_online(inner, entity_rows, entities, repo_root)

    async def online_async(
        self,
        read: Callable[[list[str]], Awaitable[OnlineResponse]],
        entities: Mapping[str, Sequence[Any]],
        repo_root: Path | None,
    ) -> OnlineResponse:
        """``online`` with the store's round trip awaited."""
        inner = await read(list(self.plain_refs)) if self.plain_refs else None
        return self._finish_online(inner, None, entities, repo_root)

    def _finish_online(
        self,
        inner: OnlineResponse | None,
        entity_rows: Sequence[Mapping[str, Any]] | None,
        entities: Mapping[str, Sequence[Any]] | None,
        repo_root: Path | None,
    ) -> OnlineResponse:
        fetched = dict(self.plain_types)
        if inner is not None:
            data = inner.to_dict()
            statuses, stamps = inner.statuses, inner.event_micros
            given = {k: v for k, v in data.items() if k not in fetched}
        else:
            given = entity_columns(entity_rows, entities, ())
            data, statuses, stamps = {}, {}, {}
        self._check_entity_columns(list(given), "entities")
        n = len(next(iter(given.values()), []))
        columns = {c: _typed(data[c], t, c) for c, t in fetched.items()}
        results = run_views(self.steps, columns, given, n, repo_root)
        times = _event_times(self.steps, stamps, n)
        values: dict[str, list[Any]] = {}
        out_status: dict[str, list[str]] = {}
        out_times: dict[str, list[int | None]] = {}
        dtypes: dict[str, ValueType] = {}
        for o in self.outputs:
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

    def _check_entity_columns(self, names: Sequence[str], what: str) -> None:
        clash = sorted({o.name for o in self.outputs} & set(names))
        if clash:
            raise RetrievalError(
                f"{what} column(s) {clash} would be overwritten by requested features; "
                "rename them or pass full_feature_names=True"
            )


# -- planning --------------------------------------------------------------------------------

# Plans per catalog object (a registry snapshot) and request; the catalog is kept with its
# plans, so an id is never reused while its entry lives.
_PLANS: dict[Any, tuple[Catalog, OnDemandPlan | None]] = {}
_PLANS_LOCK = threading.Lock()


def plan_on_demand(
    features: Any, catalog: Catalog, *, full_feature_names: bool = False
) -> OnDemandPlan | None:
    """The split of a request naming on-demand features; None when it names none.

    Malformed references are left to the plain path, which reports them.
    """
    if not catalog.objects.get("on_demand_feature_view"):
        return None
    if isinstance(features, FeatureService):
        key: Any = (features.name, features.content_hash())
    elif isinstance(features, str):
        key = features
    else:
        key = tuple(features) if isinstance(features, list | tuple) else None
    cache_key = (id(catalog), key, full_feature_names)
    if key is not None:
        with _PLANS_LOCK:
            hit = _PLANS.get(cache_key)
        if hit is not None and hit[0] is catalog:
            return hit[1]
    plan = _plan(features, catalog, full_feature_names)
    if key is not None:
        with _PLANS_LOCK:
            if len(_PLANS) >= MAX_PLANS:
                _PLANS.clear()
            _PLANS[cache_key] = (catalog, plan)
    return plan


def _wanted(features: Any, catalog: Catalog) -> list[tuple[str, str | None]] | None:
    """(view, feature or None for all) in the caller's order; None if not readable here."""
    if isinstance(features, FeatureService) or (isinstance(features, str) and ":" not in features):
        if isinstance(features, str) and not catalog.has("feature_service", features):
            return None
        service = features if isinstance(features, FeatureService) else catalog.service(features)
        out: list[tuple[str, str | None]] = []
        for p in service.features:
            out += [(p.view, f) for f in p.features] if p.features else [(p.view, None)]
        return out
    refs = [features] if isinstance(features, str) else features
    if not isinstance(refs, list | tuple):
        return None
    out = []
    for ref in refs:
        if not isinstance(ref, str):
            return None
        view, sep, feature = ref.partition(":")
        if not view or (sep and not feature):
            return None
        out.append((view, None if not sep or feature == "*" else feature))
    return out


def _plan(features: Any, catalog: Catalog, full: bool) -> OnDemandPlan | None:
    wanted = _wanted(features, catalog)
    if wanted is None or not any(catalog.has("on_demand_feature_view", v) for v, _ in wanted):
        return None
    # The caller's features, grouped by view in first-seen order (as the plain path does).
    grouped: dict[str, list[str]] = {}
    for view, feature in wanted:
        kind = catalog.view_kind(view) or "feature_view"
        have = catalog.get(kind, view).feature_names  # type: ignore[attr-defined]
        if feature is not None:
            catalog.get(kind, view).field(feature)  # type: ignore[attr-defined]
        grouped.setdefault(view, []).extend([feature] if feature is not None else have)

    outputs: list[Output] = []
    seen: dict[str, str] = {}
    plain: dict[str, tuple[str, ValueType]] = {}  # fetched column -> (reference, type)
    for view, feats in grouped.items():
        odfv = catalog.has("on_demand_feature_view", view)
        kind = "on_demand_feature_view" if odfv else "feature_view"
        obj = catalog.get(kind, view)
        for f in dict.fromkeys(feats):
            name = f"{view}__{f}" if full else f
            if name in seen:
                raise RetrievalError(
                    f"features {seen[name]!r} and '{view}:{f}' would both be named {name!r}; "
                    "pass full_feature_names=True"
                )
            seen[name] = f"{view}:{f}"
            dtype = obj.field(f).dtype  # type: ignore[attr-defined]
            outputs.append(Output(view, f, name, f"{view}__{f}", dtype, odfv))
            if not odfv:
                plain[f"{view}__{f}"] = (f"{view}:{f}", dtype)

    steps = _steps([o.view for o in outputs if o.on_demand], catalog, plain)
    refs = tuple(ref for ref, _ in plain.values())
    types = tuple((column, dtype) for column, (_, dtype) in plain.items())
    return OnDemandPlan(refs, types, steps, tuple(outputs))


def _steps(
    roots: list[str], catalog: Catalog, plain: dict[str, tuple[str, ValueType]]
) -> tuple[Step, ...]:
    """The on-demand views to run for ``roots``, dependencies first; adds their plain
    inputs to ``plain``."""
    order: list[Step] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise RetrievalError(f"on-demand feature views depend on each other: {cycle}")
        path.append(name)
        odfv = catalog.on_demand_view(name)
        inputs = []
        for inp in odfv.inputs:
            kind = catalog.view_kind(inp.view)
            if kind is None:
                catalog.view(inp.view)  # raises not found, with a hint
            upstream = catalog.get(kind or "feature_view", inp.view)
            if kind == "on_demand_feature_view":
                visit(inp.view)
            for f in inp.features or upstream.feature_names:  # type: ignore[attr-defined]
                dtype = upstream.field(f).dtype  # type: ignore[attr-defined]
                if kind != "on_demand_feature_view":
                    plain.setdefault(f"{inp.view}__{f}", (f"{inp.view}:{f}", dtype))
                inputs.append((f, inp.view, f"{inp.view}__{f}"))
        fields = tuple((r.name, fld) for r in odfv.request_sources for fld in r.schema)
        path.pop()
        done.add(name)
        order.append(Step(odfv, tuple(inputs), fields))

    for root in dict.fromkeys(roots):
        visit(root)
    return tuple(order)


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
                raise RetrievalError(
                    f"{step.label} needs request data {fld.name!r} (request source "
                    f"{source!r}); pass it as a column of the entities (given: {sorted(request)})"
                )
            arrays[fld.name] = _request_array(request[fld.name], fld, step.label)
        try:
            fn = step.view.function(repo_root)
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
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), target)
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
