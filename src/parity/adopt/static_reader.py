"""Read a Feast repo without Feast and without running it: its Python parsed with ``ast``.

The files are the ones Feast reads (``feast_repo.repo_files``); ``static_eval`` evaluates
their top level. Objects are collected as Feast's ``parse_repo`` collects them: every Feast
object bound to a module-level name, and the sources of the views and push sources among
them. An object whose definition depends on code the reader cannot evaluate (a helper's
result, a computed name) is listed as a ``Problem`` naming the file, the line and the code.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from parity.adopt.feast_repo import extract_function, read_config, repo_files
from parity.adopt.model import (
    FeastEntity,
    FeastField,
    FeastFunction,
    FeastOnDemandView,
    FeastRepo,
    FeastService,
    FeastSource,
    FeastView,
    Problem,
)
from parity.adopt.static_eval import (
    Call,
    Opaque,
    Projection,
    StaticRepo,
    function_name,
    type_text,
    value_type_name,
)

__all__ = ["read_static"]

_VIEW_CALLS = {
    "FeatureView": "FeatureView",
    "StreamFeatureView": "StreamFeatureView",
    "stream_feature_view": "StreamFeatureView",
    "BatchFeatureView": "BatchFeatureView",
    "batch_feature_view": "BatchFeatureView",
    "LabelView": "LabelView",
}
_ODFV_CALLS = {"on_demand_feature_view", "OnDemandFeatureView"}


class _Unreadable(ValueError):
    """A part of a definition the static reader cannot evaluate."""


def read_static(root: Path) -> FeastRepo:
    """Every object of the Feast repo at ``root``, read from its files' syntax."""
    config = read_config(root)
    repo = FeastRepo(path=root, config=config, reader="static")
    static = StaticRepo(root)
    found: list[Call] = []
    seen: set[int] = set()

    def add(value: Any) -> None:
        if isinstance(value, Call) and id(value) not in seen:
            seen.add(id(value))
            found.append(value)
            for key in ("source", "batch_source", "stream_source"):
                add(value.get(key))

    for path in repo_files(root):
        module = static.load(path)
        for name in sorted(module.names):
            add(module.names[name])
    _Reader(repo, root).read(found)
    return repo


class _Reader:
    def __init__(self, repo: FeastRepo, root: Path):
        self.repo = repo
        self.root = root

    def where(self, call: Call) -> str:
        rel = call.file.relative_to(self.root) if call.file.is_relative_to(self.root) else call.file
        return f"{Path(rel).as_posix()}, line {call.line}"

    def read(self, calls: list[Call]) -> None:
        names: set[tuple[str, str]] = set()
        for call in calls:
            kind = _kind(call.callee)
            if kind is None:
                continue
            try:
                name = self.name(call)
            except _Unreadable as exc:
                self.repo.problems.append(Problem(kind, f"({self.where(call)})", str(exc)))
                continue
            if (kind, name) in names:
                continue
            names.add((kind, name))
            try:
                self.one(kind, name, call)
            except _Unreadable as exc:
                self.repo.problems.append(
                    Problem(
                        kind,
                        name,
                        f"{exc} ({self.where(call)}); the static reader does not "
                        "run code: read the repo with Feast installed",
                    )
                )

    def name(self, call: Call) -> str:
        value = call.get("name")
        if value is None and call.function:
            return call.function
        if value is None and call.callee in ("FileSource",):
            value = call.get("path")  # Feast names an unnamed file source by nothing; use path
        if not isinstance(value, str):
            raise _Unreadable(f"its name is computed ({_code(value)}); cannot read it statically")
        return value

    def one(self, kind: str, name: str, call: Call) -> None:
        if kind == "entity":
            self.repo.entities.append(self.entity(name, call))
        elif kind == "source":
            self.repo.sources.append(self.source(name, call))
        elif kind == "feature_view":
            self.repo.views.append(self.view(name, call))
        elif kind == "on_demand_feature_view":
            self.repo.on_demand_views.append(self.on_demand(name, call))
        elif kind == "feature_service":
            self.repo.services.append(self.service(name, call))
        elif kind == "permission":
            self.repo.problems.append(
                Problem("permission", name, "Parity has no permissions on definitions")
            )

    # -- parts ---------------------------------------------------------------------------

    def meta(self, call: Call) -> dict[str, Any]:
        tags = _text(call.get("tags", {}) or {}, "tags", dict)
        return {
            "description": _text(call.get("description", "") or "", "description", str),
            "owner": _text(call.get("owner", "") or "", "owner", str),
            "tags": {str(k): str(v) for k, v in tags.items()},
        }

    def fields(self, value: Any, what: str) -> list[FeastField]:
        items = _text(value or [], what, list)
        out = []
        for item in items:
            if not isinstance(item, Call) or item.callee != "Field":
                raise _Unreadable(f"{what}: {_code(item)} is not a Field(...)")
            dtype = type_text(item.get("dtype"))
            if dtype is None:
                raise _Unreadable(f"{what}: the type of {item.get('name')!r} is not a Feast type")
            out.append(
                FeastField(
                    name=_text(item.get("name"), f"{what}: a field's name", str),
                    dtype=dtype,
                    description=_text(item.get("description", "") or "", "description", str),
                    tags={str(k): str(v) for k, v in (item.get("tags") or {}).items()},
                )
            )
        return out

    def entity(self, name: str, call: Call) -> FeastEntity:
        keys = call.get("join_keys")
        if keys is None:
            keys = [call.get("join_key", name)]
        keys = _text(keys, "join_keys", list)
        vt = call.get("value_type")
        vt_name = value_type_name(vt) if vt is not None else None
        if vt is not None and vt_name is None:
            raise _Unreadable(f"value_type {_code(vt)} is not a ValueType")
        return FeastEntity(
            name=name,
            join_keys=[_text(k, "join_keys", str) for k in keys],
            value_type=None if vt_name == "UNKNOWN" else vt_name,
            **self.meta(call),
        )

    def source(self, name: str, call: Call) -> FeastSource:
        common: dict[str, Any] = {
            "name": name,
            "type_name": call.callee,
            "timestamp_field": _text(call.get("timestamp_field", "") or "", "timestamp_field", str),
            "created_timestamp_column": _text(
                call.get("created_timestamp_column", "") or "", "created_timestamp_column", str
            ),
            "field_mapping": dict(_text(call.get("field_mapping") or {}, "field_mapping", dict)),
        }
        if call.callee in ("PushSource", "KafkaSource", "KinesisSource"):
            batch = call.get("batch_source")
            batch_name = self.name(batch) if isinstance(batch, Call) else None
            if batch_name is None and call.callee == "PushSource":
                raise _Unreadable(f"batch_source {_code(batch)} is not a source")
            if call.callee == "PushSource":
                inherited = self.source(batch_name, batch) if batch_name else None
                if inherited is not None:  # Feast's push source takes its batch source's fields
                    common["timestamp_field"] = inherited.timestamp_field
                    common["created_timestamp_column"] = inherited.created_timestamp_column
                    common["field_mapping"] = inherited.field_mapping
                return FeastSource(
                    kind="push", batch_source=batch_name, **common, **self.meta(call)
                )
            return FeastSource(kind="other", batch_source=batch_name, **common, **self.meta(call))
        if call.callee == "FileSource":
            fmt = call.get("file_format")
            fmt_name = None
            if isinstance(fmt, Call):
                fmt_name = fmt.callee.removesuffix("Format").lower()
            path = call.get("path")
            if path is not None and not isinstance(path, str):
                raise _Unreadable(f"path {_code(path)} is computed")
            return FeastSource(
                kind="file", path=path, file_format=fmt_name, **common, **self.meta(call)
            )
        if call.callee == "RequestSource":
            return FeastSource(
                kind="request",
                schema=self.fields(call.get("schema"), "schema"),
                **common,
                **self.meta(call),
            )
        return FeastSource(kind="other", **common, **self.meta(call))

    def entity_names(self, value: Any) -> list[str]:
        out = []
        for e in _text(value or [], "entities", list):
            if isinstance(e, Call) and e.callee == "Entity":
                out.append(self.name(e))
            elif isinstance(e, str):
                out.append(e)
            else:
                raise _Unreadable(f"entities: {_code(e)} is not an entity")
        return out

    def join_keys(self, entity_names: list[str], call: Call) -> set[str]:
        keys: set[str] = set()
        for e in _text(call.get("entities") or [], "entities", list):
            if isinstance(e, Call):
                jk = e.get("join_keys") or [e.get("join_key", self.name(e))]
                keys |= {k for k in jk if isinstance(k, str)}
        for e in self.repo.entities:
            if e.name in entity_names:
                keys |= set(e.join_keys)
        return keys

    def view(self, name: str, call: Call) -> FeastView:
        type_name = _VIEW_CALLS[call.callee]
        entities = self.entity_names(call.get("entities"))
        source = call.get("source")
        source_name = self.name(source) if isinstance(source, Call) else None
        if source_name is None and type_name == "FeatureView":
            raise _Unreadable(f"source {_code(source)} is not a source")
        keys = self.join_keys(entities, call)
        schema = [f for f in self.fields(call.get("schema"), "schema") if f.name not in keys]
        ttl = call.get("ttl")
        if ttl is not None and not isinstance(ttl, timedelta):
            raise _Unreadable(f"ttl {_code(ttl)} is not a timedelta")
        return FeastView(
            name=name,
            type_name=type_name,
            entities=entities,
            source=source_name,
            schema=schema,
            ttl=ttl if ttl is not None and ttl > timedelta(0) else None,
            online=bool(_text(call.get("online", True), "online", bool)),
            **self.meta(call),
        )

    def selection(self, item: Any, what: str) -> tuple[str, tuple[str, ...] | None]:
        if isinstance(item, Projection):
            return self.name(item.view), item.features
        if isinstance(item, Call):
            return self.name(item), None
        raise _Unreadable(f"{what}: {_code(item)} is not a view or view[[...]]")

    def on_demand(self, name: str, call: Call) -> FeastOnDemandView:
        sources, requests = [], []
        for item in _text(call.get("sources") or [], "sources", list):
            if isinstance(item, Call) and item.callee == "RequestSource":
                requests.append(self.source(self.name(item), item))
            else:
                sources.append(self.selection(item, "sources"))
        fn_name = call.function or function_name(call.get("udf"))
        function = FeastFunction(name=fn_name or "", source=None)
        if fn_name:
            function = extract_function(call.file, fn_name, self.root)
        mode = call.get("mode", "pandas")
        mode = getattr(mode, "name", mode)
        return FeastOnDemandView(
            name=name,
            sources=sources,
            request_sources=requests,
            schema=self.fields(call.get("schema"), "schema"),
            mode=str(mode).lower() if isinstance(mode, str) else _code(mode),
            function=function,
            singleton=bool(call.get("singleton", False)),
            write_to_online_store=bool(call.get("write_to_online_store", False)),
            aggregations=bool(call.get("aggregations")),
            **self.meta(call),
        )

    def service(self, name: str, call: Call) -> FeastService:
        features = [
            self.selection(item, "features")
            for item in _text(call.get("features") or [], "features", list)
        ]
        logging = call.get("logging_config") is not None
        return FeastService(name=name, features=features, logging=logging, **self.meta(call))


def _kind(callee: str) -> str | None:
    if callee == "Entity":
        return "entity"
    if callee.endswith("Source") and callee != "DataSource":
        return "source"
    if callee in _VIEW_CALLS:
        return "feature_view"
    if callee in _ODFV_CALLS:
        return "on_demand_feature_view"
    if callee == "FeatureService":
        return "feature_service"
    if callee == "Permission":
        return "permission"
    return None


def _code(value: Any) -> str:
    if isinstance(value, Opaque):
        return value.code
    if isinstance(value, Call):
        return f"{value.callee}(...)"
    return repr(value)


def _text(value: Any, what: str, kind: type) -> Any:
    """``value`` when it is a ``kind`` the reader knows; else ``_Unreadable`` naming ``what``."""
    if isinstance(value, tuple) and kind is list:
        value = list(value)
    if isinstance(value, kind) and not isinstance(value, Opaque):
        bad = [v for v in value if isinstance(v, Opaque)] if isinstance(value, list) else []
        if bad:
            raise _Unreadable(f"{what}: {bad[0].code} is computed")
        return value
    raise _Unreadable(f"{what}: {_code(value)} is computed")
