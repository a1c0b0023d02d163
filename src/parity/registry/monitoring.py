"""What monitoring keeps in the registry: results, view freshness, alerts.

::

    kept = MonitorRecords(registry)
    rid = kept.save("profile", "driver_stats", table, summary={...}, start=s, end=e,
                    scope="offline", view_version=3)
    kept.results("profile", "driver_stats")      # newest first, without their tables
    kept.table(rid)                               # the stored pyarrow.Table
    kept.advance("driver_stats", "online", t)     # newest event time; only moves forward
    kept.newest()                                 # {(view, target): datetime}
    kept.fire("freshness", "driver_stats", "", observed=400.0, threshold=420.0, message=...)
    kept.resolve_others("freshness", still_firing={("driver_stats", "")})
    kept.alerts(state="open")

A result's table is stored as Arrow IPC (it is what the Python call returned), its summary
as JSON (what a listing prints). Writes are short transactions that never take the
project's apply lock. Times are aware UTC.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from parity.errors import ObjectNotFoundError
from parity.registry.jobs import _iso, _now, _utc
from parity.registry.models import alerts as alerts_table
from parity.registry.models import monitor_results as results_table
from parity.registry.models import projects
from parity.registry.models import view_freshness as freshness_table
from parity.registry.registry import Registry

__all__ = ["KINDS", "TARGETS", "AlertRecord", "MonitorRecords", "ResultRecord"]

KINDS = ("profile", "drift", "check", "skew", "freshness")
"""The kinds of result monitoring stores."""
TARGETS = ("online", "offline")


@dataclass(frozen=True)
class ResultRecord:
    """One stored result, without its table (``MonitorRecords.table(id)`` reads that)."""

    id: int
    kind: str
    view: str
    view_version: int | None
    start: datetime | None
    end: datetime | None
    scope: str
    created_at: datetime
    summary: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "view": self.view,
            "view_version": self.view_version,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "scope": self.scope,
            "created_at": _iso(self.created_at),
            "summary": self.summary,
        }


@dataclass(frozen=True)
class AlertRecord:
    """One firing of a rule: open until the rule holds again."""

    id: int
    rule: str
    view: str
    feature: str
    state: str
    observed: float | None
    threshold: float | None
    message: str
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "view": self.view,
            "feature": self.feature or None,
            "state": self.state,
            "observed": self.observed,
            "threshold": self.threshold,
            "message": self.message,
            "opened_at": _iso(self.opened_at),
            "last_seen_at": _iso(self.last_seen_at),
            "resolved_at": _iso(self.resolved_at),
        }


class MonitorRecords:
    """Monitoring's rows of the registry's project."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._project_row = False

    # -- results --------------------------------------------------------------------------
    def save(
        self,
        kind: str,
        view: str,
        table: pa.Table,
        *,
        summary: Mapping[str, Any] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        scope: str = "offline",
        view_version: int | None = None,
    ) -> int:
        """Store a result; returns its id."""
        if kind not in KINDS:
            raise ValueError(f"monitoring result: kind must be one of {KINDS}, not {kind!r}")
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        values = {
            "project": self.registry.project,
            "kind": kind,
            "view": view,
            "view_version": view_version,
            "start_at": None if start is None else _utc(start),
            "end_at": None if end is None else _utc(end),
            "scope": scope,
            "created_at": _now(),
            "summary": dict(summary or {}),
            "data": sink.getvalue().to_pybytes(),
        }
        with self._writing(f"store a {kind} result of {view!r}") as conn:
            return int(
                conn.execute(results_table.insert().values(**values)).inserted_primary_key[0]
            )

    def results(
        self,
        kind: str | None = None,
        view: str | None = None,
        *,
        scope: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> builtins.list[ResultRecord]:
        """Stored results, newest first (``since``: created at or after)."""
        t = results_table
        cols = [c for c in t.c if c.name != "data"]
        query = sa.select(*cols).where(t.c.project == self.registry.project)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        if view is not None:
            query = query.where(t.c.view == view)
        if scope is not None:
            query = query.where(t.c.scope == scope)
        if since is not None:
            query = query.where(t.c.created_at >= _utc(since))
        query = query.order_by(t.c.created_at.desc(), t.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        if not self.registry._ready():
            return []
        with self.registry._read(f"read {kind or 'monitoring'} results") as conn:
            return [_result(r) for r in conn.execute(query).all()]

    def table(self, result_id: int) -> pa.Table:
        """The table stored with a result; ObjectNotFoundError when there is no such id."""
        t = results_table
        query = sa.select(t.c.data).where(t.c.project == self.registry.project, t.c.id == result_id)
        data = None
        if self.registry._ready():
            with self.registry._read("read a monitoring result") as conn:
                data = conn.execute(query).scalar_one_or_none()
        if data is None:
            raise ObjectNotFoundError("monitoring result", str(result_id), self.registry.project)
        return pa.ipc.open_stream(pa.py_buffer(data)).read_all()

    # -- freshness ------------------------------------------------------------------------
    def advance(self, view: str, target: str, newest: datetime) -> None:
        """Record that ``view``'s ``target`` holds events up to ``newest`` (kept when older
        than what is recorded)."""
        if target not in TARGETS:
            raise ValueError(f"view freshness: target must be one of {TARGETS}, not {target!r}")
        t = freshness_table
        newest = _utc(newest)
        values = {
            "project": self.registry.project,
            "view": view,
            "target": target,
            "newest_event_at": newest,
            "updated_at": _now(),
        }
        with self._writing(f"record the freshness of {view!r}") as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            upsert = insert(t).values(**values)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["project", "view", "target"],
                    set_={
                        "newest_event_at": upsert.excluded.newest_event_at,
                        "updated_at": upsert.excluded.updated_at,
                    },
                    where=t.c.newest_event_at < upsert.excluded.newest_event_at,
                )
            )

    def newest(self, target: str | None = None) -> dict[tuple[str, str], datetime]:
        """``{(view, target): newest event time}`` of what was recorded."""
        t = freshness_table
        query = sa.select(t.c.view, t.c.target, t.c.newest_event_at).where(
            t.c.project == self.registry.project
        )
        if target is not None:
            query = query.where(t.c.target == target)
        if not self.registry._ready():
            return {}
        with self.registry._read("read view freshness") as conn:
            return {(r.view, r.target): _utc(r.newest_event_at) for r in conn.execute(query)}

    def forget_freshness(self, views: Iterable[str] | None = None) -> None:
        """Drop what is recorded of these views (all when None), e.g. after a teardown."""
        t = freshness_table
        query = t.delete().where(t.c.project == self.registry.project)
        if views is not None:
            query = query.where(t.c.view.in_(list(views)))
        if self.registry._ready():
            with self.registry._write("forget view freshness") as conn:
                conn.execute(query)

    # -- alerts ---------------------------------------------------------------------------
    def fire(
        self,
        rule: str,
        view: str,
        feature: str = "",
        *,
        observed: float | None,
        threshold: float | None,
        message: str,
    ) -> tuple[AlertRecord, bool]:
        """The rule fails now: the open alert of (rule, view, feature) is seen again, or a
        new one opens. Returns the alert and whether it is new (what notifiers send)."""
        t = alerts_table
        now = _now()
        key = _alert_key(self.registry.project, rule, view, feature)
        with self._writing(f"record alert {rule!r} of {view!r}") as conn:
            row = conn.execute(sa.select(t).where(*key, t.c.state == "open")).first()
            if row is not None:
                conn.execute(
                    t.update()
                    .where(t.c.id == row.id)
                    .values(
                        last_seen_at=now, observed=observed, threshold=threshold, message=message
                    )
                )
                new = False
                rid = row.id
            else:
                rid = conn.execute(
                    t.insert().values(
                        project=self.registry.project,
                        rule=rule,
                        view=view,
                        feature=feature,
                        state="open",
                        observed=observed,
                        threshold=threshold,
                        message=message,
                        opened_at=now,
                        last_seen_at=now,
                        resolved_at=None,
                    )
                ).inserted_primary_key[0]
                new = True
            stored = conn.execute(sa.select(t).where(t.c.id == rid)).one()
        return _alert(stored), new

    def resolve(self, rule: str, view: str, feature: str = "") -> AlertRecord | None:
        """The rule holds again: its open alert (if any) is resolved and returned."""
        t = alerts_table
        if not self.registry._ready():
            return None
        key = _alert_key(self.registry.project, rule, view, feature)
        with self.registry._write(f"resolve alert {rule!r} of {view!r}") as conn:
            row = conn.execute(sa.select(t).where(*key, t.c.state == "open")).first()
            if row is None:
                return None
            now = _now()
            conn.execute(
                t.update().where(t.c.id == row.id).values(state="resolved", resolved_at=now)
            )
            return _alert(conn.execute(sa.select(t).where(t.c.id == row.id)).one())

    def alerts(
        self, *, state: str | None = None, view: str | None = None, limit: int | None = None
    ) -> builtins.list[AlertRecord]:
        """Alerts, newest first."""
        t = alerts_table
        query = sa.select(t).where(t.c.project == self.registry.project)
        if state is not None:
            query = query.where(t.c.state == state)
        if view is not None:
            query = query.where(t.c.view == view)
        query = query.order_by(t.c.opened_at.desc(), t.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        if not self.registry._ready():
            return []
        with self.registry._read("read alerts") as conn:
            return [_alert(r) for r in conn.execute(query).all()]

    # -- helpers --------------------------------------------------------------------------
    def _writing(self, action: str) -> Any:
        reg = self.registry
        reg._create()
        return _ProjectWrite(self, action)


class _ProjectWrite:
    """A registry write transaction that first makes sure the project row exists (the
    tables' foreign key), without the apply lock."""

    def __init__(self, owner: MonitorRecords, action: str):
        self._owner = owner
        self._cm = owner.registry._write(action)

    def __enter__(self) -> Connection:
        conn = self._cm.__enter__()
        if not self._owner._project_row:
            reg = self._owner.registry
            now = _now()
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            conn.execute(
                insert(projects)
                .values(project=reg.project, revision=0, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["project"])
            )
        return conn

    def __exit__(self, *exc: Any) -> Any:
        out = self._cm.__exit__(*exc)
        if exc[0] is None:
            self._owner._project_row = True
        return out


def _alert_key(project: str, rule: str, view: str, feature: str) -> tuple[Any, ...]:
    t = alerts_table
    return (t.c.project == project, t.c.rule == rule, t.c.view == view, t.c.feature == feature)


def _result(r: Any) -> ResultRecord:
    return ResultRecord(
        id=int(r.id),
        kind=r.kind,
        view=r.view,
        view_version=r.view_version,
        start=None if r.start_at is None else _utc(r.start_at),
        end=None if r.end_at is None else _utc(r.end_at),
        scope=r.scope,
        created_at=_utc(r.created_at),
        summary=dict(r.summary or {}),
    )


def _alert(r: Any) -> AlertRecord:
    return AlertRecord(
        id=int(r.id),
        rule=r.rule,
        view=r.view,
        feature=r.feature,
        state=r.state,
        observed=r.observed,
        threshold=r.threshold,
        message=r.message,
        opened_at=_utc(r.opened_at),
        last_seen_at=_utc(r.last_seen_at),
        resolved_at=None if r.resolved_at is None else _utc(r.resolved_at),
    )
