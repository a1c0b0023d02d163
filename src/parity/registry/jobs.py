"""Background materialization jobs, kept in the registry so every server worker sees them.

The feature server answers ``POST /materialize?async=true`` with a job id and runs the job
on one worker's writer thread; ``GET /materializations/{id}`` may reach another worker (or
another server on the same registry), so a job's state lives here, not in a process::

    jobs = MaterializationJobs(registry)
    job = jobs.create("materialize", ["driver_stats"], {"start": ..., "end": ...}, owner)
    jobs.start(job.id); jobs.progress(job.id, "driver_stats", {...}); jobs.finish(job.id, ...)

States: ``queued`` -> ``running`` -> ``succeeded`` | ``failed``. A job whose worker died
must not stay running forever: the worker running a job (``owner``, ``host:pid``) moves its
``heartbeat_at`` every ``HEARTBEAT_SECONDS``; a queued or running job is *lost* when its
heartbeat is older than ``stale_after`` seconds, or at once when its owner is a process of
this host that no longer exists. A lost job is marked ``failed`` (error code
``worker_lost``) by the next read or create that sees it, so it reads as failed everywhere.

``create`` refuses (``JobConflictError``, 409) a job naming a view that a live queued or
running job names, unless ``force``; the check and the insert are one transaction under the
project's write lock, so two workers cannot both start one view.
"""

from __future__ import annotations

import builtins
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from parity.errors import ObjectNotFoundError, ParityError
from parity.registry.models import materialization_jobs as jobs_table
from parity.registry.registry import Registry

__all__ = [
    "ACTIVE",
    "HEARTBEAT_SECONDS",
    "STALE_AFTER_SECONDS",
    "JobConflictError",
    "JobRecord",
    "MaterializationJobs",
    "this_owner",
]

ACTIVE = ("queued", "running")
STATES = ("queued", "running", "succeeded", "failed")
HEARTBEAT_SECONDS = 2.0
"""How often the worker running a job says it is alive."""
STALE_AFTER_SECONDS = 30.0
"""A queued or running job without a heartbeat for this long counts as lost."""
LOST = "worker_lost"


class JobConflictError(ParityError):
    """A view of the job is being materialized by another job (409); ``force`` overrides."""

    http_status = 409

    def __init__(self, message: str, *, views: Sequence[str], jobs: Sequence[str]):
        super().__init__(message)
        self.views = list(views)
        self.jobs = list(jobs)


@dataclass(frozen=True)
class JobRecord:
    """One job as the registry holds it; times are aware UTC."""

    id: str
    kind: str
    state: str
    views: tuple[str, ...]
    request: dict[str, Any]
    progress: dict[str, dict[str, Any]]
    error: dict[str, Any] | None
    owner: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The job as the server answers it: per-view rows so far and a total."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "feature_views": list(self.views),
            "request": self.request,
            "views": [
                {"feature_view": v, **self.progress.get(v, {"state": "pending"})}
                for v in self.views
            ],
            "rows": sum(int(p.get("rows") or 0) for p in self.progress.values()),
            "error": self.error,
            "owner": self.owner,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "heartbeat_at": _iso(self.heartbeat_at),
        }


def this_owner() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class MaterializationJobs:
    """The jobs of the registry's project."""

    def __init__(self, registry: Registry, *, stale_after: float = STALE_AFTER_SECONDS):
        self.registry = registry
        self.stale_after = stale_after

    # -- writing --------------------------------------------------------------------------
    def create(
        self,
        kind: str,
        views: Sequence[str],
        request: Mapping[str, Any],
        owner: str,
        *,
        force: bool = False,
    ) -> JobRecord:
        """A new ``queued`` job; ``JobConflictError`` when a live job shares a view (unless
        ``force``). Lost jobs found on the way are marked failed first."""
        reg = self.registry
        reg._create()
        now = _now()
        with reg._write("create a materialization job") as conn:
            reg._lock_project(conn)
            active = conn.execute(
                sa.select(jobs_table).where(
                    jobs_table.c.project == reg.project, jobs_table.c.state.in_(ACTIVE)
                )
            ).all()
            busy: dict[str, list[str]] = {}
            for row in active:
                if self._lost(row, now):
                    self._mark_lost(conn, row, now)
                    continue
                for v in set(row.views) & set(views):
                    busy.setdefault(v, []).append(row.id)
            if busy and not force:
                names = sorted(busy)
                ids = sorted({i for found in busy.values() for i in found})
                raise JobConflictError(
                    f"feature view(s) {names} are being materialized by job(s) {ids}; wait "
                    "for them (GET /materializations/{id}) or pass ?force=true to run anyway",
                    views=names,
                    jobs=ids,
                )
            job_id = uuid.uuid4().hex
            conn.execute(
                jobs_table.insert().values(
                    id=job_id,
                    project=reg.project,
                    kind=kind,
                    state="queued",
                    views=list(views),
                    request=dict(request),
                    progress={},
                    error=None,
                    owner=owner,
                    created_at=now,
                    started_at=None,
                    finished_at=None,
                    heartbeat_at=now,
                )
            )
        return self.get(job_id)

    def start(self, job_id: str) -> None:
        """The job runs now."""
        now = _now()
        self._update(job_id, state="running", started_at=now, heartbeat_at=now)

    def progress(self, job_id: str, progress: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the job's per-view progress (and beat its heart)."""
        self._update(job_id, progress={k: dict(v) for k, v in progress.items()})

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        progress: Mapping[str, Mapping[str, Any]] | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> None:
        """``succeeded`` or ``failed`` (with ``error``: ``{"code", "message"}``)."""
        if state not in ("succeeded", "failed"):
            raise ValueError(f"a job finishes succeeded or failed, not {state!r}")
        values: dict[str, Any] = {"state": state, "finished_at": _now()}
        if progress is not None:
            values["progress"] = {k: dict(v) for k, v in progress.items()}
        if error is not None:
            values["error"] = dict(error)
        self._update(job_id, **values)

    def heartbeat(self, job_ids: Sequence[str]) -> None:
        """These (live) jobs' worker is alive."""
        if not job_ids:
            return
        reg = self.registry
        with reg._write("beat materialization jobs' hearts") as conn:
            conn.execute(
                jobs_table.update()
                .where(
                    jobs_table.c.project == reg.project,
                    jobs_table.c.id.in_(list(job_ids)),
                    jobs_table.c.state.in_(ACTIVE),
                )
                .values(heartbeat_at=_now())
            )

    # -- reading --------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        """One job; ``ObjectNotFoundError`` (kind ``materialization``) when unknown."""
        reg = self.registry
        if reg._ready():
            with reg._read("read a materialization job") as conn:
                row = conn.execute(
                    sa.select(jobs_table).where(
                        jobs_table.c.project == reg.project, jobs_table.c.id == job_id
                    )
                ).first()
            if row is not None:
                if row.state in ACTIVE and self._lost(row, _now()):
                    self._reap([row])
                    return self.get(job_id)
                return _record(row)
        raise ObjectNotFoundError("materialization", job_id, reg.project)

    def recent(self, limit: int = 50) -> builtins.list[JobRecord]:
        """The latest ``limit`` jobs, newest first."""
        reg = self.registry
        if not reg._ready():
            return []
        query = (
            sa.select(jobs_table)
            .where(jobs_table.c.project == reg.project)
            .order_by(jobs_table.c.created_at.desc(), jobs_table.c.id)
            .limit(limit)
        )
        with reg._read("read materialization jobs") as conn:
            rows = conn.execute(query).all()
        now = _now()
        lost = [r for r in rows if r.state in ACTIVE and self._lost(r, now)]
        if lost:
            self._reap(lost)
            return self.recent(limit)
        return [_record(r) for r in rows]

    # -- internals ------------------------------------------------------------------------
    def _lost(self, row: Any, now: datetime) -> bool:
        if now - _utc(row.heartbeat_at) > timedelta(seconds=self.stale_after):
            return True
        host, _, pid = str(row.owner).rpartition(":")
        return host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))

    def _reap(self, rows: Sequence[Any]) -> None:
        reg = self.registry
        with reg._write("mark lost materialization jobs failed") as conn:
            now = _now()
            for row in rows:
                self._mark_lost(conn, row, now)

    def _mark_lost(self, conn: Connection, row: Any, now: datetime) -> None:
        message = (
            f"the worker running this job ({row.owner}) stopped: no heartbeat since "
            f"{_iso(_utc(row.heartbeat_at))}; views finished before it stopped keep their "
            "rows, the others may be partly written; run the job again"
        )
        conn.execute(
            jobs_table.update()
            .where(
                jobs_table.c.project == self.registry.project,
                jobs_table.c.id == row.id,
                jobs_table.c.state.in_(ACTIVE),
            )
            .values(state="failed", finished_at=now, error={"code": LOST, "message": message})
        )

    def _update(self, job_id: str, **values: Any) -> None:
        reg = self.registry
        values.setdefault("heartbeat_at", _now())
        with reg._write("update a materialization job") as conn:
            conn.execute(
                jobs_table.update()
                .where(jobs_table.c.project == reg.project, jobs_table.c.id == job_id)
                .values(**values)
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _record(row: Any) -> JobRecord:
    return JobRecord(
        id=row.id,
        kind=row.kind,
        state=row.state,
        views=tuple(row.views),
        request=dict(row.request),
        progress={k: dict(v) for k, v in (row.progress or {}).items()},
        error=None if row.error is None else dict(row.error),
        owner=row.owner,
        created_at=_utc(row.created_at),
        started_at=None if row.started_at is None else _utc(row.started_at),
        finished_at=None if row.finished_at is None else _utc(row.finished_at),
        heartbeat_at=_utc(row.heartbeat_at),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
