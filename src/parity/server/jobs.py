"""Background materializations: accepted at once (202), run on the writer, followed in the
registry (``parity.registry.jobs``) so that any worker answers ``GET /materializations/{id}``.

A job is created (queued) in the registry before the 202 answer, then run on the worker's
one writer thread, after the pushes and jobs already waiting there. While this worker has
queued or running jobs a heartbeat thread moves their ``heartbeat_at`` every
``HEARTBEAT_SECONDS``; a worker that dies stops the heartbeat, and the job then reads as
``failed`` (``worker_lost``) once stale, or at once to a worker of the same host.
Each view's rows and stored records are recorded as it finishes (the store's write hooks).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from parity.governance.context import carry
from parity.hooks import Hooks
from parity.ingest import MaterializeResult
from parity.registry.jobs import (
    HEARTBEAT_SECONDS,
    JobRecord,
    MaterializationJobs,
    this_owner,
)
from parity.server.errors import from_exception
from parity.store import FeatureStore

log = logging.getLogger("parity.server")

__all__ = ["JobRunner", "view_summary"]


def view_summary(result: MaterializeResult) -> list[dict[str, Any]]:
    """Each view's run as the materialize endpoints answer it."""
    return [
        {
            "feature_view": v.view,
            "start": v.start,
            "end": v.end,
            "rows": v.rows,
            "stored": v.stored,
            "seconds": v.seconds,
        }
        for v in result.views
    ]


class _Progress(Hooks):
    """Per-view progress of the job running on the writer (one at a time per worker)."""

    def __init__(self, runner: JobRunner):
        self.runner = runner

    def before_write(self, *, kind: str, target: str, **_: Any) -> None:
        if kind == "materialize":
            self.runner._view_event(target, {"state": "running"})

    def after_write(
        self,
        *,
        kind: str,
        target: str,
        rows: Any,
        stored: Any,
        seconds: float,
        error: Any,
        **_: Any,
    ) -> None:
        if kind != "materialize":
            return
        entry: dict[str, Any] = {"state": "failed" if error else "succeeded", "rows": rows}
        entry.update(stored=stored, seconds=round(seconds, 3))
        self.runner._view_event(target, entry)


class JobRunner:
    """Creates, runs and reports a worker's background materializations."""

    def __init__(self, store: FeatureStore, writer: ThreadPoolExecutor):
        self.store = store
        self.writer = writer
        self.owner = this_owner()
        self._jobs: MaterializationJobs | None = None
        self._live: set[str] = set()
        self._lock = threading.Lock()
        self._current: str | None = None
        self._progress: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None
        self._hook = store.hooks.add(_Progress(self))

    @property
    def jobs(self) -> MaterializationJobs:
        if self._jobs is None:
            self._jobs = MaterializationJobs(self.store.registry)
        return self._jobs

    async def submit(
        self,
        kind: str,
        views: Sequence[str],
        request: dict[str, Any],
        run: Callable[[], MaterializeResult],
        *,
        force: bool,
    ) -> JobRecord:
        """Record a queued job (``JobConflictError`` when a view is busy) and queue ``run``
        on the writer; returns the job as recorded."""
        loop = asyncio.get_running_loop()
        job = await loop.run_in_executor(
            None, lambda: self.jobs.create(kind, views, request, self.owner, force=force)
        )
        with self._lock:
            self._live.add(job.id)
        self._start_heartbeat()
        self.writer.submit(carry(self._run), job.id, run)  # as the requester
        return job

    async def get(self, job_id: str) -> JobRecord:
        return await asyncio.get_running_loop().run_in_executor(None, self.jobs.get, job_id)

    async def recent(self, limit: int) -> list[JobRecord]:
        return await asyncio.get_running_loop().run_in_executor(None, self.jobs.recent, limit)

    def close(self) -> None:
        self._stop.set()
        self.store.hooks.remove(self._hook)
        if self._beating is not None:
            self._beating.join(timeout=5)

    # -- on the writer ----------------------------------------------------------------------
    def _run(self, job_id: str, run: Callable[[], MaterializeResult]) -> None:
        jobs = self.jobs
        try:
            self._current, self._progress = job_id, {}
            jobs.start(job_id)
            result = run()
            final = {v["feature_view"]: _final(v) for v in view_summary(result)}
            jobs.finish(job_id, "succeeded", progress=final)
        except Exception as exc:
            err = from_exception(exc)
            log.warning("materialization job %s failed: %s %s", job_id, err.code, err.message)
            try:
                jobs.finish(
                    job_id,
                    "failed",
                    progress=self._progress,
                    error={"code": err.code, "message": err.message},
                )
            except Exception:
                log.exception("could not record the failure of job %s", job_id)
        finally:
            self._current = None
            with self._lock:
                self._live.discard(job_id)

    def _view_event(self, view: str, entry: dict[str, Any]) -> None:
        job_id = self._current
        if job_id is None:  # a synchronous materialization: nothing to follow
            return
        with self._lock:
            self._progress[view] = {**self._progress.get(view, {}), **entry}
            snapshot = {k: dict(v) for k, v in self._progress.items()}
        try:
            self.jobs.progress(job_id, snapshot)
        except Exception as exc:  # progress is a courtesy; the run goes on
            log.warning("could not record progress of job %s: %s", job_id, exc)

    # -- heartbeat --------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._beating is not None and self._beating.is_alive():
                return
            self._beating = threading.Thread(
                target=self._beat, name="parity-job-heartbeat", daemon=True
            )
            self._beating.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with self._lock:
                live = sorted(self._live)
            if not live:
                continue
            began = time.monotonic()
            try:
                self.jobs.heartbeat(live)
            except Exception as exc:
                log.warning("materialization heartbeat failed: %s", exc)
            if time.monotonic() - began > HEARTBEAT_SECONDS:
                log.warning("materialization heartbeat took %.1f s", time.monotonic() - began)


def _final(view: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in view.items() if k != "feature_view"}
    for k in ("start", "end"):
        out[k] = out[k].isoformat().replace("+00:00", "Z")
    out["seconds"] = round(out["seconds"], 3)
    return {"state": "succeeded", **out}
