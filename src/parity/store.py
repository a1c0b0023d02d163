"""FeatureStore: the thin facade users call. It delegates; the work lives elsewhere.

``FeatureStore("path/to/repo")`` reads ``parity.yaml`` there; definitions live in the
registry, training data comes from the offline engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parity.aggregates.online import events_by_entity, write_events
from parity.aggregates.state import AggregatePlan
from parity.catalog import Catalog
from parity.config import RepoConfig
from parity.definitions import (
    DataSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    PushSource,
)
from parity.errors import ConcurrentApplyError, RetrievalError
from parity.ingest import as_table, conform, log_table, online_batch, online_view
from parity.materialize import MaterializeResult, materialize_view, online_views, utc
from parity.offline.base import ROW_ID, OfflineEngine, PointInTimeJoin, RetrievalJob, ViewJoin
from parity.offline.entity_frame import key_entity_frame, read_entity_frame
from parity.offline.log import append, log_dir
from parity.online.base import OnlineStore
from parity.online.encoding import to_micros
from parity.online.reader import OnlineResponse, ReadPlan, entity_columns, read_online
from parity.online.writer import CREATED_US, EVENT_US, encode_batch
from parity.progress import progress_bar
from parity.registry import Plan, Registry, VersionRecord
from parity.retrieval import FeatureRefs, entity_keys, read_plan, resolve_features
from parity.transform import plan_on_demand
from parity.validation import validate

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_PLANS = 1024
"""Read plans kept per feature list; beyond this the cache starts again (bounded memory)."""


def make_online_store(config: RepoConfig) -> OnlineStore:
    cfg = config.online_store
    if cfg.type == "sqlite":
        from parity.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(cfg, config.project, config.repo_path)
    if cfg.type == "redis":
        from parity.online.redis import RedisOnlineStore

        return RedisOnlineStore(cfg, config.project)
    raise AssertionError(f"unhandled online store {cfg.type}")


def make_offline_engine(config: RepoConfig) -> OfflineEngine:
    if config.offline_store.type == "duckdb":
        from parity.offline.duckdb import DuckDBOfflineEngine

        return DuckDBOfflineEngine(
            config.offline_store, config.repo_path, config.resolve(config.offline_log)
        )
    raise AssertionError(f"unhandled offline store {config.offline_store.type}")


class FeatureStore:
    """Definitions, training data and (later) online serving for one feature repo."""

    def __init__(
        self,
        repo_path: str | Path = ".",
        *,
        config: RepoConfig | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        """``clock`` (UTC now) decides online expiry; tests and replays may pass their own."""
        self.config = config or RepoConfig.load(repo_path)
        self.repo_path = self.config.repo_path
        self._clock = clock
        self._registry: Registry | None = None
        self._offline: OfflineEngine | None = None
        self._online: OnlineStore | None = None
        self._plans: dict[Any, ReadPlan] = {}
        self._plans_revision = -2
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

    @property
    def online(self) -> OnlineStore:
        if self._online is None:
            self._online = make_online_store(self.config)
        return self._online

    def close(self) -> None:
        if self._online is not None:
            self._online.close()
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
    ) -> tuple[list[Definition], bool, int, Catalog]:
        """Validated objects, whether to delete the rest, the revision validated against, and
        the world the apply would leave."""
        origin = None
        if objects is None:
            from parity.definitions.loader import load_repo

            contents = load_repo(self.repo_path)
            objects, origin = contents.objects, contents.origin
            delete_missing = True if delete_missing is None else delete_missing
        current = self.catalog(fresh=True)
        ordered, world = validate(
            objects,
            current,
            self.offline.source_schema,
            delete_missing=bool(delete_missing),
            origin=origin,
        )
        return ordered, bool(delete_missing), current.revision, world

    def plan(
        self, objects: Sequence[Definition] | None = None, *, delete_missing: bool | None = None
    ) -> Plan:
        """What ``apply`` would create, change or delete; validates first.

        With no objects, the repo folder's definitions are planned and registered objects
        missing from it are to be deleted. With objects, nothing is deleted unless
        ``delete_missing=True``.
        """
        ordered, delete, _, _ = self._prepare(objects, delete_missing)
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
        between, validation runs again against the new state (up to three times). The online
        store is prepared first, so an unreachable store fails the apply before anything is
        registered; the data of views the apply deleted is dropped after.
        """
        for attempt in range(3):
            ordered, delete, revision, world = self._prepare(objects, delete_missing)
            self.online.setup([online_view(v, world) for v in world.views() if v.online])
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
            self._sync_online(done)
            return done
        raise AssertionError("unreachable")

    def _sync_online(self, done: Plan) -> None:
        """Drop the online data (and intervals) of the views the apply deleted."""
        deleted = [
            c.name for c in done.changes if c.kind == "feature_view" and c.action == "delete"
        ]
        if deleted:
            self.online.drop_views(deleted)
            self.registry.forget_materializations(deleted)

    def teardown(self) -> None:
        """Remove everything the project keeps in the online store, and its materialization
        intervals. The registry's definitions and history stay (they are the repo's record)."""
        self.online.teardown()
        self.registry.forget_materializations()

    def list_entities(self) -> list[Entity]:
        return list(self.catalog().objects["entity"].values())  # type: ignore[arg-type]

    def list_data_sources(self) -> list[DataSource]:
        return list(self.catalog().objects["source"].values())  # type: ignore[arg-type]

    def list_feature_views(self) -> list[FeatureView]:
        return self.catalog().views()

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

    # -- online -------------------------------------------------------------------------
    def _now_us(self) -> int:
        if self._clock is None:
            return time.time_ns() // 1000
        return to_micros(self._clock())

    def _read_plan(self, features: FeatureRefs, full_feature_names: bool) -> ReadPlan:
        catalog = self.catalog()
        if self._plans_revision != catalog.revision:
            self._plans = {}
            self._plans_revision = catalog.revision
        if isinstance(features, str):
            key: Any = (features, full_feature_names)
        elif isinstance(features, FeatureService):
            key = (features.name, features.content_hash(), full_feature_names)
        else:
            key = (tuple(features), full_feature_names)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= MAX_PLANS:  # distinct feature lists are few in practice
                self._plans.clear()
            plan = read_plan(
                resolve_features(features, catalog, full_feature_names=full_feature_names), catalog
            )
            self._plans[key] = plan
        return plan

    def get_online_features(
        self,
        features: FeatureRefs,
        entity_rows: Sequence[Mapping[str, Any]] | None = None,
        *,
        entities: Mapping[str, Sequence[Any]] | None = None,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """The latest values for each entity, with a status and event time per value.

        ``entity_rows=[{"driver_id": 1}, ...]`` or ``entities={"driver_id": [1, ...]}``.
        Values older than the view's ttl come back null with status ``expired``.
        On-demand features are computed from the values read and the request data given
        as extra entity columns (``parity.transform``).
        """
        on_demand = plan_on_demand(features, self.catalog(), full_feature_names=full_feature_names)
        if on_demand is not None:
            return on_demand.online(
                lambda refs: self.get_online_features(
                    refs, entity_rows, entities=entities, full_feature_names=True
                ),
                entity_rows,
                entities,
                self.repo_path,
            )
        plan = self._read_plan(features, full_feature_names)
        cols = entity_columns(entity_rows, entities, plan.join_keys)
        return read_online(self.online, plan, cols, self._now_us())

    def materialize(
        self,
        start: datetime,
        end: datetime,
        views: Sequence[str] | None = None,
        *,
        progress: bool = False,
    ) -> MaterializeResult:
        """Load the latest value per entity with event time in [start, end] online."""
        start, end = utc(start), utc(end)
        if end < start:
            raise RetrievalError(f"materialize: end {end} is before start {start}")
        return self._materialize(
            {v.name: start for v in online_views(self.catalog(fresh=True), views)}, end, progress
        )

    def materialize_incremental(
        self, end: datetime, views: Sequence[str] | None = None, *, progress: bool = False
    ) -> MaterializeResult:
        """Materialize each view from where its last run ended (first run: end - ttl)."""
        end = utc(end)
        done = self.registry.materialized_until()
        starts = {}
        for view in online_views(self.catalog(fresh=True), views):
            if view.name in done:
                starts[view.name] = done[view.name]
            elif view.ttl is not None:
                starts[view.name] = end - view.ttl
            else:
                starts[view.name] = EPOCH
        return self._materialize(starts, end, progress)

    def _materialize(
        self, starts: dict[str, datetime], end: datetime, progress: bool
    ) -> MaterializeResult:
        catalog = self.catalog()
        # Views run two at a time: one view's engine aggregate (native, GIL released)
        # overlaps another's encoding and writing, so the cores stay busy.
        with (
            progress_bar(progress) as on_batch,
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="parity-materialize") as pool,
        ):
            futures = [
                pool.submit(
                    materialize_view,
                    catalog.view(name),
                    start,
                    end,
                    catalog=catalog,
                    offline=self.offline,
                    online=self.online,
                    registry=self.registry,
                    on_batch=on_batch,
                    now_us=self._now_us(),
                )
                for name, start in starts.items()
            ]
            runs = [f.result() for f in futures]
        return MaterializeResult(tuple(runs))

    def write_to_online_store(self, view: str | FeatureView, df: Any) -> int:
        """Write rows of one view straight to the online store; returns records stored."""
        catalog = self.catalog()
        fv = catalog.view(view if isinstance(view, str) else view.name)
        table, times = conform(
            as_table(df), [fv], catalog.source_of(fv), catalog, label=f"rows for {fv.name!r}"
        )
        return self._write_online(fv, table, times, catalog)

    def _write_online(
        self, fv: FeatureView, table: Any, times: dict[str, Any], catalog: Catalog
    ) -> int:
        """Rows of one view to the online store: values, or events for an aggregated view."""
        ov = online_view(fv, catalog)
        if fv.is_aggregated:
            plan = self._aggregate_plan(fv, catalog)
            groups = events_by_entity(plan, ov, table, times[EVENT_US], times[CREATED_US])
            return write_events(self.online, ov, plan, groups, self._now_us())
        return self.online.write(ov, encode_batch(online_batch(table, times, ov), ov))

    @staticmethod
    def _aggregate_plan(fv: FeatureView, catalog: Catalog) -> AggregatePlan:
        return AggregatePlan.of(fv, catalog.source_of(fv).event_id_field)

    def push(self, push_source_name: str, df: Any, to: str = "online") -> int:
        """Rows to the views fed by a push source: ``online``, ``offline`` or both.

        Offline rows are appended durably to the offline log before anything goes online.
        Returns the number of rows accepted.
        """
        if to not in ("online", "offline", "online_and_offline"):
            raise RetrievalError(
                f"push: to must be 'online', 'offline' or 'online_and_offline', not {to!r}"
            )
        catalog = self.catalog()
        source = catalog.source(push_source_name)
        if not isinstance(source, PushSource):
            raise RetrievalError(
                f"source {push_source_name!r} is a {source.source_type} source, not a push source"
            )
        views = [v for v in catalog.views() if v.source_name == source.name]  # type: ignore[union-attr]
        table, times = conform(
            as_table(df), views, source, catalog, label=f"push to {source.name!r}"
        )  # type: ignore[arg-type]
        if to != "online":
            append(
                log_dir(self.config.resolve(self.config.offline_log), source.name),
                log_table(table, times, source),
            )
        if to != "offline":
            for fv in views:
                if fv.online:
                    self._write_online(fv, table, times, catalog)
        return table.num_rows

    def delete_entities(self, view_or_entity: str, keys: Sequence[Any]) -> int:
        """Remove the online values of these entities; returns how many records existed.

        ``keys``: key values (one join key) or dicts of join-key values. An entity name
        deletes from every online view keyed by exactly that entity.
        """
        catalog = self.catalog()
        if catalog.has("feature_view", view_or_entity):
            views = [catalog.view(view_or_entity)]
        else:
            entity = catalog.entity(view_or_entity)
            views = [v for v in catalog.views() if v.entity_names == [entity.name]]  # type: ignore[union-attr]
        removed = 0
        for fv in views:
            ov = online_view(fv, catalog)
            removed += self.online.delete(ov, entity_keys(keys, ov.join_keys))
        return removed

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
        On-demand features are computed row by row from the joined features and the
        request data in the entity frame's columns (``parity.transform``).
        """
        catalog = self.catalog()
        on_demand = plan_on_demand(features, catalog, full_feature_names=full_feature_names)
        if on_demand is not None:
            return on_demand.historical(
                lambda refs: self.get_historical_features(
                    entity_df, refs, full_feature_names=True, timestamp_column=timestamp_column
                ),
                lambda: read_entity_frame(entity_df, self.offline.query),
                self.repo_path,
            )
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
