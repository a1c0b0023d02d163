"""Historical retrieval end to end: plan, the engine's point-in-time join, on-demand views.

``HistoricalReads.retrieve`` is what ``FeatureStore.get_historical_features`` delegates to.
The planner says which views to join; the ``PointInTimeJoin`` is built here from the
caller's entity frame (keyed and checked by ``parity.offline.entity_frame``) and handed to
the engine, whose job runs when its result is asked for. On-demand views are computed on the
joined frame by ``parity.query.on_demand``. Hooks see the retrieval start and, when the
result is computed, end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from parity.errors import RetrievalError
from parity.governance.context import carry
from parity.hooks import HookSet
from parity.offline.base import (
    ROW_ID,
    ArrowRetrievalJob,
    OfflineEngine,
    PointInTimeJoin,
    RetrievalJob,
    SupportsSQL,
)
from parity.offline.entity_frame import key_entity_frame, read_entity_frame
from parity.query.on_demand import finish_historical
from parity.query.plan import FeaturePlan, Planner
from parity.query.refs import FeatureRefs
from parity.registry.catalog import CatalogCache

__all__ = ["HistoricalReads", "sql_runner"]


def sql_runner(engine: OfflineEngine) -> Callable[[str], pa.Table]:
    """What runs an SQL entity frame: the engine's own SQL, when it has any."""
    if isinstance(engine, SupportsSQL):
        return engine.query

    def refuse(_sql: str) -> pa.Table:
        raise RetrievalError(
            f"the offline engine {type(engine).__name__} cannot run SQL; pass the entity "
            "frame as a frame or a file"
        )

    return refuse


@dataclass(frozen=True)
class HistoricalReads:
    """Point-in-time correct training data over one offline engine."""

    project: str
    catalogs: CatalogCache
    planner: Planner
    engine: Callable[[], OfflineEngine]
    hooks: HookSet
    repo_root: Path | None

    def retrieve(
        self,
        entity_df: Any,
        features: FeatureRefs,
        *,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
    ) -> RetrievalJob:
        """The job computing every row of ``entity_df`` with the features, in its order."""
        catalog = self.catalogs.get()
        plan = self.planner.plan(features, catalog, full_feature_names=full_feature_names)
        engine = self.engine()
        entities = read_entity_frame(entity_df, sql_runner(engine))
        if self.hooks.wants("before_historical"):
            self.hooks.before(
                "before_historical",
                project=self.project,
                plan=plan,
                entity_rows=entities.num_rows,
            )
        job: RetrievalJob | None = None
        if plan.fetch:
            keyed = key_entity_frame(
                entities,
                timestamp_column=timestamp_column,
                join_keys=list(plan.key_types),
                reserved=[*plan.fetched_columns, ROW_ID],
                key_types=plan.key_types,
            )
            job = engine.point_in_time_join(
                PointInTimeJoin(keys=keyed, entities=entities, views=plan.joins)
            )
        if plan.steps:
            inner, root = job, self.repo_root
            job = ArrowRetrievalJob(
                lambda: finish_historical(
                    plan, inner.to_arrow() if inner is not None else entities, root
                )
            )
        assert job is not None  # a plan fetches or computes something
        if self.hooks.wants("shape_historical"):
            unshaped, hooks, project = job, self.hooks, self.project
            # shaped for the actor of this call, whenever the result is computed
            job = ArrowRetrievalJob(
                carry(
                    lambda: hooks.shape(
                        "shape_historical", "table", unshaped.to_arrow(), project=project, plan=plan
                    )
                )
            )
        if self.hooks.wants("after_historical"):
            return ObservedJob(job, plan, self)
        return job


class ObservedJob(RetrievalJob):
    """A job that reports to ``after_historical`` hooks when its result is computed."""

    def __init__(self, job: RetrievalJob, plan: FeaturePlan, reads: HistoricalReads):
        self._job = job
        self._plan = plan
        self._reads = reads
        self._result: pa.Table | None = None

    def to_arrow(self) -> pa.Table:
        if self._result is not None:
            return self._result
        began = time.perf_counter()
        hooks, project = self._reads.hooks, self._reads.project
        try:
            result = self._job.to_arrow()
        except BaseException as exc:
            hooks.after(
                "after_historical",
                project=project,
                plan=self._plan,
                rows=None,
                seconds=time.perf_counter() - began,
                error=exc,
            )
            raise
        self._result = result
        hooks.after(
            "after_historical",
            project=project,
            plan=self._plan,
            rows=result.num_rows,
            seconds=time.perf_counter() - began,
            error=None,
        )
        return result
