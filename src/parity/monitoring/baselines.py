"""Named drift baselines: a view's input values in a time range, kept to compare against.

``parity drift VIEW --baseline NAME`` (or ``store.drift(view, baseline="NAME")``) reads one.
Until training snapshots exist, a baseline is saved from source rows::

    save_baseline(store, "launch", "driver_hourly_stats", "2024-01-01", "2024-01-31")

It is one Parquet file, ``data/monitoring/baselines/NAME.parquet`` under the repo folder:
the view's input columns (not the join keys or times), with a manifest in the file's schema
metadata (key ``parity.baseline``: name, view, its registry version, start, end, rows,
features, created_at). One file keeps the values and what they are together and is written
atomically (a temporary file renamed over); the registry is not involved, so a baseline is
copied or removed like any data file. The same name is not overwritten unless
``replace=True``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from parity.errors import MonitoringError
from parity.monitoring.sources import fields_of, read_rows, time_range, view_version

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = [
    "BASELINE_DIR",
    "Baseline",
    "baseline_path",
    "list_baselines",
    "load_baseline",
    "save_baseline",
]

BASELINE_DIR = "data/monitoring/baselines"
"""Where baselines are kept, relative to the repo folder."""
META_KEY = b"parity.baseline"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Baseline:
    """What a saved baseline holds (its manifest)."""

    name: str
    view: str
    view_version: int | None
    start: datetime | None
    end: datetime | None
    rows: int
    features: tuple[str, ...]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "view": self.view,
            "view_version": self.view_version,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "rows": self.rows,
            "features": list(self.features),
            "created_at": _iso(self.created_at),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Baseline:
        return cls(
            name=data["name"],
            view=data["view"],
            view_version=data.get("view_version"),
            start=_time(data.get("start")),
            end=_time(data.get("end")),
            rows=int(data["rows"]),
            features=tuple(data["features"]),
            created_at=_time(data["created_at"]) or datetime.now(UTC),
        )


def baseline_path(store: FeatureStore, name: str) -> Path:
    """The file of baseline ``name``; MonitoringError when the name is not a plain name."""
    if ".." in name or not _NAME.match(name):
        raise MonitoringError(
            f"baseline name {name!r}: use letters, digits, '_', '-' and '.' (no '..'), "
            "starting with a letter or digit"
        )
    return store.config.resolve(BASELINE_DIR) / f"{name}.parquet"


def save_baseline(
    store: FeatureStore,
    name: str,
    view: str,
    start: datetime | str | None,
    end: datetime | str | None,
    *,
    features: Sequence[str] | None = None,
    replace: bool = False,
) -> Baseline:
    """Keep the view's input values with event time in [start, end] as baseline ``name``.

    MonitoringError when the name is taken (and not ``replace``), the range is empty or has
    no rows; nothing is written then."""
    path = baseline_path(store, name)
    definition = store.get_feature_view(view)
    fields = fields_of(definition, features)
    lo, hi = time_range(start, end, now=_now(store))
    if path.exists() and not replace:
        raise MonitoringError(
            f"baseline {name!r} exists ({path}); pass replace=True (--replace) to overwrite it"
        )
    rows = read_rows(store, definition, fields, lo, hi)
    if rows.num_rows == 0:
        raise MonitoringError(
            f"baseline {name!r}: feature view {view!r} has no rows in {_span(lo, hi)}"
        )
    table = rows.select([f.name for f in fields])
    manifest = Baseline(
        name=name,
        view=view,
        view_version=view_version(store, view),
        start=lo,
        end=hi,
        rows=table.num_rows,
        features=tuple(f.name for f in fields),
        created_at=datetime.now(UTC),
    )
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = json.dumps(manifest.to_json()).encode()
    table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def load_baseline(store: FeatureStore, name: str) -> tuple[Baseline, pa.Table]:
    """The manifest and values of baseline ``name``; MonitoringError naming it when there is
    none (listing the ones there are)."""
    path = baseline_path(store, name)
    if not path.exists():
        known = [b.name for b in list_baselines(store)]
        raise MonitoringError(
            f"no baseline named {name!r} (saved ones: {', '.join(known) or 'none'}); save "
            "one with `parity drift VIEW --save-baseline NAME --start ... --end ...`"
        )
    table = pq.read_table(path)
    return _manifest(path, table.schema), table.replace_schema_metadata(None)


def list_baselines(store: FeatureStore) -> list[Baseline]:
    """The saved baselines, by name."""
    folder = store.config.resolve(BASELINE_DIR)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.parquet")):
        try:
            out.append(_manifest(path, pq.read_schema(path)))
        except MonitoringError:
            continue  # a Parquet file that is not a baseline: not listed
    return out


def _manifest(path: Path, schema: pa.Schema) -> Baseline:
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise MonitoringError(f"{path} is not a parity baseline (no {META_KEY.decode()} metadata)")
    return Baseline.from_json(json.loads(raw))


def _now(store: FeatureStore) -> Any:
    from parity.online.encoding import from_micros

    return lambda: from_micros(store.clock.now_us())


def _span(lo: datetime | None, hi: datetime | None) -> str:
    return f"[{_iso(lo) or 'the beginning'}, {_iso(hi) or 'the end'}]"


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
