"""Warming a worker before ``/ready`` says 200: what a first request would otherwise pay for.

One sample read per feature service (with and without ``full_feature_names``), per online
feature view (all its features) and per on-demand view (all its outputs): each plans its
request into the planner's cache, reads the online store (opening the connections, thread
and async ones), decodes, runs the on-demand functions once on a sample row (finding them
again, importing their modules and pandas for pandas-mode views) and builds the JSON. The
blocking half runs on the reader thread (whose connections large reads then use), the
awaitable half on the event loop. The sample keys are of the join keys' declared types and
most likely absent; a sample that fails (a function that refuses the sample row, say) is
logged and skipped: the real request will meet the same error and report it. A store that
does not answer (5xx other than a failing function) ends the warm-up at once: waiting for
each sample read to time out in turn would only delay ``/ready``, whose own check then
reports the store.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from parity.query.plan import plan_features
from parity.server.errors import from_exception
from parity.server.serving import Serving
from parity.types import ValueType

log = logging.getLogger("parity.server")

GATE_ENV = "PARITY_TEST_WARMUP_GATE"
"""Tests only: a file path; warm-up does not finish before that file exists (so a test can
see ``/ready`` answer 503 while a worker warms, without racing a real warm-up)."""

_SAMPLES: dict[str, Any] = {
    "int": 0,
    "float": 0.0,
    "string": "",
    "bytes": b"",
    "bool": False,
    "timestamp": datetime(2000, 1, 1, tzinfo=UTC),
}


@dataclass(frozen=True)
class WarmRead:
    """One sample read: the references (or service name), the flag, the entity columns."""

    refs: list[str] | str
    full_feature_names: bool
    entities: dict[str, list[Any]]


def _sample(dtype: ValueType | None) -> Any:
    return _SAMPLES.get(getattr(dtype, "kind", None) or "int", 0)


def warm_reads(serving: Serving) -> list[WarmRead]:
    """The sample reads for the current catalog (a request that cannot be planned, such as
    a service whose feature names clash without full names, is left out)."""
    catalog = serving.store.catalog()
    key_types = serving.join_key_types()
    requests: list[tuple[list[str] | str, bool]] = []
    for name in catalog.names("feature_service"):
        requests += [(name, False), (name, True)]
    for view in catalog.views():
        if view.online:
            requests.append(([f"{view.name}:{f}" for f in view.feature_names], False))
    for odfv in catalog.on_demand_views():
        requests.append(([f"{odfv.name}:{f}" for f in odfv.feature_names], False))
    out = []
    for refs, full in requests:
        try:
            plan = plan_features(refs, catalog, full_feature_names=full)
        except Exception as exc:  # the same request will be refused with its own message
            log.debug("warm-up: %r not planned: %s", refs, exc)
            continue
        entities: dict[str, list[Any]] = {}
        if plan.fetch:
            for key in plan.online().join_keys:
                entities[key] = [_sample(key_types.get(key))]
        for step in plan.steps:
            for _, fld in step.request_fields:
                entities[fld.name] = [_sample(fld.dtype)]
        if entities:
            out.append(WarmRead(refs, full, entities))
    return out


def warm_blocking(serving: Serving, answer: Any) -> list[WarmRead]:
    """The blocking half: every sample read through ``get_online_features`` and ``answer``
    (the endpoint's JSON); returns the reads for the loop's half."""
    started = time.perf_counter()
    reads = warm_reads(serving)
    store = serving.store
    for read in reads:
        try:
            answer(
                store.get_online_features(
                    read.refs, entities=read.entities, full_feature_names=read.full_feature_names
                )
            )
        except Exception as exc:
            log.info("warm-up: sample read of %r failed (%s); serving anyway", read.refs, exc)
            if _store_down(exc):
                break
    gate = os.environ.get(GATE_ENV)
    while gate and not os.path.exists(gate):
        time.sleep(0.05)
    log.info(
        "warm-up: %d sample reads in %.0f ms", len(reads), (time.perf_counter() - started) * 1e3
    )
    return reads


async def warm_on_loop(serving: Serving, reads: list[WarmRead]) -> None:
    """The awaitable half: the sample reads again through the loop's path (its connections)."""
    store = serving.store
    for read in reads:
        try:
            await store.get_online_features_async(
                read.refs, entities=read.entities, full_feature_names=read.full_feature_names
            )
        except Exception as exc:
            log.debug("warm-up: async sample read of %r failed: %s", read.refs, exc)
            if _store_down(exc):
                return


def _store_down(exc: Exception) -> bool:
    err = from_exception(exc)
    return err.status >= 500 and err.code != "transformation_failed"
