"""What usage statistics keep in the registry (table ``parity_usage``, migration 0009).

::

    kept = UsageRecords(registry)
    kept.add([UsageCount("feature_view", "stats", "conv_rate", "service:ranking",
                         reads_online=3, keys_online=30, first_us=t0, last_us=t1)])
    kept.report("feature_view", "stats")      # UsageReport: totals, consumers, features
    kept.last_reads()                          # {(kind, view, feature): last read}
    kept.created()                             # {(kind, name): when the live object was created}

One row per (kind, name, feature, consumer): ``feature`` is "" for the row counting the
object's reads as a whole (a request reading three of a view's features is one read of the
view and one of each feature). ``add`` adds counts to what is stored, in one transaction
(``INSERT ... ON CONFLICT DO UPDATE SET reads_online = reads_online + excluded...``, the
same on SQLite and PostgreSQL), rows in primary-key order so two writers never deadlock. It
never takes the apply lock. Times are aware UTC.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from parity.registry.engine import insert_for
from parity.registry.models import objects, projects, usage
from parity.registry.registry import Registry

__all__ = [
    "ConsumerUsage",
    "FeatureUsage",
    "UsageCount",
    "UsageRecords",
    "UsageReport",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COUNTS = ("reads_online", "reads_offline", "keys_online", "rows_offline")


@dataclass
class UsageCount:
    """Reads to add for one (kind, name, feature, consumer); times in µs since the epoch."""

    kind: str
    name: str
    feature: str
    consumer: str
    reads_online: int = 0
    reads_offline: int = 0
    keys_online: int = 0
    rows_offline: int = 0
    first_us: int = 0
    last_us: int = 0

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.name, self.feature, self.consumer)

    def merge(self, other: UsageCount) -> None:
        """Add ``other``'s reads (of the same key) to these."""
        self.reads_online += other.reads_online
        self.reads_offline += other.reads_offline
        self.keys_online += other.keys_online
        self.rows_offline += other.rows_offline
        self.first_us = min(self.first_us, other.first_us)
        self.last_us = max(self.last_us, other.last_us)


@dataclass(frozen=True)
class ConsumerUsage:
    """One consumer's reads of an object: a principal, or ``service:NAME``."""

    consumer: str
    reads_online: int
    reads_offline: int
    keys_online: int
    rows_offline: int
    last_read_at: datetime

    @property
    def reads(self) -> int:
        return self.reads_online + self.reads_offline

    def to_json(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            **{c: getattr(self, c) for c in _COUNTS},
            "last_read_at": _iso(self.last_read_at),
        }


@dataclass(frozen=True)
class FeatureUsage:
    """Reads of one feature of a view (all consumers)."""

    feature: str
    reads_online: int
    reads_offline: int
    last_read_at: datetime
    consumers: int

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "reads_online": self.reads_online,
            "reads_offline": self.reads_offline,
            "last_read_at": _iso(self.last_read_at),
            "consumers": self.consumers,
        }


@dataclass(frozen=True)
class UsageReport:
    """How an object was read: requests online and offline (keys and rows they asked for),
    first and last read (None: never, since usage was counted), its consumers (most reads
    first) and, for a view, its features (most reads first)."""

    kind: str
    name: str
    reads_online: int = 0
    reads_offline: int = 0
    keys_online: int = 0
    rows_offline: int = 0
    first_read_at: datetime | None = None
    last_read_at: datetime | None = None
    consumers: tuple[ConsumerUsage, ...] = ()
    features: tuple[FeatureUsage, ...] = ()

    @property
    def reads(self) -> int:
        return self.reads_online + self.reads_offline

    def top_consumers(self, n: int = 5) -> tuple[ConsumerUsage, ...]:
        return self.consumers[:n]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            **{c: getattr(self, c) for c in _COUNTS},
            "first_read_at": _iso(self.first_read_at),
            "last_read_at": _iso(self.last_read_at),
            "consumers": [c.to_json() for c in self.consumers],
            "features": [f.to_json() for f in self.features],
        }


class UsageRecords:
    """The usage rows of the registry's project."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._project_row = False

    def add(self, counts: Sequence[UsageCount]) -> None:
        """Add ``counts`` to the stored ones, all in one transaction."""
        if not counts:
            return
        reg = self.registry
        t = usage
        rows = [
            {
                "project": reg.project,
                "kind": c.kind,
                "name": c.name,
                "feature": c.feature,
                "consumer": c.consumer[:160],
                **{n: getattr(c, n) for n in _COUNTS},
                "first_read_at": _time(c.first_us),
                "last_read_at": _time(c.last_us),
            }
            for c in sorted(counts, key=lambda c: c.key)  # one lock order for every writer
        ]
        reg._create()
        with reg._write("record feature usage") as conn:
            insert = insert_for(conn)
            if not self._project_row:
                now = datetime.now(UTC)
                conn.execute(
                    insert(projects)
                    .values(project=reg.project, revision=0, created_at=now, updated_at=now)
                    .on_conflict_do_nothing(index_elements=["project"])
                )
            upsert = insert(t)
            new = upsert.excluded
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["project", "kind", "name", "feature", "consumer"],
                    set_={
                        **{n: t.c[n] + new[n] for n in _COUNTS},
                        "first_read_at": sa.case(
                            (new.first_read_at < t.c.first_read_at, new.first_read_at),
                            else_=t.c.first_read_at,
                        ),
                        "last_read_at": sa.case(
                            (new.last_read_at > t.c.last_read_at, new.last_read_at),
                            else_=t.c.last_read_at,
                        ),
                    },
                ),
                rows,
            )
        self._project_row = True

    def report(self, kind: str, name: str) -> UsageReport:
        """How ``kind name`` was read (an empty report when it never was)."""
        t = usage
        query = sa.select(t).where(
            t.c.project == self.registry.project, t.c.kind == kind, t.c.name == name
        )
        rows = self._rows(query, f"read the usage of {name!r}")
        whole = [r for r in rows if r.feature == ""]
        if not whole:
            return UsageReport(kind, name)
        consumers = sorted(
            (
                ConsumerUsage(
                    consumer=r.consumer,
                    reads_online=int(r.reads_online),
                    reads_offline=int(r.reads_offline),
                    keys_online=int(r.keys_online),
                    rows_offline=int(r.rows_offline),
                    last_read_at=_utc(r.last_read_at),
                )
                for r in whole
            ),
            key=lambda c: (-c.reads, c.consumer),
        )
        by_feature: dict[str, list[Any]] = {}
        for r in rows:
            if r.feature:
                by_feature.setdefault(r.feature, []).append(r)
        features = sorted(
            (
                FeatureUsage(
                    f,
                    sum(int(r.reads_online) for r in rs),
                    sum(int(r.reads_offline) for r in rs),
                    max(_utc(r.last_read_at) for r in rs),
                    len(rs),
                )
                for f, rs in by_feature.items()
            ),
            key=lambda f: (-(f.reads_online + f.reads_offline), f.feature),
        )
        return UsageReport(
            kind,
            name,
            reads_online=sum(c.reads_online for c in consumers),
            reads_offline=sum(c.reads_offline for c in consumers),
            keys_online=sum(c.keys_online for c in consumers),
            rows_offline=sum(c.rows_offline for c in consumers),
            first_read_at=min(_utc(r.first_read_at) for r in whole),
            last_read_at=max(c.last_read_at for c in consumers),
            consumers=tuple(consumers),
            features=tuple(features),
        )

    def last_reads(
        self, kinds: Iterable[str] = ("feature_view", "on_demand_feature_view")
    ) -> dict[tuple[str, str, str], datetime]:
        """``{(kind, view, feature): last read}`` of every feature ever read."""
        t = usage
        query = (
            sa.select(t.c.kind, t.c.name, t.c.feature, sa.func.max(t.c.last_read_at))
            .where(t.c.project == self.registry.project, t.c.feature != "")
            .where(t.c.kind.in_(list(kinds)))
            .group_by(t.c.kind, t.c.name, t.c.feature)
        )
        return {(k, n, f): _utc(at) for k, n, f, at in self._rows(query, "read feature usage")}

    def created(self) -> dict[tuple[str, str], datetime]:
        """``{(kind, name): created}`` of the live objects (since their last create)."""
        o = objects
        query = sa.select(o.c.kind, o.c.name, o.c.created_at).where(
            o.c.project == self.registry.project
        )
        return {(k, n): _utc(at) for k, n, at in self._rows(query, "read object times")}

    def forget(self) -> None:
        """Drop every usage row of the project."""
        reg = self.registry
        if reg._ready():
            with reg._write("forget feature usage") as conn:
                conn.execute(usage.delete().where(usage.c.project == reg.project))

    def _rows(self, query: Any, action: str) -> builtins.list[Any]:
        reg = self.registry
        if not reg._ready():
            return []
        with reg._read(action) as conn:
            return list(conn.execute(query).all())


def _time(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
