"""FeatureStore: the thin facade users call. It delegates; the work lives elsewhere.

``FeatureStore("path/to/repo")`` reads ``parity.yaml`` there; definitions live in the
registry, training data comes from the offline engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from parity.catalog import Catalog
from parity.config import RepoConfig
from parity.definitions import DataSource, Definition, Entity, FeatureService, FeatureView
from parity.errors import ConcurrentApplyError
from parity.offline.base import ROW_ID, OfflineEngine, PointInTimeJoin, RetrievalJob, ViewJoin
from parity.offline.entity_frame import key_entity_frame, read_entity_frame
from parity.registry import Plan, Registry, VersionRecord
from parity.retrieval import FeatureRefs, resolve_features
from parity.validation import validate


def make_offline_engine(config: RepoConfig) -> OfflineEngine:
    if config.offline_store.type == "duckdb":
        from parity.offline.duckdb import DuckDBOfflineEngine

        return DuckDBOfflineEngine(config.offline_store, config.repo_path)
    raise AssertionError(f"unhandled offline store {config.offline_store.type}")


class FeatureStore:
    """Definitions, training data and (later) online serving for one feature repo."""

    def __init__(self, repo_path: str | Path = ".", *, config: RepoConfig | None = None):
        self.config = config or RepoConfig.load(repo_path)
        self.repo_path = self.config.repo_path
        self._registry: Registry | None = None
        self._offline: OfflineEngine | None = None
        self._catalog: Catalog | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            rc = self.config.registry
            self._registry = Registry.from_location(
                rc.location(), self.project, base_dir=self.repo_path, schema=rc.schema_name
            )
        return self._registry

    @property
    def offline(self) -> OfflineEngine:
        if self._offline is None:
            self._offline = make_offline_engine(self.config)
        return self._offline

    def close(self) -> None:
        if self._offline is not None:
            self._offline.close()
        if self._registry is not None:
            self._registry.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- definitions ---------------------------------------------------------------------
    def catalog(self, *, fresh: bool = False) -> Catalog:
        """The registry's definitions, re-read at most every ``registry.cache_ttl_seconds``."""
        with self._lock:
            now = time.monotonic()
            ttl = self.config.registry.cache_ttl_seconds
            stale = self._catalog is None or fresh or now - self._checked_at >= ttl
            if stale and (
                self._catalog is None or fresh or self.registry.revision() != self._catalog.revision
            ):
                snap = self.registry.snapshot()
                self._catalog = Catalog.of(snap.objects, snap.revision, self.project)
            if stale:
                self._checked_at = now
            assert self._catalog is not None
            return self._catalog

    def load_repo(self) -> list[Definition]:
        """Every definition in the repo folder's ``*.py`` and ``*.yaml`` files."""
        from parity.definitions.loader import load_repo

        return load_repo(self.repo_path).objects

    def _prepare(
        self, objects: Sequence[Definition] | None, delete_missing: bool | None
    ) -> tuple[list[Definition], bool, int]:
        """Validated objects, whether to delete the rest, and the revision validated against."""
        origin = None
        if objects is None:
            from parity.definitions.loader import load_repo

            contents = load_repo(self.repo_path)
            objects, origin = contents.objects, contents.origin
            delete_missing = True if delete_missing is None else delete_missing
        current = self.catalog(fresh=True)
        ordered, _ = validate(
            objects,
            current,
            self.offline.source_schema,
            delete_missing=bool(delete_missing),
            origin=origin,
        )
        return ordered, bool(delete_missing), current.revision

    def plan(
        self, objects: Sequence[Definition] | None = None, *, delete_missing: bool | None = None
    ) -> Plan:
        """What ``apply`` would create, change or delete; validates first.

        With no objects, the repo folder's definitions are planned and registered objects
        missing from it are to be deleted. With objects, nothing is deleted unless
        ``delete_missing=True``.
        """
        ordered, delete, _ = self._prepare(objects, delete_missing)
        return self.registry.plan(ordered, delete_missing=delete)

    def apply(
        self,
        objects: Sequence[Definition] | None = None,
        *,
        delete_missing: bool | None = None,
        author: str | None = None,
    ) -> Plan:
        """Validate and register definitions, all or nothing; returns what was done.

        Validation and the write see the same registry revision: if another apply lands in
        between, validation runs again against the new state (up to three times).
        """
        for attempt in range(3):
            ordered, delete, revision = self._prepare(objects, delete_missing)
            try:
                done = self.registry.apply(
                    ordered, delete_missing=delete, author=author, expected_revision=revision
                )
            except ConcurrentApplyError:
                if attempt == 2:
                    raise
                continue
            finally:
                self._catalog = None
            return done
        raise AssertionError("unreachable")

    def list_entities(self) -> list[Entity]:
        return list(self.catalog().objects["entity"].values())  # type: ignore[arg-type]

    def list_data_sources(self) -> list[DataSource]:
        return list(self.catalog().objects["source"].values())  # type: ignore[arg-type]

    def list_feature_views(self) -> list[FeatureView]:
        return list(self.catalog().objects["feature_view"].values())  # type: ignore[arg-type]

    def list_feature_services(self) -> list[FeatureService]:
        return list(self.catalog().objects["feature_service"].values())  # type: ignore[arg-type]

    def get_entity(self, name: str) -> Entity:
        return self.catalog().entity(name)

    def get_data_source(self, name: str) -> DataSource:
        return self.catalog().source(name)

    def get_feature_view(self, name: str) -> FeatureView:
        return self.catalog().view(name)

    def get_feature_service(self, name: str) -> FeatureService:
        return self.catalog().service(name)

    def history(self, name: str, kind: str | None = None) -> list[VersionRecord]:
        return self.registry.history(name, kind)

    # -- training data -------------------------------------------------------------------
    def get_historical_features(
        self,
        entity_df: Any,
        features: FeatureRefs,
        *,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
    ) -> RetrievalJob:
        """Point-in-time correct features for every row of ``entity_df``, in its order.

        See ``parity.offline.base`` for the exact rule. Naive timestamps are UTC.
        """
        catalog = self.catalog()
        requests = resolve_features(features, catalog, full_feature_names=full_feature_names)
        joins = []
        key_types: dict[str, Any] = {}
        outputs: list[str] = []
        for r in requests:
            keys = catalog.join_keys_of(r.view)
            for e in r.view.entity_names:
                ent = catalog.entity(e)
                key_types.update({k: ent.dtype for k in ent.join_keys})
            outputs.extend(r.output_names)
            joins.append(
                ViewJoin(
                    view=r.view,
                    source=catalog.source_of(r.view),
                    join_keys=tuple(keys),
                    features=r.features,
                    output_names=r.output_names,
                    dtypes=tuple(r.view.field(f).dtype for f in r.features),
                )
            )
        entities = read_entity_frame(entity_df, self.offline.query)
        keyed = key_entity_frame(
            entities,
            timestamp_column=timestamp_column,
            join_keys=list(key_types),
            reserved=[*outputs, ROW_ID],
            key_types=key_types,
        )
        return self.offline.point_in_time_join(
            PointInTimeJoin(keys=keyed, entities=entities, views=tuple(joins))
        )
