"""Online reads end to end: plan, one round trip to the store, decode, on-demand views.

``OnlineReads`` is what ``FeatureStore.get_online_features`` (and its awaitable twin, the
feature server's path) delegate to. Both run the same steps; the async one awaits the
store's round trip when the store ``SupportsAsyncRead`` and reads blocking otherwise, so
both give the same answer and the same errors. Hooks see every read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity.clock import Clock
from parity.hooks import HookSet
from parity.online.base import OnlineStore, SupportsAsyncRead
from parity.online.reader import (
    OnlineResponse,
    check_key_types,
    decode_online,
    entity_columns,
    online_requests,
)
from parity.query.on_demand import check_entity_columns, finish_online
from parity.query.plan import FeaturePlan, Planner
from parity.query.refs import FeatureRefs
from parity.registry.catalog import CatalogCache

__all__ = ["OnlineReads"]


@dataclass(frozen=True)
class OnlineReads:
    """Online reads over one store, with one planner and the store's hooks."""

    project: str
    catalogs: CatalogCache
    planner: Planner
    store: Callable[[], OnlineStore]
    clock: Clock
    hooks: HookSet
    repo_root: Path | None

    def _start(
        self,
        features: FeatureRefs,
        entity_rows: Sequence[Mapping[str, Any]] | None,
        entities: Mapping[str, Sequence[Any]] | None,
        full_feature_names: bool,
    ) -> tuple[FeaturePlan, dict[str, list[Any]]]:
        catalog = self.catalogs.get()
        plan = self.planner.plan(features, catalog, full_feature_names=full_feature_names)
        keys = plan.online().join_keys if plan.fetch else ()
        cols = entity_columns(entity_rows, entities, keys)
        check_key_types(cols, plan.key_types)
        if len(cols) > len(keys):  # extra columns (request data) may not shadow a feature
            check_entity_columns(plan, list(cols), "entities")
        if self.hooks.wants("before_online_read"):
            self.hooks.before("before_online_read", project=self.project, plan=plan, entities=cols)
        return plan, cols

    def _finish(
        self,
        plan: FeaturePlan,
        cols: dict[str, list[Any]],
        records: Sequence[Sequence[bytes | None]] | None,
        now_us: int,
    ) -> OnlineResponse:
        inner = decode_online(plan.online(), cols, records, now_us) if records is not None else None
        if not plan.steps:
            assert inner is not None
            response = inner
        else:
            response = finish_online(plan, cols, inner, self.repo_root)
        if self.hooks.wants("shape_online_response"):
            response = self.hooks.shape(
                "shape_online_response",
                "response",
                response,
                project=self.project,
                plan=plan,
                entities=cols,
            )
        return response

    def _observing(self) -> _Read:
        """A read under way; leaving its block reports it to ``after_online_read`` hooks."""
        return _Read(self)

    def _report(self, read: _Read, error: BaseException | None) -> None:
        if read.plan is None or not self.hooks.wants("after_online_read"):
            return
        self.hooks.after(
            "after_online_read",
            project=self.project,
            plan=read.plan,
            rows=len(next(iter(read.cols.values()), [])),
            response=read.response,
            entities=read.cols,
            now_us=read.now_us,
            seconds=time.perf_counter() - read.began,
            error=error,
        )

    def read(
        self,
        features: FeatureRefs,
        entity_rows: Sequence[Mapping[str, Any]] | None = None,
        entities: Mapping[str, Sequence[Any]] | None = None,
        *,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """The latest values for each entity, with a status and event time per value."""
        with self._observing() as read:
            plan, cols = read.plan, read.cols = self._start(
                features, entity_rows, entities, full_feature_names
            )
            now_us = read.now_us = self.clock.now_us()
            records = None
            if plan.fetch:
                records = self.store().read(online_requests(plan.online(), cols))
            read.response = self._finish(plan, cols, records, now_us)
        return read.response

    async def read_async(
        self,
        features: FeatureRefs,
        *,
        entities: Mapping[str, Sequence[Any]],
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """``read`` with the store's round trip awaited where the store allows it."""
        with self._observing() as read:
            plan, cols = read.plan, read.cols = self._start(
                features, None, entities, full_feature_names
            )
            now_us = read.now_us = self.clock.now_us()
            records = None
            if plan.fetch:
                store = self.store()
                requests = online_requests(plan.online(), cols)
                if _awaitable(store):
                    records = await store.read_async(requests)  # type: ignore[attr-defined]
                else:
                    records = store.read(requests)
            read.response = self._finish(plan, cols, records, now_us)
        return read.response


class _Read:
    """One read under way, as a context: what the hooks are told about it when it ends."""

    __slots__ = ("began", "cols", "now_us", "plan", "reads", "response")

    def __init__(self, reads: OnlineReads):
        self.reads = reads
        self.began = time.perf_counter()
        self.plan: FeaturePlan | None = None
        self.cols: dict[str, list[Any]] = {}
        self.response: OnlineResponse | None = None
        self.now_us: int | None = None

    def __enter__(self) -> _Read:
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        self.reads._report(self, error)


_AWAITABLE: dict[type, bool] = {}


def _awaitable(store: object) -> bool:
    """``isinstance(store, SupportsAsyncRead)``, remembered per class (an ABC check costs
    about a microsecond, a tenth of a 1-row server request's own work)."""
    cls = type(store)
    found = _AWAITABLE.get(cls)
    if found is None:
        found = _AWAITABLE[cls] = isinstance(store, SupportsAsyncRead)
    return found
