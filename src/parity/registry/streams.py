"""Stream consumers' counters, kept in the registry so ``parity stream status`` sees them all.

``parity stream run`` processes, possibly several on several hosts, each run one consumer
per stream source; every consumer thread beats here every ``HEARTBEAT_SECONDS`` with its
counters, and ``parity stream status`` (another process) reads them::

    consumers = StreamConsumers(registry)
    consumers.beat(record)               # upsert of (project, source, consumer)
    consumers.stop(source, consumer)     # on a clean shutdown
    consumers.list(["clicks"])           # every consumer of "clicks", lost ones marked

States: ``running`` -> ``stopped``, and ``lost``, which is never stored but read, with the
rule of background jobs (``parity.registry.jobs``): a running consumer is lost when its
heartbeat is older than ``stale_after`` seconds, or at once when its owner (``host:pid``) is
a process of this host that no longer exists. A lost consumer that beats again (a process
that was only paused, or cut off from the registry) reads as running again.

A beat is one short write transaction and never takes the project's apply lock, so applies
do not stall behind heartbeats. On PostgreSQL it is one ``INSERT .. ON CONFLICT DO UPDATE``
whose update path touches only the consumer's row (the foreign key to the project row is
not checked again when the project does not change); only a consumer's first beat checks
that key, and may wait for an apply in progress. On SQLite every write transaction holds
the database lock for its length, here one statement.
"""

from __future__ import annotations

import builtins
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from parity.registry.jobs import (
    HEARTBEAT_SECONDS,
    STALE_AFTER_SECONDS,
    _alive,
    _iso,
    _now,
    _utc,
)
from parity.registry.models import projects
from parity.registry.models import stream_consumers as table
from parity.registry.registry import Registry

__all__ = ["HEARTBEAT_SECONDS", "STATES", "ConsumerRecord", "StreamConsumers"]

STATES = ("running", "stopped", "lost")
_STORED = ("running", "stopped")
_KEY = ("project", "source", "consumer")
_LIMITS = {"source": 128, "consumer": 256, "owner": 256}  # the columns' lengths


@dataclass(frozen=True)
class ConsumerRecord:
    """One consumer of a stream source, as its runner reports it; times are aware UTC."""

    source: str
    consumer: str
    """The consumer's name in the group, unique per process (``streams.consumer_name()``)."""
    owner: str
    """``host:pid`` of its process (``jobs.this_owner()``)."""
    state: str
    """``running`` | ``stopped`` | ``lost`` (lost is read, never written)."""
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None = None
    consumed: int = 0
    """Messages polled (redeliveries included)."""
    written: int = 0
    """Events written through the ingestion path."""
    batches: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    """Dead letters by reason (``decode``, ``type``, ``late``...)."""
    last_offset: str | None = None
    """The last offset this consumer committed."""
    freshness: dict[str, Any] = field(default_factory=dict)
    """``{"event": FreshnessWindow.to_json(), "append": ...}`` (``parity.streams.freshness``)."""
    error: str | None = None
    """The last error (e.g. the online store is unreachable); None while all is well."""

    def to_json(self) -> dict[str, Any]:
        """The record with ISO times, for ``parity stream status --json`` and the server."""
        return {
            "source": self.source,
            "consumer": self.consumer,
            "owner": self.owner,
            "state": self.state,
            "started_at": _iso(self.started_at),
            "heartbeat_at": _iso(self.heartbeat_at),
            "stopped_at": _iso(self.stopped_at),
            "consumed": self.consumed,
            "written": self.written,
            "batches": self.batches,
            "dead_letters": dict(self.dead_letters),
            "last_offset": self.last_offset,
            "freshness": dict(self.freshness),
            "error": self.error,
        }


class StreamConsumers:
    """The stream consumers of the registry's project."""

    def __init__(self, registry: Registry, *, stale_after: float = STALE_AFTER_SECONDS):
        if not stale_after > 0:
            raise ValueError(
                f"stream consumers: stale_after must be > 0 seconds, not {stale_after}"
            )
        self.registry = registry
        self.stale_after = stale_after
        self._project_row = False  # whether this object made sure the project row exists

    # -- writing --------------------------------------------------------------------------
    def beat(self, record: ConsumerRecord) -> None:
        """Write ``record`` (insert, or update the row of its source and consumer).

        ``heartbeat_at`` is stamped now, with this host's clock, whatever the record says:
        a beat is the heartbeat. ``ValueError`` names a bad field (``lost`` cannot be
        written); ``RegistryError`` when the registry cannot be written.
        """
        _check(record)
        reg = self.registry
        reg._create()
        now = _now()
        values = {
            "project": reg.project,
            "source": record.source,
            "consumer": record.consumer,
            "owner": record.owner,
            "state": record.state,
            "started_at": _utc(record.started_at),
            "heartbeat_at": now,
            "stopped_at": None if record.stopped_at is None else _utc(record.stopped_at),
            "consumed": record.consumed,
            "written": record.written,
            "batches": record.batches,
            "dead_letters": dict(record.dead_letters),
            "last_offset": record.last_offset,
            "freshness": dict(record.freshness),
            "error": record.error,
        }
        with reg._write(f"record stream consumer {record.consumer!r} of {record.source!r}") as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            if not self._project_row:
                # The row's foreign key needs the project; no FOR UPDATE, unlike applies.
                conn.execute(
                    insert(projects)
                    .values(project=reg.project, revision=0, created_at=now, updated_at=now)
                    .on_conflict_do_nothing(index_elements=["project"])
                )
            upsert = insert(table).values(**values)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=list(_KEY),
                    set_={k: upsert.excluded[k] for k in values if k not in _KEY},
                )
            )
        self._project_row = True

    def stop(self, source: str, consumer: str) -> None:
        """The consumer stopped cleanly (``stopped``, ``stopped_at`` now); a consumer that
        never beat has no row and stays without one."""
        reg = self.registry
        if not reg._ready():
            return
        now = _now()
        with reg._write(f"stop stream consumer {consumer!r} of {source!r}") as conn:
            conn.execute(
                table.update()
                .where(*_where(reg, source, consumer))
                .values(state="stopped", stopped_at=now, heartbeat_at=now)
            )

    def prune(self, older_than: timedelta) -> int:
        """Delete stopped and lost consumers whose heartbeat is older than ``older_than``;
        how many were deleted. Running consumers are kept, however old their start."""
        if older_than < timedelta(0):
            raise ValueError(f"stream consumers: older_than must not be negative: {older_than}")
        reg = self.registry
        if not reg._ready():
            return 0
        deleted = 0
        with reg._write("prune stream consumers") as conn:
            now = _now()
            rows = conn.execute(
                sa.select(
                    table.c.source,
                    table.c.consumer,
                    table.c.owner,
                    table.c.state,
                    table.c.heartbeat_at,
                ).where(table.c.project == reg.project, table.c.heartbeat_at < now - older_than)
            ).all()
            for row in rows:
                if row.state == "stopped" or self._lost(row, now):
                    # the heartbeat read just now: a consumer that beat since is kept
                    deleted += conn.execute(
                        table.delete().where(
                            *_where(reg, row.source, row.consumer),
                            table.c.heartbeat_at == row.heartbeat_at,
                        )
                    ).rowcount
        return deleted

    # -- reading --------------------------------------------------------------------------
    def list(self, sources: Sequence[str] | None = None) -> builtins.list[ConsumerRecord]:
        """The consumers (of these sources, or all), by source then consumer; running ones
        whose process is gone read as ``lost``."""
        if isinstance(sources, str):
            raise TypeError(f"stream consumers: sources must be a list of names, not {sources!r}")
        reg = self.registry
        if not reg._ready():
            return []
        query = sa.select(table).where(table.c.project == reg.project)
        if sources is not None:
            query = query.where(table.c.source.in_(builtins.list(sources)))
        with reg._read("read stream consumers") as conn:
            rows = conn.execute(query.order_by(table.c.source, table.c.consumer)).all()
        now = _now()
        return [_record(r, lost=r.state == "running" and self._lost(r, now)) for r in rows]

    # -- internals ------------------------------------------------------------------------
    def _lost(self, row: Any, now: datetime) -> bool:
        """The rule of ``MaterializationJobs._lost``: a stale heartbeat, or a dead local pid."""
        if now - _utc(row.heartbeat_at) > timedelta(seconds=self.stale_after):
            return True
        host, _, pid = str(row.owner).rpartition(":")
        return host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))


def _where(reg: Registry, source: str, consumer: str) -> tuple[Any, ...]:
    return (table.c.project == reg.project, table.c.source == source, table.c.consumer == consumer)


def _check(record: ConsumerRecord) -> None:
    """Refuse a record the table would not hold faithfully, naming the field."""
    if not isinstance(record, ConsumerRecord):
        raise TypeError(f"stream consumers: expected a ConsumerRecord, got {type(record).__name__}")
    what = f"stream consumer record {record.consumer!r} of {record.source!r}"
    for name, limit in _LIMITS.items():
        value = getattr(record, name)
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise ValueError(f"{what}: {name} must be text of 1 to {limit} characters: {value!r}")
    if record.state not in _STORED:
        raise ValueError(
            f"{what}: state must be one of {list(_STORED)} ('lost' is read, never written), "
            f"not {record.state!r}"
        )
    for name in ("started_at", "heartbeat_at", "stopped_at"):
        value = getattr(record, name)
        if value is None and name == "stopped_at":
            continue
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"{what}: {name} must be an aware datetime, not {value!r}")
    for name in ("consumed", "written", "batches"):
        if not _count(getattr(record, name)):
            raise ValueError(f"{what}: {name} must be a count >= 0: {getattr(record, name)!r}")
    if not isinstance(record.dead_letters, Mapping) or not all(
        isinstance(k, str) and _count(v) for k, v in record.dead_letters.items()
    ):
        raise ValueError(
            f"{what}: dead_letters must map reasons to counts: {record.dead_letters!r}"
        )
    if not isinstance(record.freshness, Mapping):
        raise ValueError(f"{what}: freshness must be an object: {record.freshness!r}")
    for name in ("last_offset", "error"):
        value = getattr(record, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{what}: {name} must be text or None: {value!r}")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _record(row: Any, *, lost: bool) -> ConsumerRecord:
    return ConsumerRecord(
        source=row.source,
        consumer=row.consumer,
        owner=row.owner,
        state="lost" if lost else row.state,
        started_at=_utc(row.started_at),
        heartbeat_at=_utc(row.heartbeat_at),
        stopped_at=None if row.stopped_at is None else _utc(row.stopped_at),
        consumed=int(row.consumed),
        written=int(row.written),
        batches=int(row.batches),
        dead_letters={str(k): int(v) for k, v in (row.dead_letters or {}).items()},
        last_offset=row.last_offset,
        freshness=dict(row.freshness or {}),
        error=row.error,
    )
