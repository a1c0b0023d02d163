"""Read a Feast repo with Feast's own repo parsing (``feast.repo_operations.parse_repo``).

This runs the repo's Python files, as ``feast plan`` does: Feast resolves what they build
(imports between files, helper functions, computed names) exactly. The objects are turned into
``parity.adopt.model`` values; nothing of Feast leaves this module.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from parity.adopt.feast_repo import extract_function, read_config
from parity.adopt.model import (
    FeastEntity,
    FeastField,
    FeastFunction,
    FeastImportError,
    FeastOnDemandView,
    FeastRepo,
    FeastService,
    FeastSource,
    FeastView,
    Problem,
)

__all__ = ["feast_available", "read_with_feast"]

_DUMMY_ENTITY = "__dummy"


_FEAST_ENV = ("PROMETHEUS_MULTIPROC_DIR",)
"""Variables importing Feast sets in the process environment (its metrics folder): put back
as they were, so a server started later in the same process does not count into Feast's."""


def _import_feast_repo_operations() -> Any:
    saved = {name: os.environ.get(name) for name in _FEAST_ENV}
    try:
        import feast.repo_operations

        return feast.repo_operations
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def feast_available() -> bool:
    """Whether the Feast SDK can be imported here."""
    try:
        _import_feast_repo_operations()
    except Exception:
        return False
    return True


def read_with_feast(root: Path) -> FeastRepo:
    """Every object of the Feast repo at ``root``, as Feast itself reads them."""
    parse_repo = _import_feast_repo_operations().parse_repo

    config = read_config(root)
    with _repo_on_path(root), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            contents = parse_repo(root)
        except Exception as exc:
            raise FeastImportError(
                f"{root}: Feast could not load the repo's definitions: "
                f"{type(exc).__name__}: {exc} (try --no-feast to read them without running them)"
            ) from exc
        repo = FeastRepo(path=root, config=config, reader="feast")
        for e in contents.entities:
            if e.name != _DUMMY_ENTITY:
                repo.entities.append(_entity(e))
        for s in contents.data_sources:
            repo.sources.append(_source(s))
        for v in contents.feature_views:
            repo.views.append(_view(v))
        for v in contents.stream_feature_views:
            repo.views.append(_view(v))
        for label_view in contents.label_views:
            repo.views.append(_view(label_view))
        for o in contents.on_demand_feature_views:
            repo.on_demand_views.append(_on_demand(o, root))
        for fs in contents.feature_services:
            repo.services.append(_service(fs))
            repo.problems.extend(_renamed(fs))
        for p in contents.permissions:
            repo.problems.append(
                Problem("permission", p.name, "Parity has no permissions on definitions")
            )
    return repo


@contextlib.contextmanager
def _repo_on_path(root: Path) -> Iterator[None]:
    """Feast imports repo files by module names relative to the working folder."""
    saved_path, saved_modules, saved_cwd = list(sys.path), set(sys.modules), os.getcwd()
    os.chdir(root)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if file and Path(file).resolve().is_relative_to(root):
                del sys.modules[name]


def type_name(dtype: Any) -> str:
    """Feast's name of a Feast type: ``Float32``, ``Array(Int64)``, ``Struct``."""
    text = str(dtype)
    return "Struct" if text.startswith("Struct(") else text


def _fields(fields: Any) -> list[FeastField]:
    return [
        FeastField(
            name=f.name,
            dtype=type_name(f.dtype),
            description=f.description or "",
            tags=dict(f.tags or {}),
        )
        for f in fields
    ]


def _meta(obj: Any) -> dict[str, Any]:
    return {
        "description": getattr(obj, "description", "") or "",
        "owner": getattr(obj, "owner", "") or "",
        "tags": dict(getattr(obj, "tags", None) or {}),
    }


def _entity(e: Any) -> FeastEntity:
    vt = e.value_type.name if e.value_type is not None else None
    keys = list(getattr(e, "join_keys", None) or [e.join_key])
    return FeastEntity(
        name=e.name, join_keys=keys, value_type=None if vt == "UNKNOWN" else vt, **_meta(e)
    )


def _source(s: Any) -> FeastSource:
    from feast import FileSource, PushSource, RequestSource

    common: dict[str, Any] = {
        "name": s.name,
        "type_name": type(s).__name__,
        "timestamp_field": s.timestamp_field or "",
        "created_timestamp_column": s.created_timestamp_column or "",
        "field_mapping": dict(s.field_mapping or {}),
        **_meta(s),
    }
    if isinstance(s, FileSource):
        fmt = s.file_format
        fmt_name = None if fmt is None else type(fmt).__name__.removesuffix("Format").lower()
        return FeastSource(kind="file", path=s.path, file_format=fmt_name, **common)
    if isinstance(s, PushSource):
        batch = s.batch_source.name if s.batch_source is not None else None
        return FeastSource(kind="push", batch_source=batch, **common)
    if isinstance(s, RequestSource):
        return FeastSource(kind="request", schema=_fields(s.schema), **common)
    batch = getattr(s, "batch_source", None)
    return FeastSource(kind="other", batch_source=batch.name if batch else None, **common)


def _view(v: Any) -> FeastView:
    # The source as written: a push or stream source when there is one, else the batch one.
    source = getattr(v, "stream_source", None)
    if source is None:
        source = v.batch_source
    if source is None:
        source = getattr(v, "source", None)
    ttl = v.ttl if isinstance(v.ttl, timedelta) and v.ttl > timedelta(0) else None
    entities = [e for e in v.entities if e != _DUMMY_ENTITY]
    return FeastView(
        name=v.name,
        type_name=type(v).__name__,
        entities=entities,
        source=source.name if source is not None else None,
        schema=_fields(v.features),
        ttl=ttl,
        online=bool(v.online),
        **_meta(v),
    )


def _on_demand(o: Any, root: Path) -> FeastOnDemandView:
    sources = []
    for p in o.source_feature_view_projections.values():
        sources.append((p.name, _selected(p)))
    transformation = o.feature_transformation
    udf = getattr(transformation, "udf", None)
    return FeastOnDemandView(
        name=o.name,
        sources=sources,
        request_sources=[_source(r) for r in o.source_request_sources.values()],
        schema=_fields(o.features),
        mode=str(o.mode),
        function=_function(udf, root),
        singleton=bool(getattr(o, "singleton", False)),
        write_to_online_store=bool(getattr(o, "write_to_online_store", False)),
        aggregations=bool(getattr(o, "aggregations", None)),
        **_meta(o),
    )


def _function(udf: Any, root: Path) -> FeastFunction:
    name = getattr(udf, "__name__", "") or ""
    try:
        file = Path(inspect.getsourcefile(udf) or "")
    except TypeError:
        return FeastFunction(name=name, source=None)
    if not file.is_file() or name == "<lambda>":
        return FeastFunction(name=name, source=None)
    return extract_function(file.resolve(), name, root)


def _service(fs: Any) -> FeastService:
    # Feast fills a projection with the features it selects (all of the view's when none
    # were picked); the converter turns a selection of every feature back into "all".
    features = [(p.name, _selected(p)) for p in fs.feature_view_projections]
    logging = getattr(fs, "logging_config", None) is not None
    return FeastService(name=fs.name, features=features, logging=logging, **_meta(fs))


def _renamed(fs: Any) -> list[Problem]:
    """Projections renamed with ``with_name`` or ``with_join_key_map``: Parity has neither."""
    out = []
    for p in fs.feature_view_projections:
        if p.name_alias or p.join_key_map:
            what = f"alias {p.name_alias!r}" if p.name_alias else f"join keys {p.join_key_map}"
            out.append(
                Problem(
                    "feature_service",
                    fs.name,
                    f"{p.name}: its {what} is not converted (Parity has no projection renames); "
                    "the view is read under its own name and keys",
                    dropped=False,
                )
            )
    return out


def _selected(projection: Any) -> tuple[str, ...] | None:
    if projection.desired_features:
        return tuple(projection.desired_features)
    return tuple(f.name for f in projection.features) or None
