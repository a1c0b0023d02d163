"""The serving log: what the feature server served, sampled, as Parquet, written in the
background (``serving_log:`` in ``parity.yaml``; ``parity skew`` replays it).

``ServingLog`` is a hook (``parity.hooks.Hooks``) observing ``after_online_read``. A request
costs one random draw when it is not sampled; a sampled one is kept by reference (its
entity columns and the ``OnlineResponse``: nothing is copied or converted on the request's
path) in a bounded in-memory buffer. A background thread turns the buffer into Arrow and
writes it every ``flush_seconds``, or as soon as ``max_rows_per_file`` rows wait; ``close()``
writes what is left. The buffer never blocks a request: past ``max_buffered_rows`` the oldest
requests are dropped and counted (``dropped_rows``).

Layout under the log folder (Hive-style partitions, so DuckDB and pyarrow datasets read them
too; a file's name gives the request times it holds, so a reader selects files by time
without opening them)::

    date=2024-01-03/hour=22/<first µs>-<last µs>-<pid>-<n>.parquet

Each file holds one request shape (the same features, names and entity columns): column
``__request_time`` (the store clock of the read, ``timestamp[us, UTC]``), the entity
columns, then per feature ``f`` (the name the caller got) ``f``, ``f__status`` and
``f__event_timestamp``. Its schema metadata has ``parity.features`` (JSON list of
``view:feature`` references) and ``parity.full_feature_names``. Files are written under a
dot-name and renamed, so a reader never sees half a file.

A large read the server answers in pieces is logged piece by piece, each sampled on its own.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from parity.hooks import Hooks

if TYPE_CHECKING:
    from parity.config import ServingLogConfig
    from parity.online.reader import OnlineResponse
    from parity.query.plan import FeaturePlan

__all__ = [
    "DEFAULT_PATH",
    "FEATURES_KEY",
    "FULL_NAMES_KEY",
    "REQUEST_TIME",
    "ServingLog",
    "file_bounds",
    "log_folder",
]

log = logging.getLogger("parity.monitoring.serving_log")

DEFAULT_PATH = "data/serving_log"
REQUEST_TIME = "__request_time"
FEATURES_KEY = b"parity.features"
FULL_NAMES_KEY = b"parity.full_feature_names"
_HOUR_US = 3_600_000_000
_TS = pa.timestamp("us", tz="UTC")

# One sampled request: (request µs, plan, entity columns, response, rows).
_Entry = tuple[int, "FeaturePlan", dict[str, list[Any]], "OnlineResponse", int]


class ServingLog(Hooks):
    """Logs a sample of online reads to Parquet under ``root``; see the module docstring.

    ``start()`` starts the writer thread (without it, ``flush()`` writes on demand);
    ``close()`` stops it and writes what is buffered. ``paused``: log nothing until
    ``resume()``. ``random`` and ``clock`` (µs) are seams for tests.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        sample_rate: float = 0.01,
        flush_seconds: float = 5.0,
        max_rows_per_file: int = 100_000,
        max_buffered_rows: int | None = None,
        random: Callable[[], float] = random.random,
        clock: Callable[[], int] | None = None,
        paused: bool = False,
    ):
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"serving_log.sample_rate must be in [0, 1], not {sample_rate}")
        self.root = Path(root)
        self.sample_rate = sample_rate
        self._rate = 0.0 if paused else sample_rate  # what the draw is checked against
        self.flush_seconds = flush_seconds
        self.max_rows_per_file = max_rows_per_file
        self.max_buffered_rows = max_buffered_rows or max(4 * max_rows_per_file, 10_000)
        self._random = random
        self._clock = clock or (lambda: time.time_ns() // 1000)
        self._buffer: deque[_Entry] = deque()
        self._buffered = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one flush at a time (thread and close())
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._serial = count(1)
        self.dropped_rows = 0
        """Rows dropped because the buffer was full (the writer fell behind)."""
        self.failed_rows = 0
        """Rows that could not be written (logged with the reason)."""
        self.written_rows = 0
        self.files_written = 0

    @classmethod
    def from_config(
        cls, config: ServingLogConfig, repo_path: Path, *, paused: bool = False
    ) -> ServingLog:
        """The log ``parity.yaml``'s ``serving_log`` describes (its path relative to the repo)."""
        return cls(
            log_folder(config, repo_path),
            sample_rate=config.sample_rate,
            flush_seconds=config.flush_seconds,
            max_rows_per_file=config.max_rows_per_file,
            paused=paused,
        )

    # -- the request's side: a draw, then an append ---------------------------------------
    def after_online_read(
        self,
        *,
        plan: FeaturePlan,
        response: OnlineResponse | None,
        entities: dict[str, list[Any]] | None = None,
        now_us: int | None = None,
        **_: Any,
    ) -> None:
        """Keep a sampled answered read (by reference) for the writer thread."""
        if self._random() >= self._rate or response is None or not entities:
            return
        rows = len(response)
        if rows == 0:
            return
        if now_us is None:  # a caller of the hook without the read's clock
            now_us = self._clock()
        with self._lock:
            self._buffer.append((now_us, plan, entities, response, rows))
            self._buffered += rows
            while self._buffered > self.max_buffered_rows:  # drop-oldest, never block
                dropped = self._buffer.popleft()
                self._buffered -= dropped[4]
                self.dropped_rows += dropped[4]
            full = self._buffered >= self.max_rows_per_file
        if full:
            self._wake.set()

    def resume(self) -> None:
        """Start sampling (a log made ``paused`` logs nothing until then: the server's
        warm-up reads are not what it served)."""
        self._rate = self.sample_rate

    @property
    def buffered_rows(self) -> int:
        return self._buffered

    # -- the writer's side ----------------------------------------------------------------
    def start(self) -> ServingLog:
        """Start the writer thread (once); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="parity-serving-log", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the writer thread and write everything buffered."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def flush(self) -> list[Path]:
        """Write what is buffered now; returns the files written. Never raises: a file that
        cannot be written is logged and its rows counted in ``failed_rows``."""
        with self._write_lock:
            with self._lock:
                entries, self._buffer = self._buffer, deque()
                self._buffered = 0
            if not entries:
                return []
            written = []
            for key, group in _grouped(entries).items():
                rows = sum(e[4] for e in group)
                try:
                    table = _table(group)
                    for start in range(0, table.num_rows, self.max_rows_per_file):
                        written.append(
                            self._write(key[0], table.slice(start, self.max_rows_per_file))
                        )
                except Exception:
                    log.exception("serving log: %d row(s) could not be written", rows)
                    self.failed_rows += rows
            return written

    def _write(self, hour: int, table: pa.Table) -> Path:
        times = table.column(REQUEST_TIME).cast(pa.int64())
        import pyarrow.compute as pc

        first, last = pc.min(times).as_py(), pc.max(times).as_py()
        at = datetime.fromtimestamp(hour * 3600, UTC)
        folder = self.root / f"date={at:%Y-%m-%d}" / f"hour={at:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{first}-{last}-{os.getpid()}-{next(self._serial)}.parquet"
        temporary = folder / f".{name}.tmp"
        pq.write_table(table, temporary)
        final = folder / name
        os.replace(temporary, final)
        self.written_rows += table.num_rows
        self.files_written += 1
        return final


def _grouped(entries: deque[_Entry]) -> dict[tuple[Any, ...], list[_Entry]]:
    """Entries by (hour, plan, entity columns): each group becomes files of one schema."""
    groups: dict[tuple[Any, ...], list[_Entry]] = {}
    for entry in entries:
        key = (entry[0] // _HOUR_US, id(entry[1]), tuple(entry[2]))
        groups.setdefault(key, []).append(entry)
    return groups


def _table(group: list[_Entry]) -> pa.Table:
    """One group's requests as one table: lists are extended per request (no per-value
    Python), then each column becomes one Arrow array."""
    plan = group[0][1]
    names = list(group[0][2])
    outputs = [(o.name, o.dtype) for o in plan.outputs]
    times: list[int] = []
    keys: dict[str, list[Any]] = {k: [] for k in names}
    values: dict[str, list[Any]] = {o: [] for o, _ in outputs}
    statuses: dict[str, list[str]] = {o: [] for o, _ in outputs}
    stamps: dict[str, list[int | None]] = {o: [] for o, _ in outputs}
    for now_us, _, cols, response, rows in group:
        times.extend([now_us] * rows)
        for k in names:
            keys[k].extend(cols[k])
        got, status, event = response.values, response.statuses, response.event_micros
        for o, _ in outputs:
            values[o].extend(got[o])
            statuses[o].extend(status[o])
            stamps[o].extend(event[o])
    arrays: dict[str, pa.Array] = {REQUEST_TIME: pa.array(times, pa.int64()).cast(_TS)}
    for k in names:
        arrays[k] = _column(keys[k])
    for o, dtype in outputs:
        arrays[o] = pa.array(values[o], dtype.to_arrow())
        arrays[f"{o}__status"] = pa.array(statuses[o], pa.string())
        arrays[f"{o}__event_timestamp"] = pa.array(stamps[o], pa.int64()).cast(_TS)
    full = bool(plan.outputs) and plan.outputs[0].name != plan.outputs[0].feature
    metadata = {
        FEATURES_KEY: json.dumps(list(plan.feature_refs)).encode(),
        FULL_NAMES_KEY: b"true" if full else b"false",
    }
    return pa.table(arrays).replace_schema_metadata(metadata)


def _column(values: list[Any]) -> pa.Array:
    """An entity or request-data column; values of mixed types are kept as JSON text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else json.dumps(v, default=str) for v in values])


def log_folder(config: ServingLogConfig | None, repo_path: Path) -> Path:
    """The log's folder: ``serving_log.path`` (default ``data/serving_log``), relative to
    the repo unless absolute."""
    root = Path(config.path if config is not None else DEFAULT_PATH)
    return root if root.is_absolute() else repo_path / root


def file_bounds(path: Path) -> tuple[int, int] | None:
    """(first, last) request µs of a log file, from its name; None for another file."""
    if path.name.startswith(".") or path.suffix != ".parquet":
        return None
    parts = path.stem.split("-")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None
