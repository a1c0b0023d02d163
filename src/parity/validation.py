"""What ``apply`` checks before anything is written, against the data as well as the model.

Every problem found is reported at once (``ValidationError.problems``), each naming the
object and field: duplicate names, unknown entities or sources, schema fields the source
lacks or holds with another kind of type, join keys the source lacks, timestamp columns
that are not timestamps, services naming unknown views or features, and deletions that
would leave another object dangling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa

from parity.catalog import Catalog
from parity.definitions import (
    DataSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
)
from parity.errors import ParityError, ValidationError

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

    for obj in objects:
        if not isinstance(obj, Definition):
            problems.append(f"{obj!r} is not a definition (entity, source, view or service)")
            continue
        if isinstance(obj, FeatureView):
            for e in obj.entities:
                if isinstance(e, Entity):
                    add(e)
            if isinstance(obj.source, DataSource):
                add(obj.source)
        add(obj)
    return ordered, problems


def _timestamp_kind(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t)


def check_view_against_source(view: FeatureView, world: Catalog, schema: pa.Schema) -> list[str]:
    """Problems of one view against its source's real columns."""
    problems = []
    source = world.source_of(view)
    cols = {f.name: f.type for f in schema}
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
            if not world.has("feature_view", p.view):
                problems.append(f"feature service {svc.name!r}: unknown feature view {p.view!r}")
                continue
            have = world.view(p.view).feature_names
            for f in p.features or ():
                if f not in have:
                    problems.append(
                        f"feature service {svc.name!r}: feature view {p.view!r} has no feature {f!r} (it has {have})"
                    )
    return problems


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
    base = [] if delete_missing else current.all()
    world = Catalog.of([*base, *ordered], project=current.project)
    problems += check_references(world)
    schemas: dict[str, pa.Schema] = {}
    for obj in ordered:
        if isinstance(obj, DataSource):
            try:
                schemas[obj.name] = read_schema(obj)
            except ParityError as exc:
                problems.append(str(exc))
                continue
            problems += check_source(obj, schemas[obj.name])
    for obj in ordered:
        if not isinstance(obj, FeatureView) or not world.has("source", obj.source_name):
            continue
        source = world.source_of(obj)
        if source.name not in schemas and not any(source.name in p for p in problems):
            try:
                schemas[source.name] = read_schema(source)
            except ParityError as exc:
                problems.append(f"feature view {obj.name!r}: {exc}")
                continue
        if source.name in schemas:
            problems += check_view_against_source(obj, world, schemas[source.name])
    if problems:
        raise ValidationError(problems)
    return ordered, world


__all__ = ["check_references", "check_source", "check_view_against_source", "collect", "validate"]
