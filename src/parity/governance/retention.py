"""Retention: rows Parity keeps longer than their ``retention`` are deleted
(``parity retention run``).

A view's retention is its own ``retention``, else its source's (a push source without one:
its batch source's), else none (kept forever).
What is deleted, with ``now`` the store's clock:

- **offline log** (one folder per push source): rows whose event time (the source's
  ``timestamp_field``) is before ``now - retention``. A source feeding several views is
  held to the *shortest* retention among them (a row is one event: kept for one view, it
  would keep the other view's values too); a source with a retention of its own and no view
  is held to its own. The rows are counted under the view whose retention decided.
- **serving log**: rows whose request time is before ``now - retention``, with the
  shortest retention of the views a file served, counted the same way; a file left empty
  is removed.

Batch source files are not Parity's: retention leaves them (their owners' policies apply);
the online store keeps its own expiry (``ttl``). ``dry_run=True`` counts and changes nothing.
Runs are recorded in the audit log (counts only); with auth on they need ``admin`` on every
view with a retention.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from parity.definitions import DataSource, FeatureView, PushSource
from parity.errors import GovernanceError
from parity.governance.stored_places import serving_log_files
from parity.governance.subjects import require_admin
from parity.offline import log
from parity.registry.catalog import Catalog

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["RetentionCount", "RetentionReport", "effective_retention", "run"]


@dataclass(frozen=True)
class RetentionCount:
    """Rows deleted (or, in a dry run, that would be) in one place because of one view's
    (or source's) retention."""

    view: str
    """The view whose retention decided (a source's name when no view reads the source)."""
    place: str
    """``offline_log`` or ``serving_log``."""
    target: str
    """The push source (offline log) or the serving log's folder."""
    retention: timedelta
    cutoff: datetime
    rows: int
    files: int


@dataclass(frozen=True)
class RetentionReport:
    at: datetime
    dry_run: bool
    counts: tuple[RetentionCount, ...]

    def rows(self, place: str | None = None, view: str | None = None) -> int:
        return sum(
            c.rows
            for c in self.counts
            if (place is None or c.place == place) and (view is None or c.view == view)
        )


def effective_retention(catalog: Catalog, view: FeatureView) -> timedelta | None:
    """The view's retention, else its source's (a push source's: its own, else its batch
    source's); None: kept forever."""
    if view.retention is not None:
        return view.retention
    return source_retention(catalog.source_of(view))


def source_retention(source: DataSource) -> timedelta | None:
    """A source's retention; a push source without one has its batch source's."""
    if source.retention is None and isinstance(source, PushSource):
        batch = source.batch_source
        return None if isinstance(batch, str) else batch.retention
    return source.retention


def run(store: FeatureStore, *, dry_run: bool = False) -> RetentionReport:
    """Delete offline-log and serving-log rows older than their retention; see the module
    docstring."""
    catalog = store.catalog(fresh=True)
    require_admin(store, [v for v in catalog.views() if effective_retention(catalog, v)])
    now_us = store.clock.now_us()
    now = datetime.fromtimestamp(now_us / 1e6, UTC)
    counts: dict[tuple[str, str, str], list[int]] = {}
    rules: dict[tuple[str, str, str], tuple[timedelta, datetime]] = {}

    def add(name: str, place: str, target: str, keep: timedelta, rows: int) -> None:
        key = (name, place, target)
        got = counts.setdefault(key, [0, 0])
        got[0] += rows
        got[1] += 1 if rows else 0
        rules[key] = (keep, now - keep)

    views = catalog.views()
    for source in (s for s in _sources(catalog) if isinstance(s, PushSource)):
        rule = _strictest(catalog, [v for v in views if v.source_name == source.name])
        if rule is None and (own := source_retention(source)) is not None:
            rule = (own, source.name)
        if rule is None:
            continue
        keep, name = rule
        folder = log.log_dir(store.config.resolve(store.config.offline_log), source.name)
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        add(name, "offline_log", source.name, keep, 0)
        for path in files:
            old = _older(pq.read_table(path), source.timestamp_field, now - keep)
            if old:
                add(name, "offline_log", source.name, keep, old)
                if not dry_run:
                    log.rewrite(
                        path, partial(_keep, column=source.timestamp_field, cutoff=now - keep)
                    )

    by_name = {v.name: v for v in views}
    root = _serving_root(store)
    for path in serving_log_files(store):
        rule = _strictest(catalog, [by_name[n] for n in _served_views(path) if n in by_name])
        if rule is None:
            continue
        keep, name = rule
        cutoff = now - keep
        table = pq.read_table(path, partitioning=None)
        old = _older(table, "__request_time", cutoff)
        add(name, "serving_log", root, keep, old)
        if old and not dry_run:
            with log.rewriting(path.parent):  # read again under the lock: the newest rows
                table = pq.read_table(path, partitioning=None)
                kept = _keep(table, "__request_time", cutoff)
                if kept.num_rows:
                    log.write_atomically(path, kept)
                else:
                    path.unlink()

    report = RetentionReport(
        now,
        dry_run,
        tuple(
            RetentionCount(name, place, target, *rules[(name, place, target)], rows, files)
            for (name, place, target), (rows, files) in sorted(counts.items())
        ),
    )
    store.governance.audit.record(
        action="retention",
        resources=sorted({f"feature_view:{c.view}" for c in report.counts}),
        counts={
            "offline_log_rows": report.rows("offline_log"),
            "serving_log_rows": report.rows("serving_log"),
        },
        outcome="ok",
        detail="dry run" if dry_run else "deleted",
    )
    return report


def _sources(catalog: Catalog) -> list[object]:
    return [catalog.get("source", n) for n in catalog.names("source")]


def _strictest(catalog: Catalog, views: list[FeatureView]) -> tuple[timedelta, str] | None:
    """The shortest retention among ``views`` and the view it is (the first by name on a
    tie); None when none has one."""
    rules = [(keep, v.name) for v in views if (keep := effective_retention(catalog, v))]
    return min(rules) if rules else None


def _served_views(path: Path) -> set[str]:
    from parity.monitoring.serving_log import FEATURES_KEY

    meta = pq.read_schema(path).metadata or {}
    if FEATURES_KEY not in meta:
        return set()
    return {ref.split(":", 1)[0] for ref in json.loads(meta[FEATURES_KEY])}


def _serving_root(store: FeatureStore) -> str:
    from parity.governance.stored_places import serving_log_root

    root = serving_log_root(store)
    try:
        return str(root.relative_to(store.repo_path))
    except ValueError:
        return str(root)


def _before(table: pa.Table, column: str, cutoff: datetime) -> pa.ChunkedArray:
    times = table.column(column)
    if not pa.types.is_timestamp(times.type):
        raise GovernanceError(f"retention: column {column!r} holds {times.type}, not times")
    if times.type.tz is None:  # naive times are UTC, as everywhere in Parity
        cutoff = cutoff.replace(tzinfo=None)
    return pc.fill_null(pc.less(times, pa.scalar(cutoff, times.type)), False)


def _older(table: pa.Table, column: str, cutoff: datetime) -> int:
    if column not in table.column_names:
        return 0
    return int(pc.sum(_before(table, column, cutoff)).as_py() or 0)


def _keep(table: pa.Table, column: str, cutoff: datetime) -> pa.Table:
    if column not in table.column_names:
        return table
    return table.filter(pc.invert(_before(table, column, cutoff)))
