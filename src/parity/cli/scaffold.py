"""``parity init``: a working feature repo, from the template in ``parity/templates``.

The repo holds ``parity.yaml``, definitions in ``features.py`` and ``features.yaml``, a README
and generated sample data, so ``parity apply``, ``parity historical`` and (the data ends at
the hour ``parity init`` ran) ``parity materialize-incremental now`` followed by an online read
work at once. The data is seeded: the same seed and the same ``now`` give the same files.
Timestamps are UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from parity.definitions.base import NAME_RE
from parity.errors import ConfigError, ParityError

TEMPLATE = "driver_repo"
DRIVERS = (1001, 1002, 1003, 1004, 1005)
HOURS = 72
"""How many hourly rows per driver the sample data holds: the last 72 hours up to ``now``."""
UNKNOWN_DRIVER = 9999
"""A driver id the sample entity frame holds but the data does not: its row gets no features."""

STATS_FILE = "data/driver_stats.parquet"
ENTITIES_FILE = "data/driver_entities.parquet"
_CITIES = ("Lisbon", "Porto", "Braga", "Faro", "Coimbra")
_RENAMED = {"gitignore": ".gitignore"}  # dotfiles are not shipped as package data


@dataclass(frozen=True)
class Scaffold:
    """A repo ``create_repo`` wrote: its folder, project name and files (relative, sorted),
    and the event times of the sample data's first and last rows (aware UTC, on the hour)."""

    path: Path
    project: str
    files: tuple[str, ...]
    data_start: datetime
    data_end: datetime


def data_window(now: datetime | None = None, hours: int = HOURS) -> tuple[datetime, datetime]:
    """The first and last hourly event times of sample data made at ``now`` (default: the
    current time): ``now`` floored to the hour is the last, ``hours - 1`` hours before it the
    first. A naive ``now`` is UTC."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=hours - 1), end


def project_name(name: str) -> str:
    """The project name for a folder name: dashes become underscores; else it must be valid."""
    project = name.replace("-", "_")
    if not NAME_RE.match(project):
        raise ConfigError(
            f"invalid project name {name!r}: use letters, digits, underscores (or dashes), "
            "starting with a letter"
        )
    return project


def create_repo(
    name: str, path: str | Path | None = None, *, seed: int = 7, now: datetime | None = None
) -> Scaffold:
    """Write a new feature repo for project ``name`` into ``path`` (default ``./name``).

    The sample data covers the ``HOURS`` hours up to ``now`` (default: the current time,
    floored to the hour; naive = UTC). Refuses (``ParityError``) when ``path`` exists and is
    not an empty folder; nothing is written then.
    """
    start, end = data_window(now)
    project = project_name(name)
    dest = Path(path if path is not None else name).expanduser().resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ParityError(
            f"{dest} already exists and is not an empty folder; "
            "choose another NAME or --dir, or remove it first"
        )
    dest.mkdir(parents=True, exist_ok=True)
    fields = {
        "project": project,
        "data_start": f"{start:%Y-%m-%d %H:%M}",
        "data_end": f"{end:%Y-%m-%d %H:%M}",
    }
    written = _copy_template(files("parity") / "templates" / TEMPLATE, dest, fields)
    pq.write_table(driver_stats(start, seed=seed), _prepare(dest / STATS_FILE))
    pq.write_table(sample_entities(start, seed=seed), _prepare(dest / ENTITIES_FILE))
    written += [STATS_FILE, ENTITIES_FILE]
    return Scaffold(dest, project, tuple(sorted(written)), start, end)


def driver_stats(
    start: datetime, *, seed: int = 7, drivers: tuple[int, ...] = DRIVERS, hours: int = HOURS
) -> pa.Table:
    """One row per driver and hour from ``start`` (aware), values drawn from ``seed``.

    Columns: driver_id, event_timestamp, created (a few minutes later), conv_rate, acc_rate,
    avg_daily_trips, driver_rating, lifetime_trips, city.
    """
    rng = np.random.default_rng(seed)
    n = len(drivers) * hours
    ids = np.repeat(np.array(drivers, dtype=np.int64), hours)
    hour = np.tile(np.arange(hours), len(drivers))
    event_ts = [start + timedelta(hours=int(h)) for h in hour]
    delay = rng.integers(0, 10, n)
    trips = rng.integers(0, 4, n)
    lifetime = np.concatenate(
        [np.cumsum(trips[i * hours : (i + 1) * hours]) + 100 * (i + 1) for i in range(len(drivers))]
    )
    city = [_CITIES[(d - drivers[0]) % len(_CITIES)] for d in ids]
    return pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array(event_ts, pa.timestamp("us", tz="UTC")),
            "created": pa.array(
                [t + timedelta(minutes=int(m)) for t, m in zip(event_ts, delay, strict=True)],
                pa.timestamp("us", tz="UTC"),
            ),
            "conv_rate": pa.array(rng.uniform(0, 1, n).round(4), pa.float64()),
            "acc_rate": pa.array(rng.uniform(0.5, 1, n).round(4), pa.float64()),
            "avg_daily_trips": pa.array(rng.integers(5, 40, n), pa.int64()),
            "driver_rating": pa.array(rng.uniform(3.5, 5, n).round(2), pa.float64()),
            "lifetime_trips": pa.array(lifetime, pa.int64()),
            "city": pa.array(city, pa.string()),
        }
    )


def sample_entities(start: datetime, *, seed: int = 7, rows: int = 10) -> pa.Table:
    """An entity frame for data starting at ``start``: ``rows`` known drivers at times inside
    the data, then two misses.

    The misses are ``UNKNOWN_DRIVER`` inside the data's time range and a known driver a day
    before the data starts; both get no feature values. Columns: driver_id, event_timestamp,
    trip_completed (a label).
    """
    rng = np.random.default_rng(seed + 1)
    ids = [int(d) for d in rng.choice(DRIVERS, rows)]
    minutes = rng.integers(60, HOURS * 60, rows)
    times = [start + timedelta(minutes=int(m)) for m in minutes]
    ids += [UNKNOWN_DRIVER, DRIVERS[0]]
    times += [start + timedelta(hours=12), start - timedelta(days=1)]
    return pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "trip_completed": pa.array(rng.integers(0, 2, len(ids)).astype(bool)),
        }
    )


def _copy_template(
    src: Traversable, dest: Path, fields: dict[str, str], prefix: str = ""
) -> list[str]:
    """Copy the template's files, filling ``{{name}}`` placeholders from ``fields``."""
    written = []
    for item in sorted(src.iterdir(), key=lambda t: t.name):
        if item.name == "__pycache__":
            continue
        name = _RENAMED.get(item.name, item.name)
        if item.is_dir():
            (dest / name).mkdir(exist_ok=True)
            written += _copy_template(item, dest / name, fields, f"{prefix}{name}/")
            continue
        text = re.sub(
            r"\{\{\s*(\w+)\s*\}\}",
            lambda m: fields.get(m.group(1), m.group(0)),
            item.read_text(encoding="utf-8"),
        )
        (dest / name).write_text(text, encoding="utf-8")
        written.append(prefix + name)
    return written


def _prepare(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


__all__ = [
    "DRIVERS",
    "ENTITIES_FILE",
    "HOURS",
    "STATS_FILE",
    "UNKNOWN_DRIVER",
    "Scaffold",
    "create_repo",
    "data_window",
    "driver_stats",
    "project_name",
    "sample_entities",
]
