"""The serving log: what the feature server served, sampled, as Parquet, written in the
background (``serving_log:`` in ``parity.yaml``; ``parity skew`` replays it).

``ServingLog`` is a hook (``parity.hooks.Hooks``) observing ``after_online_read``. A request
costs one random draw when it is not sampled; a sampled one extends its request shape's
columns, one Python list per logged column (request times, entity columns, then per feature
its values, statuses and event µs), with the response's own lists: a few dozen C-level
``list.extend`` calls, no per-value Python. The lists hold ints, floats, strings and Nones,
which the garbage collector does not track, so however many rows wait, the buffer adds a few
dozen objects to its collections (which would pause requests too). Once ``CONVERT_ROWS``
rows wait, the request that brought them there turns each shape's lists into Arrow arrays
(one conversion per column, about 0.3 µs a row, while the values are still in the CPU's
caches). A background thread writes the converted tables to files every ``flush_seconds``,
or as soon as ``max_rows_per_file`` rows wait, converting what is left first; ``close()``
writes the rest. The buffer never blocks
a request: past ``max_buffered_rows`` the oldest requests are dropped and counted
(``dropped_rows``).

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
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
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
CONVERT_ROWS = 1_000
"""Buffered rows the request filling them converts to Arrow in place (a pause of a few
hundred µs). Not the writer thread: a thread woken that often takes the interpreter's lock
from the requests each time, and converting values gone cold in the caches costs them more
(measured on a 1-row server: about 8% of its throughput at 10 wakes a second)."""
_TS = pa.timestamp("us", tz="UTC")
_consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend  # runs an iterator out

# A buffered request shape: its hour, the id of its plan (kept by the group), entity names
# and output names.
_Key = tuple[int, int, tuple[str, ...], tuple[str, ...]]


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
        self._groups: dict[_Key, _Columns] = {}  # the buffered rows, by request shape
        # The buffered requests, oldest first (for drop-oldest): each one's group and rows.
        self._order: deque[_Columns] = deque()
        self._order_rows: deque[int] = deque()
        self._buffered = 0
        self._convert_rows = min(CONVERT_ROWS, max_rows_per_file)  # converted in place then
        self._lock = threading.Lock()
        self._convert_lock = threading.Lock()  # one conversion at a time (thread, flush())
        self._write_lock = threading.Lock()  # one write at a time
        self._pending: dict[tuple[Any, ...], list[pa.Table]] = {}  # converted, not written
        self._pending_rows = 0
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
        """Add a sampled answered read's rows to its shape's columns for the writer thread."""
        if self._random() >= self._rate or response is None or not entities:
            return
        rows = len(response)
        if rows == 0:
            return
        if now_us is None:  # a caller of the hook without the read's clock
            now_us = self._clock()
        values, statuses, stamps = response.values, response.statuses, response.event_micros
        outs = tuple(values)
        names = tuple(entities)
        columns = (  # built before the lock: a missing status or stamp buffers nothing
            *entities.values(),
            *values.values(),
            *map(statuses.__getitem__, outs),
            *map(stamps.__getitem__, outs),
        )
        key = (now_us // _HOUR_US, id(plan), names, outs)
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Columns(plan, names, outs)
            if rows == 1:
                group.times.append(now_us)
            else:
                group.times.extend([now_us] * rows)
            _consume(map(list.extend, group.columns, columns))  # in C, no bytecode per column
            self._order.append(group)
            self._order_rows.append(rows)
            self._buffered += rows
            while self._buffered > self.max_buffered_rows:  # drop-oldest, never block
                dropped = self._order_rows.popleft()
                self._order.popleft().drop(dropped)
                self._buffered -= dropped
                self.dropped_rows += dropped
            full = self._buffered >= self._convert_rows
        if full:
            self._convert()
            if self._pending_rows >= self.max_rows_per_file and not self._wake.is_set():
                self._wake.set()  # a file's worth: the writer writes it now

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
        # Sampled requests are turned into Arrow every CONVERT_ROWS rows (or flush_seconds),
        # files written every flush_seconds. The buffer's lists hold values the garbage
        # collector does not track, so waiting for rows costs the requests nothing; the
        # Arrow tables are not walked either.
        interval = self.flush_seconds
        last = time.monotonic()
        while not self._stopping:
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self._convert()
                if (
                    time.monotonic() - last >= self.flush_seconds
                    or self._pending_rows >= self.max_rows_per_file
                ):
                    last = time.monotonic()
                    self._write_pending()
            except Exception:  # never let the thread die: the next round tries again
                log.exception("serving log: the writer failed")

    def close(self) -> None:
        """Stop the writer thread and write everything buffered."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def flush(self) -> list[Path]:
        """Write what is buffered now; returns the files written. Never raises: rows that
        cannot be written are logged and counted in ``failed_rows``."""
        self._convert()
        return self._write_pending()

    def _convert(self) -> None:
        """The buffered requests as Arrow tables, one per request shape and hour."""
        with self._convert_lock:
            with self._lock:
                groups, self._groups = self._groups, {}
                self._order, self._order_rows = deque(), deque()
                self._buffered = 0
            for (hour, _, names, _), columns in groups.items():
                if columns.rows == 0:  # all its requests were dropped
                    continue
                try:
                    table = columns.table()
                except Exception:
                    log.exception("serving log: %d row(s) could not be converted", columns.rows)
                    self.failed_rows += columns.rows
                    continue
                shape = (hour, _shape(columns.plan), names)
                with self._lock:
                    self._pending.setdefault(shape, []).append(table)
                    self._pending_rows += columns.rows

    def _write_pending(self) -> list[Path]:
        with self._write_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                self._pending_rows = 0
            written = []
            for (hour, _, _), tables in sorted(pending.items(), key=lambda kv: kv[0][0]):
                rows = sum(t.num_rows for t in tables)
                try:
                    table = pa.concat_tables(tables, promote_options="permissive")
                    for start in range(0, table.num_rows, self.max_rows_per_file):
                        written.append(
                            self._write(hour, table.slice(start, self.max_rows_per_file))
                        )
                except Exception:
                    log.exception("serving log: %d row(s) could not be written", rows)
                    self.failed_rows += rows
            return written

    def _write(self, hour: int, table: pa.Table) -> Path:
        times = pc.cast(table.column(REQUEST_TIME), pa.int64())
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


def _shape(plan: FeaturePlan) -> tuple[Any, ...]:
    """What makes two plans' tables one schema (plans of two registry revisions may differ
    in types: those go to separate files)."""
    return (
        plan.feature_refs,
        tuple(o.name for o in plan.outputs),
        tuple(str(o.dtype) for o in plan.outputs),
    )


class _Columns:
    """One request shape's buffered rows (one plan, entity names and output names, one hour)
    as one Python list per column, extended per request, then one Arrow array per column.

    ``columns``: the entity columns, then each given output's values, statuses and event µs
    (in the order the response gave them). Rows dropped from the front (the buffer was full)
    are counted in ``head`` and cut off lazily."""

    __slots__ = ("columns", "head", "names", "outputs", "plan", "refs", "times", "width")

    def __init__(self, plan: FeaturePlan, names: tuple[str, ...], given: tuple[str, ...]):
        self.plan = plan
        self.names = names
        positions = {o: i for i, o in enumerate(given)}
        at = len(names)
        # plan.outputs' (name, position of its values column, type); its statuses and event
        # µs are ``width`` and ``2 * width`` columns further
        sealed = sealed_outputs(plan)  # encrypted at rest: never written here in plaintext
        self.outputs = [
            (o.name, at + positions[o.name], o.dtype) for o in plan.outputs if o.name not in sealed
        ]
        self.refs = [f"{o.view}:{o.feature}" for o in plan.outputs if o.name not in sealed]
        self.width = len(given)
        self.times: list[int] = []
        self.columns: list[list[Any]] = [[] for _ in range(at + 3 * self.width)]
        self.head = 0

    @property
    def rows(self) -> int:
        return len(self.times) - self.head

    def drop(self, rows: int) -> None:
        """Drop the oldest ``rows`` (one request's); the lists are cut once half is dropped."""
        self.head += rows
        if self.head * 2 >= len(self.times):
            head, self.head = self.head, 0
            del self.times[:head]
            for acc in self.columns:
                del acc[:head]

    def table(self) -> pa.Table:
        head = self.head

        def kept(values: list[Any]) -> list[Any]:
            return values[head:] if head else values

        arrays: dict[str, pa.Array] = {
            REQUEST_TIME: pa.array(kept(self.times), pa.int64()).cast(_TS)
        }
        for k, col in zip(self.names, self.columns, strict=False):
            arrays[k] = _column(kept(col))
        width = self.width
        for o, i, dtype in self.outputs:
            arrays[o] = pa.array(kept(self.columns[i]), dtype.to_arrow())
            arrays[f"{o}__status"] = pa.array(kept(self.columns[i + width]), pa.string())
            stamps = kept(self.columns[i + 2 * width])
            arrays[f"{o}__event_timestamp"] = pa.array(stamps, pa.int64()).cast(_TS)
        plan = self.plan
        full = bool(plan.outputs) and plan.outputs[0].name != plan.outputs[0].feature
        metadata = {
            FEATURES_KEY: json.dumps(self.refs).encode(),
            FULL_NAMES_KEY: b"true" if full else b"false",
        }
        return pa.table(arrays).replace_schema_metadata(metadata)


def sealed_outputs(plan: FeaturePlan) -> frozenset[str]:
    """The outputs the log leaves out: ``encrypt=True`` features, and on-demand outputs
    computed from a view that has any (their values may carry the plaintext)."""
    views = {r.view.name: r.view for r in plan.fetch}
    encrypted = {(name, f.name) for name, view in views.items() for f in view.features if f.encrypt}
    if not encrypted:
        return frozenset()
    touched = {view for view, _ in encrypted}
    tainted = {
        step.view.name for step in plan.steps if any(up in touched for _, up, _ in step.inputs)
    }
    return frozenset(
        o.name
        for o in plan.outputs
        if (o.view, o.feature) in encrypted or (o.on_demand and o.view in tainted)
    )


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
