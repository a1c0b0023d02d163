"""What the search index holds of each object: its text per column, and its features' rows.

``document(catalog, obj)`` is one object's text per column of ``search.COLUMNS`` (see
``parity.discovery.search`` for the columns and their weights); ``feature_parts`` its rows in
the features index; ``selected`` the (view, feature) pairs a service selects, which
``unused`` weighs too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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
)
from parity.registry.catalog import Catalog

__all__ = ["document", "feature_parts", "selected"]

_CAMEL = re.compile(r"[a-z0-9](?=[A-Z])|[A-Z](?=[A-Z][a-z])")


def _words(name: str) -> str:
    """A name, and its camelCase humps when it has some (``convRate conv Rate``)."""
    if name.islower() or not name.isascii() or name.isupper():
        return name  # snake_case, the common case, needs no split
    split = _CAMEL.sub(lambda m: m.group(0) + " ", name)
    return name if split == name else f"{name} {split}"


def _tags(tags: Mapping[str, str]) -> str:
    return " ".join(f"{k} {v}" for k, v in sorted(tags.items())) if tags else ""


def _fields(obj: Definition) -> list[Any]:
    try:
        if isinstance(obj, FeatureView):
            return list(obj.features)
        if isinstance(obj, OnDemandFeatureView):
            return list(obj.schema)
    except Exception:  # an aggregated view whose types come at apply
        return []
    return []


def selected(catalog: Catalog, service: FeatureService) -> list[tuple[str, str]]:
    """The (view, feature) pairs a service selects (all of a view's when it lists none)."""
    out = []
    for p in service.features:
        if p.features is not None:
            out += [(p.view, f) for f in p.features]
            continue
        kind = catalog.view_kind(p.view)
        view = catalog.objects[kind][p.view] if kind else None
        out += [(p.view, f.name) for f in _fields(view)] if view is not None else []
    return out


def document(catalog: Catalog, obj: Definition) -> tuple[str, ...]:
    """The object's text per column of ``COLUMNS``."""
    features = details = ""
    refs: list[str] = []
    if isinstance(obj, FeatureView | OnDemandFeatureView):
        fields = _fields(obj)
        features = " ".join(_words(f.name) for f in fields)
        details = " ".join(_field_text(f) for f in fields if f.description or f.tags)
        if isinstance(obj, FeatureView):
            refs = [*obj.entity_names, obj.source_name]
        else:
            for i in obj.inputs:
                refs += [i.view, *(i.features or ())]
            refs += [r.name for r in obj.request_sources]
    elif isinstance(obj, FeatureService):
        # what it selects, weighed below the views holding the features
        refs = [p.view for p in obj.features] + [f for _, f in selected(catalog, obj)]
    elif isinstance(obj, Model):
        refs = [obj.service_name]
    elif isinstance(obj, Entity):
        features = " ".join(obj.join_keys)
    elif isinstance(obj, DataSource):
        if isinstance(obj, PushSource):
            refs = [obj.batch_source_name]
        columns = [obj.timestamp_field, obj.created_timestamp_field or ""]
        columns += [f"{k} {v}" for k, v in obj.field_mapping.items()]
        path = obj.path if isinstance(obj, FileSource) else ""
        details = " ".join(p for p in (path, *columns) if p)
    return (
        _words(obj.name),
        features,
        _tags(obj.tags),
        obj.owner,
        obj.description,
        " ".join(_words(r) for r in refs),
        details,
    )


def _field_text(f: Any) -> str:
    """``conv_rate: Share of offers accepted. [team ranking]``: a feature in ``details``."""
    text = f"{f.name}: {f.description}".rstrip()
    if text and text[-1] not in ".!?":
        text += "."
    return f"{text} [{_tags(f.tags)}]" if f.tags else text


def feature_parts(catalog: Catalog, obj: Definition) -> list[tuple[str, str, str, str]]:
    """(ref, name, description, tags) of each feature row of ``obj`` in the features index."""
    if isinstance(obj, FeatureService):
        return [(f"{v}:{f}", _words(f), "", "") for v, f in selected(catalog, obj)]
    return [(f.name, _words(f.name), f.description, _tags(f.tags)) for f in _fields(obj)]
