"""What ``apply`` checks before anything is written, against the data as well as the model.

Every problem found is reported at once (``ValidationError.problems``), each naming the
object and field: duplicate names, unknown entities or sources, schema fields the source
lacks or holds with another kind of type, join keys the source lacks, timestamp columns
that are not timestamps, services naming unknown views or features, and deletions that
would leave another object dangling. On-demand views: unknown source views or features,
two inputs giving one column, a name a feature view already has, and dependency cycles
(named, ``a -> b -> a``). Roles: the reserved name ``admin``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pyarrow as pa

from parity.definitions import (
    DataSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    FileSource,
    Model,
    OnDemandFeatureView,
    PushSource,
    Role,
)
from parity.errors import ParityError, ValidationError
from parity.governance.classify import problems as classification_problems
from parity.registry.catalog import Catalog

SchemaReader = Callable[[DataSource], pa.Schema]


def collect(
    objects: Sequence[Definition], origin: Callable[[Definition], str] | None = None
) -> tuple[list[Definition], list[str]]:
    """The objects to apply with inline sources and entities pulled out, and duplicates.

    The same definition given twice (equal specs) counts once; two different definitions
    of one kind and name are a problem.
    """
    where = origin or (lambda _o: "")
    seen: dict[tuple[str, str], Definition] = {}
    problems: list[str] = []
    ordered: list[Definition] = []

    def add(obj: Definition) -> None:
        key = (obj.kind, obj.name)
        prev = seen.get(key)
        if prev is None:
            seen[key] = obj
            ordered.append(obj)
        elif prev is not obj and prev.to_spec() != obj.to_spec():
            at = ", ".join(w for w in (where(prev), where(obj)) if w)
            problems.append(
                f"{obj.kind} {obj.name!r}: defined twice with different contents"
                + (f" ({at})" if at else "")
            )

    def add_with_parts(obj: Definition) -> None:
        if isinstance(obj, FeatureView):
            for e in obj.entities:
                if isinstance(e, Entity):
                    add(e)
            if isinstance(obj.source, DataSource):
                add(obj.source)
        add(obj)

    for obj in objects:
        if not isinstance(obj, Definition):
            problems.append(f"{obj!r} is not a definition (entity, source, view or service)")
            continue
        add_with_parts(obj)
    # Views an on-demand view was given as objects, unless given themselves: the on-demand
    # view stores only their names, so the listed object is the one registered.
    pending = [o for o in ordered if isinstance(o, OnDemandFeatureView)]
    while pending:
        for view in pending.pop().input_objects:
            if (view.kind, view.name) not in seen:
                add_with_parts(view)
                if isinstance(view, OnDemandFeatureView):
                    pending.append(view)
    return ordered, problems


def resolve_push_sources(ordered: list[Definition], current: Catalog | None) -> list[str]:
    """Push sources that name their batch source, given it (in place in ``ordered``): the
    file source of that name in ``ordered``, else the one registered in ``current`` (None:
    an apply that deletes what it does not list). Returns the problems: a name that matches
    no source, or names a source that is not a file source."""
    problems = []
    current = current or Catalog.of([], project="")
    given = {o.name: o for o in ordered if isinstance(o, DataSource)}
    for i, obj in enumerate(ordered):
        if not isinstance(obj, PushSource) or obj.resolved:
            continue
        name = obj.batch_source_name
        label = f"push source {obj.name!r}: batch_source {name!r}"
        batch = given.get(name) or (current.source(name) if current.has("source", name) else None)
        if batch is None:
            known = sorted({*given, *current.names("source")} - {obj.name})
            problems.append(f"{label} is not a source (known: {known})")
        elif not isinstance(batch, FileSource):
            problems.append(f"{label} is a {batch.source_type} source; name a file source")
        else:
            try:
                ordered[i] = obj.resolve(batch)
            except ParityError as exc:
                problems.append(str(exc))
    return problems


def _readable(source: DataSource) -> bool:
    """Not a push source whose batch source could not be resolved (a problem already)."""
    return not isinstance(source, PushSource) or source.resolved


def _timestamp_kind(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t)


def check_view_against_source(
    view: FeatureView,
    world: Catalog,
    schema: pa.Schema,
    columns: Mapping[str, pa.DataType] | None = None,
) -> list[str]:
    """Problems of one view against its source's real columns (``columns``: the schema's
    columns by name, when the caller has them already)."""
    problems = []
    source = world.source_of(view)
    cols = columns if columns is not None else {f.name: f.type for f in schema}
    label = f"feature view {view.name!r}"
    src_label = f"source {source.name!r}"
    for e in view.entity_names:
        if not world.has("entity", e):
            continue
        ent = world.entity(e)
        for key in ent.join_keys:
            col = source.column_for(key)
            if col not in cols:
                problems.append(
                    f"{label}: join key {key!r} of entity {e!r} is not a column of {src_label}"
                    + (f" (mapped from {col!r})" if col != key else "")
                )
            elif ent.dtype is not None and not ent.dtype.accepts(cols[col]):
                problems.append(
                    f"{label}: join key {key!r} is {cols[col]} in {src_label}, "
                    f"but entity {e!r} declares {ent.dtype}"
                )
    for f in view.schema:
        col = source.column_for(f.name)
        if col not in cols:
            problems.append(
                f"{label}: field {f.name!r} is not a column of {src_label}"
                + (f" (mapped from {col!r})" if col != f.name else "")
                + f"; columns: {sorted(cols)}"
            )
        elif not f.dtype.accepts(cols[col]):
            problems.append(
                f"{label}: field {f.name!r} is declared {f.dtype} but column {col!r} of "
                f"{src_label} is {cols[col]}"
            )
    return problems


def complete_aggregated_view(
    view: FeatureView, source: DataSource, schema: pa.Schema
) -> tuple[FeatureView, list[str]]:
    """An aggregated view with the columns it reads declared (typed from the source), and
    the problems of its aggregations against those types."""
    from parity import types as T
    from parity.definitions import Field
    from parity.errors import DefinitionError

    cols = {f.name: f.type for f in schema}
    label = f"feature view {view.name!r}"
    declared = {f.name for f in view.schema}
    extra = []
    problems = []
    for a in view.aggregations:
        if a.column is None or a.column in declared:
            continue
        col = source.column_for(a.column)
        if col not in cols:
            problems.append(
                f"{label}: aggregation {a.output_name!r} reads {a.column!r}, which is not a "
                f"column of source {source.name!r}; columns: {sorted(cols)}"
            )
            continue
        try:
            extra.append(Field(name=a.column, dtype=T.from_arrow(cols[col])))
        except DefinitionError as exc:
            problems.append(f"{label}: column {a.column!r}: {exc}")
        declared.add(a.column)
    eid = source.event_id_field
    if eid and source.column_for(eid) not in cols:
        problems.append(f"source {source.name!r}: event_id_field {eid!r} is not a column")
    if problems:
        return view, problems
    if extra:
        try:
            view = view.model_copy(update={"schema_": [*view.schema, *extra]})
            view = FeatureView(**view.to_spec())  # re-validated with the types
        except DefinitionError as exc:
            return view, [str(exc)]
    types = {f.name: f.dtype for f in view.schema}
    for a in view.aggregations:
        problems += [f"{label}: {p}" for p in a.problems(types.get(a.column) if a.column else None)]
    return view, problems


def check_source(source: DataSource, schema: pa.Schema) -> list[str]:
    """Problems of a source's timestamp columns."""
    problems = []
    cols = {f.name: f.type for f in schema}
    label = f"source {source.name!r}"
    for key in ("timestamp_field", "created_timestamp_field"):
        col = getattr(source, key)
        if not col:
            continue
        if col not in cols:
            problems.append(f"{label}: {key} {col!r} is not a column (columns: {sorted(cols)})")
        elif not _timestamp_kind(cols[col]):
            problems.append(f"{label}: {key} {col!r} has type {cols[col]}, not a timestamp")
    return problems


def check_references(world: Catalog) -> list[str]:
    """Problems of references between objects in the world an apply would leave."""
    problems = []
    for view in world.objects.get("feature_view", {}).values():
        assert isinstance(view, FeatureView)
        label = f"feature view {view.name!r}"
        keys: list[str] = []
        for e in view.entity_names:
            if not world.has("entity", e):
                problems.append(f"{label}: unknown entity {e!r} (known: {world.names('entity')})")
            else:
                keys.extend(world.entity(e).join_keys)
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            problems.append(f"{label}: entities share join key(s) {dup}")
        clash = sorted(set(keys) & set(view.feature_names))
        if clash:
            problems.append(f"{label}: schema fields {clash} are join keys; list only features")
        if not world.has("source", view.source_name):
            problems.append(
                f"{label}: unknown source {view.source_name!r} (known: {world.names('source')})"
            )
    for svc in world.objects.get("feature_service", {}).values():
        assert isinstance(svc, FeatureService)
        for p in svc.features:
            kind = world.view_kind(p.view)
            if kind is None:
                problems.append(f"feature service {svc.name!r}: unknown feature view {p.view!r}")
                continue
            have = world.get(kind, p.view).feature_names  # type: ignore[attr-defined]
            for f in p.features or ():
                if f not in have:
                    problems.append(
                        f"feature service {svc.name!r}: feature view {p.view!r} has no feature {f!r} (it has {have})"
                    )
    for obj in world.all():
        successor = obj.lifecycle.successor if obj.lifecycle is not None else None
        if successor is None:
            continue
        if successor == obj.name:
            problems.append(f"{obj.kind} {obj.name!r}: lifecycle.successor: it names itself")
        elif not any(world.has(kind, successor) for kind in world.objects):
            problems.append(
                f"{obj.kind} {obj.name!r}: lifecycle.successor: no object is called {successor!r}"
            )
    for model in world.objects.get("model", {}).values():
        assert isinstance(model, Model)
        if not world.has("feature_service", model.service_name):
            problems.append(
                f"model {model.name!r}: unknown feature service {model.service_name!r}"
                f" (known: {world.names('feature_service')})"
            )
    return problems


def check_on_demand(world: Catalog, current: Catalog | None = None) -> list[str]:
    """Problems of on-demand views: their inputs, names, and cycles among them.

    ``current`` (the registry before the apply) lets a missing input be reported as a
    deletion others depend on.
    """
    problems = []
    for odfv in world.on_demand_views():
        label = f"on-demand feature view {odfv.name!r}"
        if world.has("feature_view", odfv.name):
            problems.append(f"{label}: a feature view has the same name; rename one")
        columns: dict[str, str] = {}
        for inp in odfv.inputs:
            kind = world.view_kind(inp.view)
            if kind is None:
                gone = current is not None and current.view_kind(inp.view) is not None
                problems.append(
                    f"{label}: depends on {inp.view!r}, which "
                    + (
                        "this apply would delete; delete or change the dependent view too"
                        if gone
                        else "is not a feature view or on-demand feature view"
                    )
                )
                continue
            have = world.get(kind, inp.view).feature_names  # type: ignore[attr-defined]
            for f in inp.features or have:
                if f not in have:
                    problems.append(
                        f"{label}: view {inp.view!r} has no feature {f!r} (it has {have})"
                    )
                elif f in columns:
                    problems.append(
                        f"{label}: input column {f!r} comes from {columns[f]} and from view "
                        f"{inp.view!r}; select features with view[[...]]"
                    )
                else:
                    columns[f] = f"view {inp.view!r}"
        for req in odfv.request_sources:
            for fld in req.schema:
                if fld.name in columns:
                    problems.append(
                        f"{label}: input column {fld.name!r} comes from {columns[fld.name]} and "
                        f"from request source {req.name!r}"
                    )
                else:
                    columns[fld.name] = f"request source {req.name!r}"
    problems += [
        f"on-demand feature views depend on each other in a cycle: {c}" for c in cycles(world)
    ]
    return problems


def check_roles(ordered: Sequence[Definition]) -> list[str]:
    """Roles being applied: ``admin`` is built in (every action on everything) and reserved.
    Actions and kinds were checked when each role was built."""
    return [
        "role 'admin': name: reserved for the built-in role (every action on everything); "
        "give yours another name"
        for obj in ordered
        if isinstance(obj, Role) and obj.name == "admin"
    ]


def cycles(world: Catalog) -> list[str]:
    """Each dependency cycle among on-demand views once, as ``a -> b -> a`` (from its
    smallest name)."""
    graph = {v.name: [i.view for i in v.inputs] for v in world.on_demand_views()}
    found: set[tuple[str, ...]] = set()
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                loop = path[path.index(nxt) :]
                i = loop.index(min(loop))
                found.add(tuple(loop[i:] + loop[:i]))
            elif state.get(nxt) is None:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return [" -> ".join([*c, c[0]]) for c in sorted(found)]


def validate(
    objects: Sequence[Definition],
    current: Catalog,
    read_schema: SchemaReader,
    *,
    delete_missing: bool,
    origin: Callable[[Definition], str] | None = None,
) -> tuple[list[Definition], Catalog]:
    """The objects to apply and the world they would leave; raises ValidationError."""
    ordered, problems = collect(objects, origin)
    problems += resolve_push_sources(ordered, None if delete_missing else current)
    base = [] if delete_missing else current.all()
    world = Catalog.of([*base, *ordered], project=current.project)
    problems += check_references(world)
    problems += check_on_demand(world, current)
    problems += check_roles(ordered)
    problems += classification_problems(world)  # masks fit types; propagation
    schemas: dict[str, pa.Schema] = {}
    columns: dict[str, dict[str, pa.DataType]] = {}
    for obj in ordered:
        if isinstance(obj, DataSource) and _readable(obj):
            try:
                schemas[obj.name] = read_schema(obj)
            except ParityError as exc:
                problems.append(str(exc))
                continue
            problems += check_source(obj, schemas[obj.name])
    completed = False
    for i, obj in enumerate(ordered):
        if not isinstance(obj, FeatureView) or not world.has("source", obj.source_name):
            continue
        source = world.source_of(obj)
        if not _readable(source):
            continue
        if source.name not in schemas and not any(source.name in p for p in problems):
            try:
                schemas[source.name] = read_schema(source)
            except ParityError as exc:
                problems.append(f"feature view {obj.name!r}: {exc}")
                continue
        if source.name in schemas:
            if obj.is_aggregated:
                obj, found = complete_aggregated_view(obj, source, schemas[source.name])
                problems += found
                ordered[i], completed = obj, True
            found_cols = columns.get(source.name)
            if found_cols is None:
                found_cols = columns[source.name] = {f.name: f.type for f in schemas[source.name]}
            problems += check_view_against_source(obj, world, schemas[source.name], found_cols)
    if problems:
        raise ValidationError(problems)
    if completed:
        world = Catalog.of([*base, *ordered], project=current.project)
    return ordered, world


__all__ = [
    "check_on_demand",
    "check_references",
    "check_roles",
    "check_source",
    "check_view_against_source",
    "collect",
    "cycles",
    "resolve_push_sources",
    "validate",
]
