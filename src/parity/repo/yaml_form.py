"""The YAML form of definitions: the same objects the Python form builds, from ``*.yaml`` files.

A YAML file holds one or more documents separated by ``---``; documents are numbered from 1
and errors name them as ``defs/driver.yaml#2``. Empty documents are skipped. A document is
one of three forms:

(a) one object, ``kind:`` one of ``entity``, ``source``, ``stream_source``, ``feature_view``,
    ``feature_service``, ``model``, ``role``,
    plus that kind's fields::

        kind: feature_view
        name: driver_stats
        entities: [driver]            # or  entity: driver
        source: trips                 # a source name, or an inline source mapping
        ttl: 2h
        schema:
          - { name: trips_today, dtype: Int64 }
          - { name: rating, dtype: Float32, description: "5-star average", pii: false }

    A source takes ``type: file`` (the default) and the source type's fields (``path``,
    ``timestamp_field``, ``field_mapping``...). ``kind: stream_source`` is a source of
    ``type: stream`` whose broker is given as ``broker: redis_streams | nats_jetstream``
    (``kind=`` in Python). A service's ``features`` are view names,
    ``"view:f1,f2"`` strings, or ``{view: v, features: [f1, f2]}`` mappings; a model's ``features`` is one service's
    name. A role's
    ``permissions`` are mappings of ``actions``, ``kinds``, ``names``, ``tags``, ``purposes``.

(b) lists of objects under ``entities:``, ``sources:``, ``feature_views:``,
    ``feature_services:``, ``models:``, ``roles:`` (any of them, nothing else); each item is form (a) without
    ``kind:`` (a matching ``kind:`` is allowed).

(c) the single-feature form teams already write: no ``kind:``, and ``entity``, ``source`` and
    a type in ``dtype:`` (or ``type:``)::

        name: user_30d_purchase_count
        entity: user_id
        source: orders
        dtype: Int64
        owner: growth-ml
        sla: { freshness: "5m", availability: "99.5%" }
        pii: false

    It becomes a FeatureView named ``name`` with one Field of the same name and type.
    ``owner``, ``description``, ``tags``, ``sla``, ``pii``, ``ttl`` and ``online`` are kept on
    the view; ``pii`` is also set on the field.

Window aggregations: in form (c), ``transformation: window_count(30d)`` (or
``window_sum(7d)`` with ``column: amount``, ``window_last_n(7d, 5)``; optional ``hop:``)
makes a view with that one aggregation, named ``name``; ``dtype`` is then optional and, when
given, must be the aggregation's output type where that is fixed (counts: Int64; mean and
stddev: Float64). In form (a), ``aggregations:`` lists items with either ``function``,
``window``, ``column``, ``name``, ``n`` or ``transformation: window_sum(7d)`` with ``column``
and ``name``; ``hop:`` applies to them all, and ``schema`` is then optional (the columns the
aggregations read; apply fills in those left out). A schema item also takes ``type:`` for
``dtype:``.

``entity:``/``entities:`` name entities by name or by join key (``entity: user_id``). The
loader resolves them once every file of the repo is read (``resolve_entity_refs``): a name of
an entity is kept; else, if exactly one entity has that join key, that entity's name is used;
a join key that several entities have is refused as ambiguous, naming them; else the
reference is left as written and ``apply`` reports the unknown entity.

Unknown keys, repeated keys, wrong types and bad durations raise ``DefinitionError`` naming
the file, the document, the object and the field.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from parity import cache
from parity.definitions.aggregation import Aggregation, aggregation_from_yaml
from parity.definitions.base import Definition
from parity.definitions.entity import Entity
from parity.definitions.feature_service import FeatureService
from parity.definitions.feature_view import FeatureView, Field
from parity.definitions.model import Model
from parity.definitions.role import Permission, Role
from parity.definitions.source import _SOURCE_TYPES, DataSource
from parity.errors import DefinitionError

__all__ = [
    "YamlObject",
    "parse_yaml",
    "read_yaml_file",
    "resolve_entity_refs",
]

LIST_KEYS = {
    "entities": "entity",
    "sources": "source",
    "feature_views": "feature_view",
    "feature_services": "feature_service",
    "models": "model",
    "roles": "role",
}
_COMMON = {"name", "description", "owner", "tags", "lifecycle"}
_ENTITY_KEYS = _COMMON | {"join_keys", "dtype"}
_VIEW_KEYS = _COMMON | {
    "entities",
    "entity",
    "source",
    "schema",
    "ttl",
    "online",
    "sla",
    "pii",
    "aggregations",
    "hop",
    "on_check_failure",
    "drift",
}
_SERVICE_KEYS = _COMMON | {"features", "pin_versions"}
_ROLE_KEYS = _COMMON | {"permissions"}
_MODEL_KEYS = _COMMON | {"features"}
_GOVERNANCE_FIELD_KEYS = {  # parity.definitions.Field's governance metadata
    "classification",
    "mask",
    "encrypt",
    "lawful_basis",
    "purposes",
    "classification_reason",
}
_FIELD_KEYS = {"name", "dtype", "type", "description", "tags", "pii", "checks", "drift"}
_FIELD_KEYS |= _GOVERNANCE_FIELD_KEYS
_SINGLE_KEYS = _COMMON | {
    "entity",
    "source",
    "dtype",
    "type",
    "sla",
    "pii",
    "ttl",
    "online",
    "transformation",
    "column",
    "hop",
    "checks",
    "drift",
    "on_check_failure",
}
_SINGLE_KEYS |= _GOVERNANCE_FIELD_KEYS
_SINGLE_MARKERS = {"entity", "source", "dtype", "type", "transformation"}


@dataclass(frozen=True)
class YamlObject:
    """A definition read from YAML, with the number of the document it was written in."""

    definition: Definition
    document: int


def read_yaml_file(path: str | Path, display: str | None = None) -> list[YamlObject]:
    """Every definition in one YAML file; ``display`` (a repo-relative path) names it in errors.

    What a file's bytes parse to is kept in this process. A file of at least
    ``CACHED_BYTES`` also keeps what each of its documents parsed to in the disk cache
    (``parity.cache``), so the next process parses only the documents that changed: one
    view edited in a file of thousands is one document parsed. Definitions are immutable,
    so the objects are shared. Errors are always those of parsing the whole file.
    """
    path = Path(path)
    where = display or str(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{where}: cannot read the file: {exc}") from exc
    key = f"{hashlib.sha256(raw).hexdigest()}|{where}"
    with _PARSED_LOCK:
        found = _PARSED.get(key)
        if found is not None:
            _PARSED.move_to_end(key)
    if found is None:
        if len(raw) >= CACHED_BYTES:
            found = tuple(_read_documents(path, text, where))
        else:
            found = tuple(parse_yaml(text, where))
        with _PARSED_LOCK:
            _PARSED[key] = found
            while len(_PARSED) > _PARSED_KEEP:
                _PARSED.popitem(last=False)
    return list(found)


def parse_yaml(text: str, display: str = "<yaml>") -> list[YamlObject]:
    """Every definition in YAML ``text``, in document order."""
    return _numbered(_parse_documents(text, display))


CACHED_BYTES = 32 * 1024
"""YAML files this large or larger keep their documents' parses on disk between processes."""
_PARSED: OrderedDict[str, tuple[YamlObject, ...]] = OrderedDict()
_PARSED_KEEP = 64
_PARSED_LOCK = threading.Lock()
_MARKER = re.compile(r"^---(?:[ \t]|$)", re.MULTILINE)
_UNSPLITTABLE = re.compile(r"^(?:%|\.\.\.(?:[ \t]|$))", re.MULTILINE)
_FEW_MISSING = 8
"""Changed documents parsed one by one (else the whole file is parsed and kept again)."""


def _parse_documents(text: str, display: str, start: int = 1) -> list[list[Definition]]:
    """The definitions of each document of ``text``, numbered from ``start`` in errors."""
    try:
        documents = list(yaml.load_all(text, Loader=_StrictLoader))
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{display}: not valid YAML: {_yaml_problem(exc)}") from None
    return [_document(doc, f"{display}#{n}") for n, doc in enumerate(documents, start=start)]


def _numbered(documents: Iterable[Iterable[Definition]]) -> list[YamlObject]:
    return [YamlObject(obj, n) for n, objs in enumerate(documents, start=1) for obj in objs]


def _split_documents(text: str) -> list[str] | None:
    """The text of each document, split at its ``---`` lines (YAML forbids such a line
    inside any scalar); None for a file with directives or ``...`` ends (not split)."""
    if _UNSPLITTABLE.search(text):
        return None
    cuts = [m.start() for m in _MARKER.finditer(text)]
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    head = chunks.pop(0)
    if any(line.strip() and not line.lstrip().startswith("#") for line in head.splitlines()):
        chunks.insert(0, head)  # content before the first marker: the first document
    return chunks


def _read_documents(path: Path, text: str, where: str) -> list[YamlObject]:
    """``parse_yaml`` of a large file, parsing only the documents the disk cache lacks."""
    chunks = _split_documents(text)
    if chunks is None:
        return parse_yaml(text, where)
    slot = str(path.resolve())
    known = cache.load("yaml_documents", slot)
    if not isinstance(known, dict):
        known = {}
    digests = [hashlib.sha256(c.encode()).hexdigest() for c in chunks]
    missing = [i for i, d in enumerate(digests) if d not in known]
    if len(missing) <= _FEW_MISSING:
        docs = [known.get(d) for d in digests]
        for i in missing:
            try:
                parsed = _parse_documents(chunks[i], where, start=i + 1)
            except DefinitionError:
                parsed = []
            if len(parsed) != 1:  # the whole file says what is wrong, where
                return parse_yaml(text, where)
            docs[i] = tuple(parsed[0])
        return _numbered(d or () for d in docs)  # kept as it was: few documents to redo
    documents = _parse_documents(text, where)
    if len(documents) == len(chunks):
        for objs in documents:
            for obj in objs:
                obj.content_hash()  # kept with the object, so pickled too
        kept = {d: tuple(o) for d, o in zip(digests, documents, strict=True)}
        cache.save("yaml_documents", slot, kept, keep=64)
    return _numbered(documents)


def resolve_entity_refs(view: FeatureView, entities: Iterable[Entity]) -> FeatureView:
    """``view`` with each entity reference that is a join key replaced by its entity's name.

    A reference that names an entity is kept; one that is a join key of exactly one entity
    becomes that entity's name; one that is a join key of several is refused
    (``DefinitionError`` naming the view, the key and the entities); any other is left as
    written. Returns ``view`` itself when nothing changes.
    """
    entities = list(entities)
    names = {e.name for e in entities}
    owners: dict[str, set[str]] = {}
    for e in entities:
        for key in e.join_keys:
            owners.setdefault(key, set()).add(e.name)
    refs: list[Entity | str] = []
    for ref in view.entities:
        if isinstance(ref, str) and ref not in names and ref in owners:
            if len(owners[ref]) > 1:
                *most, last = (repr(n) for n in sorted(owners[ref]))
                raise DefinitionError(
                    f"feature view {view.name!r}: entity {ref!r} is ambiguous: it is a join "
                    f"key of the entities {', '.join(most)} and {last}; name the entity "
                    f"instead (entity: {sorted(owners[ref])[0]})"
                )
            ref = next(iter(owners[ref]))
        refs.append(ref)
    if refs == list(view.entities):
        return view
    data = {name: getattr(view, name) for name in type(view).model_fields}
    return type(view)(**{**data, "entities": refs})


# -- documents ---------------------------------------------------------------------------


def _document(doc: Any, where: str) -> list[Definition]:
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise DefinitionError(
            f"{where}: a document must be a mapping (kind: ..., lists under "
            f"{', '.join(LIST_KEYS)}, or a single feature), got {_type_name(doc)}"
        )
    _check_text_keys(doc, where)
    if "kind" in doc:
        body = dict(doc)
        return [_build(body.pop("kind"), body, where)]
    if LIST_KEYS.keys() & doc.keys():
        return _lists(doc, where)
    if _SINGLE_MARKERS & doc.keys():
        return [_single_feature(doc, where)]
    raise DefinitionError(
        f"{where}: cannot tell what this document defines: give kind: "
        f"({', '.join(LIST_KEYS.values())}), lists under {', '.join(LIST_KEYS)}, or a single "
        "feature with entity, source and dtype"
    )


def _lists(doc: dict[str, Any], where: str) -> list[Definition]:
    _check_keys(doc, set(LIST_KEYS), where, "document")
    out: list[Definition] = []
    for key, kind in LIST_KEYS.items():
        items = doc.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise DefinitionError(f"{where}: {key}: expected a list, got {_type_name(items)}")
        for i, item in enumerate(items):
            at = f"{where}, {key}[{i}]"
            if not isinstance(item, dict):
                raise DefinitionError(f"{at}: expected a mapping, got {_type_name(item)}")
            _check_text_keys(item, at)
            body = dict(item)
            if body.get("kind", kind) != kind:
                raise DefinitionError(
                    f"{at}: kind {body['kind']!r} in the {key} list; move it or drop kind:"
                )
            body.pop("kind", None)
            out.append(_build(kind, body, at))
    return out


def _build(kind: Any, body: dict[str, Any], where: str) -> Definition:
    builders = {
        "entity": _entity,
        "source": _source,
        "stream_source": _stream_source,
        "feature_view": _feature_view,
        "feature_service": _feature_service,
        "model": _model,
        "role": _role,
    }
    builder = builders.get(kind) if isinstance(kind, str) else None
    if kind == "on_demand_feature_view":
        raise DefinitionError(
            f"{where}: on-demand feature views are Python-only (YAML cannot hold a function); "
            "define one with @on_demand_feature_view in a .py file of the repo"
        )
    if builder is None:
        raise DefinitionError(f"{where}: unknown kind {kind!r}; known: {', '.join(builders)}")
    return builder(body, where)


def _entity(body: dict[str, Any], where: str) -> Entity:
    label = _label("entity", body)
    _check_keys(body, _ENTITY_KEYS, where, label)
    if "name" not in body:
        raise DefinitionError(f"{where}: {label}: name: required")
    return _construct(Entity, body, where)


def _source(body: dict[str, Any], where: str) -> DataSource:
    label = _label("source", body)
    data = dict(body)
    source_type = data.pop("type", "file")
    cls = _SOURCE_TYPES.get(source_type) if isinstance(source_type, str) else None
    if cls is None:
        raise DefinitionError(
            f"{where}: {label}: type: unknown source type {source_type!r}; "
            f"known: {', '.join(sorted(_SOURCE_TYPES))}"
        )
    allowed = (set(cls.model_fields) - {"source_type"}) | {"type"}
    _check_keys(body, allowed, where, label)
    return _construct(cls, data, where)


def _stream_source(body: dict[str, Any], where: str) -> DataSource:
    """``kind: stream_source``: a source of ``type: stream`` (its broker under ``broker:``)."""
    if body.get("type", "stream") != "stream":
        raise DefinitionError(
            f"{where}: {_label('stream_source', body)}: type: a stream source is of type "
            f"stream, not {body['type']!r} (the broker goes under broker:)"
        )
    return _source({**body, "type": "stream"}, where)


def _feature_view(body: dict[str, Any], where: str) -> FeatureView:
    label = _label("feature_view", body)
    _check_keys(body, _VIEW_KEYS, where, label)
    data = dict(body)
    data["entities"] = _entity_refs(body, where, label)
    data.pop("entity", None)
    if "source" in data:
        data["source"] = _source_ref(data["source"], where, label)
    if "aggregations" in data:
        data["aggregations"] = _aggregations(data["aggregations"], where, label)
        data.setdefault("schema", [])
    if "schema" not in data:
        raise DefinitionError(f"{where}: {label}: schema: required (a list of fields)")
    schema = data["schema"]
    if not isinstance(schema, list):
        raise DefinitionError(
            f"{where}: {label}: schema: expected a list of fields, got {_type_name(schema)}"
        )
    data["schema"] = [_field(item, i, where, label) for i, item in enumerate(schema)]
    return _construct(FeatureView, data, where)


def _feature_service(body: dict[str, Any], where: str) -> FeatureService:
    label = _label("feature_service", body)
    _check_keys(body, _SERVICE_KEYS, where, label)
    return _construct(FeatureService, body, where)


def _model(body: dict[str, Any], where: str) -> Model:
    label = _label("model", body)
    _check_keys(body, _MODEL_KEYS, where, label)
    return _construct(Model, body, where)


def _role(body: dict[str, Any], where: str) -> Role:
    """``kind: role``: ``permissions`` is a list of mappings with the keys of ``Permission``."""
    label = _label("role", body)
    _check_keys(body, _ROLE_KEYS, where, label)
    if "name" not in body:
        raise DefinitionError(f"{where}: {label}: name: required")
    perms = body.get("permissions", [])
    if not isinstance(perms, list):
        raise DefinitionError(
            f"{where}: {label}: permissions: expected a list, got {_type_name(perms)}"
        )
    for i, p in enumerate(perms):
        if not isinstance(p, dict):
            raise DefinitionError(
                f"{where}: {label}: permissions[{i}]: expected a mapping, got {_type_name(p)}"
            )
        _check_keys(p, set(Permission.model_fields), where, f"{label}: permissions[{i}]")
    return _construct(Role, body, where)


def _single_feature(doc: dict[str, Any], where: str) -> FeatureView:
    label = _label("feature", doc)
    _check_keys(doc, _SINGLE_KEYS, where, label)
    if "transformation" in doc:
        return _single_aggregation(doc, where, label)
    if "column" in doc or "hop" in doc:
        raise DefinitionError(f"{where}: {label}: column and hop go with transformation:")
    if "dtype" in doc and "type" in doc:
        raise DefinitionError(f"{where}: {label}: give dtype or type, not both")
    missing = [k for k in ("name", "entity", "source") if k not in doc]
    if "dtype" not in doc and "type" not in doc:
        missing.append("dtype")
    if missing:
        raise DefinitionError(
            f"{where}: {label}: a single feature needs name, entity, source and dtype; "
            f"missing: {', '.join(missing)}"
        )
    field: dict[str, Any] = {"name": doc["name"], "dtype": doc.get("dtype", doc.get("type"))}
    for key in ("pii", "checks", "drift", *sorted(_GOVERNANCE_FIELD_KEYS)):
        if key in doc:  # the one field's own (drift and pii also the view's)
            field[key] = doc[key]
    own = ("entity", "dtype", "type", "checks", *_GOVERNANCE_FIELD_KEYS)
    data = {k: v for k, v in doc.items() if k not in own}
    data["entities"] = _entity_refs(doc, where, label)
    data["source"] = _source_ref(doc["source"], where, label)
    data["schema"] = [_field(field, 0, where, label)]
    return _construct(FeatureView, data, where)


# -- parts -------------------------------------------------------------------------------


def _entity_refs(data: dict[str, Any], where: str, label: str) -> Any:
    if "entity" in data and "entities" in data:
        raise DefinitionError(f"{where}: {label}: give entity or entities, not both")
    if "entity" not in data and "entities" not in data:
        raise DefinitionError(f"{where}: {label}: entities: required (or entity: name)")
    field = "entity" if "entity" in data else "entities"
    refs = data[field]
    items = [refs] if isinstance(refs, str) else refs
    if not isinstance(items, list) or not all(isinstance(r, str) for r in items):
        raise DefinitionError(
            f"{where}: {label}: {field}: expected an entity name or a list of entity names, "
            f"got {refs!r}"
        )
    return items


def _source_ref(value: Any, where: str, label: str) -> Any:
    if isinstance(value, dict):
        _check_text_keys(value, f"{where}: {label}: source")
        return _source(value, f"{where}: {label}: inline source")
    return value  # a name; the view checks it


def _field(item: Any, index: int, where: str, label: str) -> Field:
    at = f"{where}: {label}: schema[{index}]"
    if not isinstance(item, dict):
        raise DefinitionError(
            f"{at}: expected a mapping such as {{name: x, dtype: Int64}}, got {item!r}"
        )
    _check_text_keys(item, at)
    _check_keys(item, _FIELD_KEYS, at, _label("field", item))
    data = dict(item)
    if "type" in data:
        if "dtype" in data:
            raise DefinitionError(f"{at}: give dtype or type, not both")
        data["dtype"] = data.pop("type")
    for required in ("name", "dtype"):
        if required not in data:
            raise DefinitionError(f"{at}: {_label('field', item)}: {required}: required")
    try:
        return Field(**data)
    except DefinitionError as exc:
        raise DefinitionError(f"{at}: {exc}") from None


def _construct(cls: type[Definition], data: dict[str, Any], where: str) -> Any:
    try:
        return cls(**data)
    except DefinitionError as exc:
        raise DefinitionError(f"{where}: {exc}") from None


def _aggregation(item: Any, where: str, label: str) -> Aggregation:
    if not isinstance(item, dict):
        raise DefinitionError(f"{where}: {label}: an aggregation is a mapping, got {item!r}")
    try:
        if "transformation" in item:
            extra = sorted(set(item) - {"transformation", "column", "name"})
            if extra:
                raise DefinitionError(f"with transformation:, unknown keys {extra}")
            return aggregation_from_yaml(
                str(item["transformation"]), item.get("column"), item.get("name")
            )
        return Aggregation(**item)
    except (DefinitionError, ValueError) as exc:
        raise DefinitionError(f"{where}: {label}: aggregation: {exc}") from None


def _aggregations(items: Any, where: str, label: str) -> list[Aggregation]:
    if not isinstance(items, list) or not items:
        raise DefinitionError(f"{where}: {label}: aggregations: expected a non-empty list")
    return [_aggregation(item, where, label) for item in items]


def _single_aggregation(doc: dict[str, Any], where: str, label: str) -> FeatureView:
    missing = [k for k in ("name", "entity", "source") if k not in doc]
    if missing:
        raise DefinitionError(
            f"{where}: {label}: an aggregated feature needs name, entity, source and "
            f"transformation; missing: {', '.join(missing)}"
        )
    agg = _aggregation(
        {"transformation": doc["transformation"], "column": doc.get("column"), "name": doc["name"]},
        where,
        label,
    )
    dtype = doc.get("dtype", doc.get("type"))
    fixed = {"count": "Int64", "count_distinct": "Int64", "approx_count_distinct": "Int64"}
    fixed.update(mean="Float64", stddev="Float64")
    if dtype is not None and agg.function in fixed and str(dtype) != fixed[agg.function]:
        raise DefinitionError(
            f"{where}: {label}: dtype: {agg.function} gives {fixed[agg.function]}, not {dtype}"
        )
    if "checks" in doc:
        raise DefinitionError(
            f"{where}: {label}: checks: an aggregated single feature has no field to check; "
            "declare the view with kind: feature_view and put checks on its schema's columns"
        )
    keep: tuple[str, ...] = ("description", "owner", "tags", "sla", "pii", "online", "hop")
    keep += ("name", "drift", "on_check_failure")
    data: dict[str, Any] = {k: doc[k] for k in keep if k in doc}
    data["entities"] = _entity_refs(doc, where, label)
    data["source"] = _source_ref(doc["source"], where, label)
    data["aggregations"] = [agg]
    return _construct(FeatureView, data, where)


def _check_keys(body: dict[str, Any], allowed: set[str], where: str, label: str) -> None:
    unknown = sorted(set(body) - allowed)
    if not unknown:
        return
    problems = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"unknown field {key!r}{hint}")
    raise DefinitionError(
        f"{where}: {label}: {'; '.join(problems)}; allowed: {', '.join(sorted(allowed))}"
    )


def _check_text_keys(body: dict[Any, Any], where: str) -> None:
    # YAML 1.1 reads some bare keys as other types: `on:` is True, `1:` is 1.
    bad = [k for k in body if not isinstance(k, str)]
    if bad:
        raise DefinitionError(f"{where}: keys must be text; quote {bad[0]!r}")


def _label(kind: str, body: dict[str, Any]) -> str:
    name = body.get("name")
    return f"{kind} {name!r}" if isinstance(name, str) else kind


def _type_name(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean"}
    return names.get(type(value), f"{type(value).__name__} {value!r}")


# -- YAML reading ------------------------------------------------------------------------


_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when built


class _StrictLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that refuses a key repeated in one mapping (PyYAML keeps the last); on
    libyaml's parser where PyYAML has it (ten times faster on a large repo)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
            seen.setdefault(key, key_node.start_mark.line)
        except TypeError:  # an unhashable key; the base constructor reports it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found key {key!r} again (first on line {first + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return problem
