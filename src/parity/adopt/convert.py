"""Feast objects (``parity.adopt.model``) as Parity definitions, and what does not convert.

Entities, file and push sources, feature views and feature services become the YAML form
(``features.yaml``); on-demand views become ``on_demand.py``, each function carried over as
written (``codegen_on_demand``). Objects come out sorted by name within each kind, so the same
Feast repo gives the same files whichever reader read it. An object that cannot be converted
is left out with a ``Problem``; so is every object that depends on one left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from parity.adopt.config_map import convert_config
from parity.adopt.model import (
    FeastField,
    FeastOnDemandView,
    FeastRepo,
    FeastSource,
    FeastView,
    Problem,
)
from parity.adopt.on_demand_code import OnDemandPlan, render_module
from parity.adopt.types_map import Unsupported, entity_type, field_type, note_for
from parity.definitions.base import format_duration

__all__ = ["Converted", "convert"]

_SOURCE_REASONS = {
    "BigQuerySource": "BigQuery tables",
    "SnowflakeSource": "Snowflake tables",
    "RedshiftSource": "Redshift tables",
    "SparkSource": "Spark tables",
    "TrinoSource": "Trino tables",
    "PostgreSQLSource": "PostgreSQL tables",
    "AthenaSource": "Athena tables",
    "KafkaSource": "Kafka topics",
    "KinesisSource": "Kinesis streams",
}
_VIEW_REASONS = {
    "StreamFeatureView": "stream feature views (a stream source with its transformation and "
    "aggregations) are not converted; Parity reads pushed rows (push sources) instead",
    "BatchFeatureView": "batch feature views (a transformation run by a batch engine) are not "
    "converted",
    "LabelView": "label views (mutable labels with a labeler and a conflict policy) have no "
    "Parity counterpart",
}


@dataclass
class Converted:
    """The new repo's contents: ``parity.yaml``, the YAML definitions, the on-demand module."""

    config: dict[str, Any]
    definitions: dict[str, list[dict[str, Any]]]
    on_demand_module: str | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out = {key: len(items) for key, items in self.definitions.items()}
        out["on_demand_views"] = (
            self.on_demand_module.count("@on_demand_feature_view(")
            if (self.on_demand_module)
            else 0
        )
        return out

    @property
    def useful(self) -> bool:
        """At least one feature view or on-demand view was converted."""
        c = self.counts
        return bool(c.get("feature_views") or c.get("on_demand_views"))


def convert(repo: FeastRepo, out_dir: Path) -> Converted:
    """Convert ``repo`` for a Parity repo to be written at ``out_dir`` (file paths are made
    absolute, so the new repo reads the Feast repo's data where it is)."""
    return _Converter(repo, out_dir.resolve()).run()


class _Converter:
    def __init__(self, repo: FeastRepo, out_dir: Path):
        self.repo = repo
        self.out_dir = out_dir
        self.problems: list[Problem] = list(repo.problems)
        self.entities: dict[str, dict[str, Any]] = {}
        self.sources: dict[str, dict[str, Any]] = {}
        self.features: dict[str, list[str]] = {}
        """Converted views (plain and on-demand): their converted feature names."""

    def problem(self, kind: str, name: str, reason: str, dropped: bool = True) -> None:
        self.problems.append(Problem(kind, name, reason, dropped))

    def run(self) -> Converted:
        config, config_problems = convert_config(self.repo.config)
        self.problems.extend(config_problems)
        for e in sorted(self.repo.entities, key=lambda e: e.name):
            self.entity(e)
        for s in sorted(self.repo.sources, key=lambda s: (s.kind == "push", s.name)):
            self.source(s)
        views = [v for v in map(self.view, sorted(self.repo.views, key=_name)) if v]
        plans = self.on_demand_views()
        services = [s for s in map(self.service, sorted(self.repo.services, key=_name)) if s]
        definitions = {
            "entities": list(self.entities.values()),
            "sources": [s for s in self.sources.values() if s is not None],
            "feature_views": views,
            "feature_services": services,
        }
        module = render_module(plans) if plans else None
        return Converted(config, {k: v for k, v in definitions.items() if v}, module, self.problems)

    # -- entities and sources ------------------------------------------------------------

    def entity(self, e: Any) -> None:
        spec: dict[str, Any] = {"name": e.name, "join_keys": list(e.join_keys)}
        try:
            dtype = entity_type(e.value_type)
        except Unsupported as exc:
            self.problem("entity", e.name, f"{exc}; its join key is left untyped", dropped=False)
            dtype = None
        if dtype is not None:
            spec["dtype"] = dtype
        self.entities[e.name] = {**spec, **_meta(e)}

    def source(self, s: FeastSource) -> None:
        if s.kind == "request":
            return  # read with the on-demand views that use it
        if s.kind == "other":
            what = _SOURCE_REASONS.get(s.type_name, f"{s.type_name} sources")
            self.problem(
                "source", s.name, f"{what}: Parity reads Parquet or CSV files and pushed rows"
            )
            return
        if s.kind == "push":
            batch = self.sources.get(s.batch_source or "")
            if batch is None:
                self.problem(
                    "source", s.name, f"its batch source {s.batch_source!r} is not converted"
                )
                return
            self.sources[s.name] = {
                "type": "push",
                "name": s.name,
                "batch_source": {k: v for k, v in batch.items() if k != "type"},
                **_meta(s),
            }
            return
        if s.file_format not in (None, "parquet"):
            self.problem("source", s.name, f"{s.file_format} files: Parity reads Parquet or CSV")
            return
        if not s.path:
            self.problem("source", s.name, "the file source has no path")
            return
        spec: dict[str, Any] = {"type": "file", "name": s.name, "path": self.data_path(s.path)}
        if s.timestamp_field:
            spec["timestamp_field"] = s.timestamp_field
        if s.created_timestamp_column:
            spec["created_timestamp_field"] = s.created_timestamp_column
        if s.field_mapping:
            spec["field_mapping"] = dict(s.field_mapping)
        self.sources[s.name] = {**spec, **_meta(s)}

    def data_path(self, path: str) -> str:
        """A Feast source path (relative to the Feast repo) as the new repo reads it."""
        parsed = urlparse(path)
        if parsed.scheme and parsed.netloc:
            return path  # a remote URI stays as it is
        p = Path(path)
        return os.path.normpath(p if p.is_absolute() else self.repo.path / p)

    # -- feature views -------------------------------------------------------------------

    def view(self, v: FeastView) -> dict[str, Any] | None:
        kind = "feature_view"
        if v.type_name in _VIEW_REASONS:
            self.problem(kind, v.name, _VIEW_REASONS[v.type_name])
            return None
        if not v.entities:
            self.problem(kind, v.name, "a view without entities: Parity views need an entity")
            return None
        missing = [e for e in v.entities if e not in self.entities]
        if missing:
            self.problem(kind, v.name, f"its entities {missing} are not converted")
            return None
        if v.source not in self.sources:
            self.problem(kind, v.name, f"its source {v.source!r} is not converted")
            return None
        schema = self.fields(kind, v.name, v.schema)
        if not schema:
            self.problem(kind, v.name, "none of its features has a Parity type")
            return None
        spec: dict[str, Any] = {
            "name": v.name,
            "entities": list(v.entities),
            "source": v.source,
            "schema": schema,
        }
        if v.ttl is not None:
            spec["ttl"] = format_duration(v.ttl)
        if not v.online:
            spec["online"] = False
        self.features[v.name] = [f["name"] for f in schema]
        return {**spec, **_meta(v)}

    def fields(self, kind: str, owner: str, fields: list[FeastField]) -> list[dict[str, Any]]:
        out = []
        for f in fields:
            try:
                dtype = field_type(f.dtype)
            except Unsupported as exc:
                self.problem(kind, owner, f"feature {f.name!r} left out: {exc}", dropped=False)
                continue
            note = note_for(f.dtype)
            if note:
                self.problem(kind, owner, f"feature {f.name!r}: {note}", dropped=False)
            spec: dict[str, Any] = {"name": f.name, "dtype": dtype}
            if f.description:
                spec["description"] = f.description
            if f.tags:
                spec["tags"] = dict(f.tags)
            out.append(spec)
        return out

    # -- on-demand views -----------------------------------------------------------------

    def on_demand_views(self) -> list[OnDemandPlan]:
        plans = []
        pending = sorted(self.repo.on_demand_views, key=_name)
        # An on-demand view may read another: convert in dependency order.
        progress = True
        while pending and progress:
            progress = False
            for o in list(pending):
                upstream = [v for v, _ in o.sources]
                known = {v.name for v in self.repo.on_demand_views}
                if any(u in known and u in {p.name for p in pending} for u in upstream):
                    continue
                pending.remove(o)
                progress = True
                plan = self.on_demand(o)
                if plan is not None:
                    plans.append(plan)
        for o in pending:
            self.problem("on_demand_feature_view", o.name, "it reads itself through other views")
        used: set[str] = set()
        kept = []
        for plan in sorted(plans, key=lambda p: p.name):
            if plan.function_name in used:
                self.problem(
                    "on_demand_feature_view",
                    plan.name,
                    f"another view's function is also named {plan.function_name!r}; "
                    "rename one in the Feast repo",
                )
                self.features.pop(plan.name, None)
                continue
            used.add(plan.function_name)
            kept.append(plan)
        return kept

    def on_demand(self, o: FeastOnDemandView) -> OnDemandPlan | None:
        kind = "on_demand_feature_view"
        if o.aggregations:
            self.problem(kind, o.name, "on-demand aggregations are not converted")
            return None
        if o.mode not in ("pandas", "python"):
            self.problem(kind, o.name, f"mode {o.mode!r}: Parity runs pandas and python functions")
            return None
        fn = o.function
        if fn.source is None:
            self.problem(
                kind,
                o.name,
                f"its function {fn.name or '(unnamed)'!r} cannot be recovered (a lambda, or not "
                "defined at the top level of a repo file)",
            )
            return None
        sources: list[tuple[str, tuple[str, ...] | None]] = []
        for view, wanted in o.sources:
            have = self.features.get(view)
            if have is None:
                self.problem(kind, o.name, f"its source view {view!r} is not converted")
                return None
            picked = self.selection(kind, o.name, view, wanted, have)
            if picked == ():
                self.problem(kind, o.name, f"none of the features it reads of {view!r} converts")
                return None
            sources.append((view, picked))
        requests = []
        for req in o.request_sources:
            schema = self.fields(kind, o.name, req.schema)
            if len(schema) != len(req.schema):
                self.problem(kind, o.name, f"request source {req.name!r} has unsupported types")
                return None
            requests.append((req.name, schema))
        schema = self.fields(kind, o.name, o.schema)
        if not schema:
            self.problem(kind, o.name, "none of its outputs has a Parity type")
            return None
        if o.write_to_online_store:
            self.problem(
                kind,
                o.name,
                "write_to_online_store: Parity computes it at read time (the same values, "
                "not stored at write)",
                dropped=False,
            )
        if fn.helpers:
            self.problem(
                kind,
                o.name,
                f"its function uses {', '.join(fn.helpers)}, defined beside it in {fn.file}: "
                f"not carried over; copy them into on_demand.py",
                dropped=False,
            )
        batch = o.mode == "python" and not o.singleton
        self.features[o.name] = [f["name"] for f in schema]
        return OnDemandPlan(
            name=o.name,
            function=fn,
            sources=sources,
            request_sources=requests,
            schema=schema,
            mode="python" if o.mode == "python" and o.singleton else "pandas",
            columns_as_lists=batch,
            description=o.description,
            owner=o.owner,
            tags=dict(o.tags),
        )

    def selection(
        self, kind: str, owner: str, view: str, wanted: tuple[str, ...] | None, have: list[str]
    ) -> tuple[str, ...] | None:
        """A selection of ``view``'s features as Parity has them; None for all of them."""
        if wanted is None:
            return None
        # Features left out of the view are listed with the view; here they just drop out.
        kept = tuple(f for f in wanted if f in have)
        if not kept:
            return ()
        return None if set(kept) == set(have) else kept

    # -- feature services ----------------------------------------------------------------

    def service(self, s: Any) -> dict[str, Any] | None:
        kind = "feature_service"
        features: list[Any] = []
        left_out = []
        for view, wanted in s.features:
            have = self.features.get(view)
            if have is None:
                left_out.append(view)
                continue
            picked = self.selection(kind, s.name, view, wanted, have)
            if picked == ():
                continue
            features.append(view if picked is None else {"view": view, "features": list(picked)})
        if not features:
            self.problem(kind, s.name, "none of its views is converted")
            return None
        for view in left_out:
            self.problem(kind, s.name, f"view {view!r} is not converted; left out", False)
        if s.logging:
            self.problem(kind, s.name, "logging_config: Parity has no feature logging", False)
        return {"name": s.name, "features": features, **_meta(s)}


def _meta(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if obj.description:
        out["description"] = obj.description
    if obj.owner:
        out["owner"] = obj.owner
    if obj.tags:
        out["tags"] = {str(k): str(v) for k, v in obj.tags.items()}
    return out


def _name(obj: Any) -> str:
    return str(obj.name)
