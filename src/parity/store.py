"""FeatureStore: the thin facade users call. It wires the parts and delegates.

``FeatureStore("path/to/repo")`` reads ``parity.yaml`` there. The parts, each built on first
use: the registry (``parity.registry``), the offline engine and the online store (plug-ins
found by their ``type:``, ``parity.plugins``), the catalog cache, one query planner
(``parity.query``), the write path (``parity.ingest``) and the observers (``parity.hooks``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity import plugins
from parity.clock import Clock
from parity.config import RepoConfig
from parity.governance.context import Actor, acting_as, current
from parity.governance.enforce import describable, visible
from parity.hooks import Hooks, HookSet

if TYPE_CHECKING:
    from parity.definitions import (
        DataSource,
        Definition,
        Entity,
        FeatureService,
        FeatureView,
        Model,
        OnDemandFeatureView,
    )
    from parity.discovery import SearchHit, UnusedFeature, UsageReport
    from parity.governance.facade import Governance
    from parity.governance.sealing import Sealer
    from parity.ingest import MaterializeResult, WriteContext
    from parity.monitoring.result import MonitorResult
    from parity.monitoring.runner import MonitorRunner
    from parity.offline.base import OfflineEngine, RetrievalJob
    from parity.online.base import OnlineStore
    from parity.online.reader import OnlineResponse
    from parity.query.historical import HistoricalReads
    from parity.query.online import OnlineReads
    from parity.query.refs import FeatureRefs
    from parity.registry import Plan, Registry, VersionRecord
    from parity.registry import rollback as rollback_module
    from parity.registry.apply import ApplyContext
    from parity.registry.catalog import Catalog, CatalogCache
    from parity.registry.transfer import PathOrFile, TransferSummary
    from parity.snapshots import Recreation, Snapshot, Verification
    from parity.streams.runner import StreamRunner

OnlineWrapper = Callable[["OnlineStore"], "OnlineStore"]
"""Wraps the online store once it is built (the feature server's cache and counters)."""


class FeatureStore:
    """Definitions, training data and online serving for one feature repo."""

    def __init__(
        self,
        repo_path: str | Path = ".",
        *,
        config: RepoConfig | None = None,
        clock: Callable[[], datetime] | None = None,
        hooks: Iterable[Hooks] = (),
        online_wrapper: OnlineWrapper | None = None,
        principal: str | Actor | None = None,
    ):
        """``clock`` (UTC now) decides online expiry; tests and replays may pass their own.
        ``hooks`` observe every apply, read and write (after governance's own: access
        checks, decryption, masking, the audit log, ``parity.governance.hooks``; and
        monitoring's: the write gate and the freshness marks, ``parity.monitoring.hooks``;
        and the read counts of ``parity.discovery.usage``);
        ``online_wrapper`` wraps the online store when it is built. ``principal`` is who the
        store acts as when ``auth`` is on: a token, a principal named in ``auth.principals``,
        or an ``Actor``; None: ``PARITY_TOKEN`` from the environment
        (``parity.governance.identity``)."""
        self.config = config or RepoConfig.load(repo_path)
        self.repo_path = self.config.repo_path
        self.clock = Clock(clock)
        from parity.discovery.usage import usage_hooks
        from parity.governance.hooks import builtin_hooks as governance_hooks
        from parity.lifecycle import lifecycle_hooks
        from parity.monitoring.hooks import builtin_hooks

        self._principal = principal
        own = [*governance_hooks(self), *lifecycle_hooks(self), *builtin_hooks(self)]
        self.hooks = HookSet([*own, *usage_hooks(self), *hooks])
        self._online_wrapper = online_wrapper

    @property
    def project(self) -> str:
        return self.config.project

    @cached_property
    def default_actor(self) -> Actor:
        """Who this store acts as outside a request: its ``principal`` (verified once)."""
        from parity.governance.identity import default_actor

        return default_actor(self, self._principal)

    @property
    def actor(self) -> Actor:
        """Who the current operation runs for: the request's actor, else ``default_actor``."""
        return current() or self.default_actor

    @cached_property
    def governance(self) -> Governance:
        """Tokens, the audit log, erase and export, restriction, retention and keys
        (``parity.governance.facade``)."""
        from parity.governance.facade import Governance

        return Governance(self)

    # -- the parts, built on first use -------------------------------------------------------
    def _context(self) -> plugins.BackendContext:
        offline_log = self.config.resolve(self.config.offline_log)
        return plugins.BackendContext(
            self.project, self.repo_path, offline_log, self._sealer.read_log
        )

    @cached_property
    def _sealer(self) -> Sealer:
        """Encryption at rest (``parity.governance.sealing``)."""
        from parity.governance.sealing import Sealer

        return Sealer(self)

    @cached_property
    def registry(self) -> Registry:
        from parity.registry import Registry

        rc = self.config.registry
        return Registry.from_location(
            rc.location(), self.project, base_dir=self.repo_path, schema=rc.schema_name
        )

    @cached_property
    def offline(self) -> OfflineEngine:
        return plugins.create("offline_engine", self.config.offline_store, self._context())

    @cached_property
    def online(self) -> OnlineStore:
        store = plugins.create("online_store", self.config.online_store, self._context())
        store = self._sealer.online(store)
        return store if self._online_wrapper is None else self._online_wrapper(store)

    @cached_property
    def _catalogs(self) -> CatalogCache:
        from parity.registry.catalog import CatalogCache

        ttl = self.config.registry.cache_ttl_seconds
        return CatalogCache(lambda: self.registry, self.project, ttl, self.hooks)

    @cached_property
    def _online_reads(self) -> OnlineReads:
        from parity.query import Planner
        from parity.query.online import OnlineReads

        return OnlineReads(
            self.project,
            self._catalogs,
            Planner(),
            lambda: self.online,
            self.clock,
            self.hooks,
            self.repo_path,
        )

    @cached_property
    def _historical_reads(self) -> HistoricalReads:
        from parity.query import Planner
        from parity.query.historical import HistoricalReads

        return HistoricalReads(
            self.project,
            self._catalogs,
            Planner(),
            lambda: self.offline,
            self.hooks,
            self.repo_path,
        )

    def _apply_context(self) -> ApplyContext:
        from parity.registry.apply import ApplyContext

        return ApplyContext(
            self.project,
            self.repo_path,
            self.registry,
            self._catalogs,
            lambda: self.offline,
            lambda: self.online,
            self.hooks,
        )

    def _writes(self, *, fresh: bool = False) -> WriteContext:
        from parity.ingest import WriteContext

        return WriteContext(
            self.project,
            self.catalog(fresh=fresh),
            lambda: self.online,
            lambda: self.offline,
            lambda: self.registry,
            self.config.resolve(self.config.offline_log),
            self.clock,
            self.hooks,
            self._sealer.log,
            self._sealer.encode,
        )

    def close(self) -> None:
        from parity.discovery.usage import settle as settle_usage
        from parity.monitoring.hooks import settle

        settle(self)  # the freshness marks held back, before the registry closes
        settle_usage(self)  # and the read counts
        governance = self.__dict__.get("governance")
        if governance is not None and "audit" in governance.__dict__:
            governance.audit.close()  # the audit spool shipped (parity.governance.audit)
        for part in ("online", "offline", "registry"):
            if part in self.__dict__:
                self.__dict__[part].close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- definitions ---------------------------------------------------------------------
    def catalog(self, *, fresh: bool = False) -> Catalog:
        """The registry's definitions, re-read at most every ``registry.cache_ttl_seconds``."""
        return self._catalogs.get(fresh=fresh)

    def load_repo(self) -> list[Definition]:
        """Every definition in the repo folder's ``*.py`` and ``*.yaml`` files."""
        from parity.repo import load_repo

        return load_repo(self.repo_path).objects

    def plan(
        self, objects: Sequence[Definition] | None = None, *, delete_missing: bool | None = None
    ) -> Plan:
        """What ``apply`` would create, change or delete; validates first.

        With no objects, the repo folder's definitions are planned and registered objects
        missing from it are to be deleted. With objects, nothing is deleted unless
        ``delete_missing=True``.
        """
        from parity.governance.enforce import check_plan
        from parity.registry import apply

        check_plan(self, objects, delete_missing)
        return apply.plan(self._apply_context(), objects, delete_missing)

    def apply(
        self,
        objects: Sequence[Definition] | None = None,
        *,
        delete_missing: bool | None = None,
        author: str | None = None,
        allow_breaking: bool = False,
    ) -> Plan:
        """Validate and register definitions, all or nothing; returns what was done
        (``parity.registry.apply``). A breaking change (a major version bump) to what a
        feature service or model reads is refused unless ``allow_breaking=True``, which is
        then noted in the version's history."""
        from parity.registry import apply

        return apply.apply(
            self._apply_context(), objects, delete_missing, author, allow_breaking=allow_breaking
        )

    def teardown(self) -> None:
        """Remove everything the project keeps in the online store, and its materialization
        intervals. The registry's definitions and history stay (they are the repo's record)."""
        self.online.teardown()
        self.registry.forget_materializations()

    # Listings leave out, and gets refuse, what the actor may not ``describe`` (auth on).
    def list_entities(self) -> list[Entity]:
        return visible(self, self.catalog().objects["entity"].values())  # type: ignore[arg-type]

    def list_data_sources(self) -> list[DataSource]:
        return visible(self, self.catalog().objects["source"].values())  # type: ignore[arg-type]

    def list_feature_views(self) -> list[FeatureView]:
        return visible(self, self.catalog().views())

    def list_on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return visible(self, self.catalog().on_demand_views())

    def list_feature_services(self) -> list[FeatureService]:
        return visible(self, self.catalog().objects["feature_service"].values())  # type: ignore[arg-type]

    def list_models(self) -> list[Model]:
        return visible(self, self.catalog().objects["model"].values())  # type: ignore[arg-type]

    def get_entity(self, name: str) -> Entity:
        return describable(self, self.catalog().entity(name))

    def get_data_source(self, name: str) -> DataSource:
        return describable(self, self.catalog().source(name))

    def get_feature_view(self, name: str) -> FeatureView:
        return describable(self, self.catalog().view(name))

    def get_on_demand_feature_view(self, name: str) -> OnDemandFeatureView:
        return describable(self, self.catalog().on_demand_view(name))

    def get_feature_service(self, name: str) -> FeatureService:
        return describable(self, self.catalog().service(name))

    def get_model(self, name: str) -> Model:
        return describable(self, self.catalog().get("model", name))  # type: ignore[return-value]

    def version(self, name: str, version: str, kind: str | None = None) -> VersionRecord:
        """The version of ``name`` written as ``version`` (``"1.2.0"``); its ``definition``
        is the object as it was."""
        from parity.registry import rollback

        return rollback.find(rollback.one_kind(self.history(name, kind), name), version)

    def diff(
        self, name: str, old: str, new: str, kind: str | None = None
    ) -> rollback_module.Comparison:
        """The field-level diff between two versions of ``name`` (and, for an on-demand
        view, the diff of its function's code)."""
        from parity.registry import rollback

        return rollback.compare(rollback.one_kind(self.history(name, kind), name), old, new)

    def rollback(
        self,
        name: str,
        to: str,
        *,
        kind: str | None = None,
        author: str | None = None,
        allow_breaking: bool = False,
    ) -> Plan:
        """Apply version ``to`` of ``name`` again as a new version (noted as a rollback);
        validated and weighed like any apply. The repo's files are not changed: edit them
        too, or the next ``apply`` of the folder brings the newer definition back."""
        from parity.registry import rollback

        return rollback.rollback(
            self, name, to, kind=kind, author=author, allow_breaking=allow_breaking
        )

    def set_lifecycle(
        self,
        name: str,
        state: str,
        *,
        reason: str = "",
        successor: str | None = None,
        kind: str | None = None,
        author: str | None = None,
        allow_breaking: bool = False,
    ) -> Plan:
        """Move ``name`` to ``draft``, ``active``, ``deprecated`` or ``retired`` (a new
        version; ``parity.lifecycle`` says what each means for reads). Retiring or drafting
        what a service or model reads is a breaking change: ``allow_breaking=True``."""
        from parity.registry import rollback

        return rollback.set_lifecycle(
            self,
            name,
            state,
            reason=reason,
            successor=successor,
            kind=kind,
            author=author,
            allow_breaking=allow_breaking,
        )

    def history(self, name: str, kind: str | None = None) -> list[VersionRecord]:
        from parity.governance.enforce import readable_history

        return readable_history(self, self.registry.history(name, kind))

    def lineage(self, name: str, direction: str = "both", depth: int | None = 3) -> Any:
        """What ``name`` (an object, ``view:feature`` or ``source.column``) reads, what reads
        it, or both, at most ``depth`` edges away (None: all): a ``networkx.DiGraph`` copy
        whose ``graph["root"]`` is the start. With auth on, a ``describe``
        (``parity.lineage``)."""
        from parity.lineage import lineage
        from parity.snapshots.lineage import consumers

        snapshots = consumers(self)  # training snapshots are nodes too
        return lineage(self, name, direction, depth, consumers=snapshots)  # type: ignore[arg-type]

    # -- discovery ----------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        tags: Mapping[str, str] | None = None,
        owner: str | None = None,
        kind: str | Sequence[str] | None = None,
        limit: int = 20,
    ) -> list[SearchHit]:
        """The registered objects best matching ``query`` (words, each a prefix), best first:
        a full-text index of names, descriptions, tags, owners and features, ranked by bm25
        (``parity.discovery.search``). ``tags``, ``owner`` and ``kind`` filter; with auth on,
        only what the actor may describe."""
        from parity.discovery.search import search

        return search(self, query, tags=tags, owner=owner, kind=kind, limit=limit)

    def usage(self, name: str, kind: str | None = None) -> UsageReport:
        """How ``name`` (a view, on-demand view or service) was read: reads online and
        offline, last read, consumers and, for a view, its features
        (``parity.discovery.usage``). With auth on, a ``describe``."""
        from parity.discovery.usage import usage_report

        return usage_report(self, name, kind)

    def unused(self, days: float = 90) -> list[UnusedFeature]:
        """Features no service or model selects and no read returned in the last ``days``:
        candidates to deprecate (``parity.discovery.unused``)."""
        from parity.discovery.unused import unused

        return unused(self, days)

    # -- online -------------------------------------------------------------------------
    def get_online_features(
        self,
        features: FeatureRefs,
        entity_rows: Sequence[Mapping[str, Any]] | None = None,
        *,
        entities: Mapping[str, Sequence[Any]] | None = None,
        full_feature_names: bool = False,
        purpose: str | None = None,
        include_drafts: bool = False,
    ) -> OnlineResponse:
        """The latest values for each entity, with a status and event time per value.

        ``entity_rows=[{"driver_id": 1}, ...]`` or ``entities={"driver_id": [1, ...]}``.
        Values older than the view's ttl come back null with status ``expired``.
        On-demand features are computed from the values read and the request data given
        as extra entity columns (``parity.query.on_demand``). ``purpose``: what the values
        are for, checked against the roles' and the fields' purposes when auth is on.
        ``include_drafts``: serve draft views too (``parity.lifecycle``).
        """
        if purpose is None and not include_drafts:
            return self._online_reads.read(
                features, entity_rows, entities, full_feature_names=full_feature_names
            )
        from parity.lifecycle import including_drafts

        with acting_as(self.actor.with_purpose(purpose)), including_drafts(include_drafts):
            return self._online_reads.read(
                features, entity_rows, entities, full_feature_names=full_feature_names
            )

    async def get_online_features_async(
        self,
        features: FeatureRefs,
        *,
        entities: Mapping[str, Sequence[Any]],
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """``get_online_features`` whose round trip to the store is awaited when the store
        allows it (``SupportsAsyncRead``), for an event loop; same answer, same errors."""
        return await self._online_reads.read_async(
            features, entities=entities, full_feature_names=full_feature_names
        )

    def materialize(
        self,
        start: datetime | str,
        end: datetime | str,
        views: Sequence[str] | None = None,
        *,
        progress: bool = False,
    ) -> MaterializeResult:
        """Load the latest value per entity with event time in [start, end] online.

        Times are datetimes or ISO 8601 text (``"2024-01-31"``, ``"2024-01-31T12:00:00Z"``);
        naive means UTC, ``"now"`` is the store's clock."""
        from parity import ingest

        return ingest.materialize_window(
            self._writes(fresh=True), views, start, end, progress=progress
        )

    def materialize_incremental(
        self, end: datetime | str, views: Sequence[str] | None = None, *, progress: bool = False
    ) -> MaterializeResult:
        """Materialize each view from where its last run ended (first run: end - ttl);
        ``end`` as for ``materialize``."""
        from parity import ingest

        return ingest.materialize_since(self._writes(fresh=True), views, end, progress=progress)

    def reset_materialization(self, views: Sequence[str]) -> dict[str, datetime | None]:
        """Forget these views' recorded materialization windows: the next incremental run
        starts afresh (``end - ttl``); online values stay. Returns each view's recorded end
        before the reset, None when it had none."""
        from parity.ingest.materialize import reset_intervals

        return reset_intervals(self._writes(fresh=True), views)

    def write_to_online_store(self, view: str | FeatureView, df: Any) -> int:
        """Write rows of one view straight to the online store; returns records stored."""
        from parity import ingest

        name = view if isinstance(view, str) else view.name
        return ingest.write_to_online_store(self._writes(), name, df)

    def push(
        self, push_source_name: str, df: Any, to: str = "online", *, push_id: str | None = None
    ) -> int:
        """Rows to the views fed by a push source: ``online``, ``offline`` or both.

        Offline rows are appended durably to the offline log before anything goes online;
        a retry with the same ``push_id`` writes nothing twice. Returns the rows accepted
        (``ingest.Written``: also the ignored columns and the push id).
        """
        from parity import ingest

        return ingest.push(self._writes(), push_source_name, df, to, push_id)  # type: ignore[arg-type]

    def stream_runner(self, sources: Sequence[str] | None = None, **options: Any) -> StreamRunner:
        """Parity's consumers for the repo's stream sources (all, or ``sources``): call
        ``.run()`` (until ``.stop()`` or SIGTERM) or ``.start()``; see
        ``parity.streams.runner.StreamRunner`` for ``batch_size``, ``claim_idle``,
        ``metrics_port``."""
        from parity.streams.runner import StreamRunner

        return StreamRunner(self, sources, **options)

    def delete_entities(self, view_or_entity: str, keys: Sequence[Any]) -> int:
        """Remove the online values of these entities; returns how many records existed.

        ``keys``: key values (one join key) or dicts of join-key values. An entity name
        deletes from every online view keyed by exactly that entity.
        """
        from parity import ingest

        return ingest.delete_entities(self._writes(), view_or_entity, keys)

    # -- training data -------------------------------------------------------------------
    def get_historical_features(
        self,
        entity_df: Any,
        features: FeatureRefs,
        *,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
        purpose: str | None = None,
        include_drafts: bool = False,
    ) -> RetrievalJob:
        """Point-in-time correct features for every row of ``entity_df``, in its order.

        See ``parity.offline.base`` for the exact rule. Naive timestamps are UTC.
        On-demand features are computed row by row from the joined features and the
        request data in the entity frame's columns (``parity.query.on_demand``).
        ``purpose`` and ``include_drafts`` as for ``get_online_features``.
        """
        from parity.lifecycle import including_drafts

        with acting_as(self.actor.with_purpose(purpose)), including_drafts(include_drafts):
            return self._historical_reads.retrieve(
                entity_df,
                features,
                full_feature_names=full_feature_names,
                timestamp_column=timestamp_column,
            )

    # -- training snapshots --------------------------------------------------------------
    def create_snapshot(
        self,
        name: str,
        entity_df: Any,
        features: FeatureRefs,
        *,
        description: str = "",
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
        replace: bool = False,
    ) -> Snapshot:
        """The historical retrieval stored as a content-addressed Parquet file with a
        manifest that makes it reproducible (``parity.snapshots.create``); restricted keys
        are left out unless the caller has ``admin``. A name taken is a ``SnapshotError``
        unless ``replace=True``."""
        from parity.snapshots.create import create

        return create(
            self,
            name,
            entity_df,
            features,
            description=description,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
            replace=replace,
        )

    def list_snapshots(self) -> list[Snapshot]:
        """Every training snapshot of the project, by name (with auth on, those whose views
        the actor may describe)."""
        from parity.snapshots.manifest import listed

        return listed(self)

    def get_snapshot(self, name: str) -> Snapshot:
        """One snapshot's manifest; ``ObjectNotFoundError`` for an unknown name. With auth
        on, a ``describe`` of every view it holds."""
        from parity.snapshots.manifest import shown

        return shown(self, name)

    def verify_snapshot(self, name: str) -> Verification:
        """Re-hash the snapshot's stored rows: ``.ok``, else ``.problems`` names what
        differs (``parity.snapshots.verify``)."""
        from parity.snapshots.verify import verify

        return verify(self, name)

    def recreate_snapshot(self, name: str) -> Recreation:
        """Run the snapshot's join again with the definitions of its revision: whether the
        rows are identical, and which source files changed (``parity.snapshots.recreate``)."""
        from parity.snapshots.recreate import recreate

        return recreate(self, name)

    # -- monitoring ----------------------------------------------------------------------
    def profile(
        self,
        view: str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        *,
        online: bool = False,
        save: bool = True,
        features: Sequence[str] | None = None,
        distinct: str = "exact",
    ) -> MonitorResult:
        """Statistics per feature of the view's source rows with event time in [start, end]
        (None: unbounded), or of the online store's current values (``online=True``); stored
        in the registry unless ``save=False`` (``parity.monitoring.profile``).
        ``features``: some of them only; ``distinct``: ``"exact"`` or ``"approx"``."""
        from parity.monitoring import profile

        return profile.profile(
            self, view, start, end, online=online, save=save, features=features, distinct=distinct
        )

    def profiles(self, view: str) -> list[Any]:
        """The stored profiles of a view, newest first (``ResultRecord``s)."""
        from parity.monitoring import profile

        return profile.history(self, view)

    def check(
        self,
        view: str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        *,
        save: bool = True,
    ) -> MonitorResult:
        """The view's declared checks evaluated over its source rows in [start, end]: one row
        per feature and rule, with the observed value and whether it passed
        (``parity.monitoring.checks``)."""
        from parity.monitoring import checks

        return checks.check(self, view, start, end, save=save)

    def drift(
        self,
        view: str,
        baseline: tuple[Any, Any] | str,
        current: tuple[Any, Any] | str = "online",
        *,
        features: Sequence[str] | None = None,
        save: bool = True,
    ) -> MonitorResult:
        """Whether the view's features drifted from ``baseline`` (a (start, end) range of
        source rows, or a saved baseline's name) to ``current`` (a range, or ``"online"``):
        one row per feature and test (``parity.monitoring.drift``)."""
        from parity.monitoring import drift

        return drift.drift(self, view, baseline, current, features=features, save=save)

    def freshness(self, *, window: Any = None) -> MonitorResult:
        """One row per view: the newest event time online (and offline), its lag, its SLA,
        the score ``max(0, 1 - lag / SLA)``, whether it is breached, and the SLA compliance
        over ``window`` (``parity.monitoring.freshness``)."""
        from parity.monitoring import freshness

        return freshness.freshness(self, window=window)

    def skew(
        self,
        since: datetime | str | None = None,
        *,
        until: datetime | str | None = None,
        out: str | Path | None = None,
    ) -> MonitorResult:
        """What the feature server served (its serving log) replayed through the
        point-in-time join at the request times: per feature, match rate and differences;
        mismatched rows are written to ``out`` (``parity.monitoring.skew``)."""
        from parity.monitoring import skew

        return skew.skew(self, since, until=until, out=out)

    def monitor_runner(self, **options: Any) -> MonitorRunner:
        """The monitor: freshness, checks and drift evaluated on a schedule, alerts sent to
        the configured webhooks and exported as Prometheus gauges
        (``parity.monitoring.runner``)."""
        from parity.monitoring.runner import MonitorRunner

        return MonitorRunner(self, **options)

    # -- backup and migration ------------------------------------------------------------
    def export_registry(self, path: PathOrFile) -> TransferSummary:
        """Every definition of the project with its whole history, to one JSON file
        (``parity.registry.transfer`` says what is carried and what is not). With auth on,
        needs ``admin``; audited."""
        from parity.registry import transfer

        self._administer()
        done = transfer.export_registry(self.registry, path)
        self.governance.audit.record(
            action="registry_export",
            resources=[f"project:{self.project}"],
            counts={"versions": sum(done.versions.values())},
        )
        return done

    def import_registry(self, path: PathOrFile, *, replace: bool = False) -> TransferSummary:
        """An export's definitions and history into this project, all or nothing; refused
        while the project holds definitions unless ``replace=True``. With auth on, needs
        ``admin``; audited. The online store is not touched: ``apply`` the repo afterwards
        to prepare it for the imported views."""
        from parity.registry import transfer

        self._administer()
        try:
            done = transfer.import_registry(self.registry, path, replace=replace)
        finally:
            self._catalogs.invalidate()
        self.governance.audit.record(
            action="registry_import",
            resources=[f"project:{self.project}"],
            counts={"versions": sum(done.versions.values()), "replaced": done.replaced},
        )
        return done

    def _administer(self) -> None:
        """Refuse (audited) unless the actor holds ``admin`` on the project (auth on)."""
        from parity.governance.access import PROJECT, Resource

        access = self.governance.access
        if access.enabled:
            access.check(self.actor, "admin", [Resource(PROJECT, self.project)])
