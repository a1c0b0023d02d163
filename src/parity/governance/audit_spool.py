"""The audit spool: a record is made durable by one line appended to a file of the
process's own, and moved into the registry's hash chain (``parity_audit``) later, in bulk.

The feature server spools (``AuditLog.spool``); the Python API and the CLI commit each
record before they go on (``audit_writer``). Spooling takes the database off a request's
path: the request appends its line (``write``, no fsync: the durability of SQLite's WAL
with ``synchronous=NORMAL``, so a process that dies loses nothing it answered, a machine
that loses power may lose the last moments) and answers; when the append fails the
request fails (``AuditError``, over HTTP 503 ``audit_unavailable``) and nothing of the
record stays in the file.

Files. ``<repo>/data/audit-spool/<created µs>-<pid>-<n>-<random>.log``, each held with an
exclusive ``flock`` by the process writing it for as long as it lives, so a file nobody
holds belongs to a process that ended. Lines::

    parity-audit-spool 1 {"project": ..., "registry": ...}     the header
    S<n> ["principal","action",["kind:name",...],"outcome","detail","token id"|null]
    <n> <time in µs since the epoch> {"counts":1}                 a record of shape n
    P <seq> <hash>                                                 see below

Shipping. A thread (``parity-audit-spool``) ships every ``interval_s`` or once
``ship_records`` records are waiting: it seals the current file (the next record starts a
new one), appends the sealed files' records, oldest first, to the chain in one transaction
per file (``AuditStore.append_spooled``: numbered and hashed after the head, as every
record is) and deletes each file once committed. A registry that cannot be written leaves
the files where they are; they are retried (a warning is logged) and requests go on.
``ship()`` ships at once (a read of the audit log does, so a process reads its own
records), ``close()`` ships and stops.

Exactly once. Before a file's transaction commits, its ``P`` line names the last record's
``seq`` and ``hash`` in the chain. Whoever ships the file again (its owner retrying, or
``ship_orphans`` after a crash) first looks, inside its own transaction, for a record at
one of those numbers with that hash: if there is one, the file was committed and is only
deleted. A ``flock`` on each file keeps two processes from shipping it at once.

Orphans: ``ship_orphans(store)`` ships the files of processes that ended (their lock is
free), oldest first; the server does at startup and every read of the audit log does.
Files of another project or registry (the repo's configuration changed since) are left
alone, with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.errors import AuditError
from parity.governance.audit_store import AuditStore, Spooled

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["MAGIC", "Shape", "Spool", "parse", "shape_of", "ship_orphans", "spool_folder"]

log = logging.getLogger("parity.audit")

MAGIC = "parity-audit-spool 1 "
SHIP_INTERVAL_S = 0.2
"""How often the thread ships (the most a live process's records lag behind in the chain)."""
SHIP_RECORDS = 4000
"""Ship early once this many records wait."""
PROBE_INTERVAL_S = 0.5
"""After a failed append: how often the thread tries the file again."""
WARN_EVERY_S = 30.0

Key = tuple[str, str, tuple[str, ...], str, str, str | None]
"""A record's shape: principal, action, resources, outcome, detail, token id."""


def spool_folder(store: FeatureStore) -> Path:
    """Where a repo's spool files live."""
    return Path(store.repo_path) / "data" / "audit-spool"


def _header(store: FeatureStore) -> dict[str, str]:
    reg = store.registry
    return {"project": reg.project, "registry": reg.location}


class Shape:
    """A record's shape (``Key``) as the spool writes it: its number in the file that
    defined it last, so a record of a known shape costs one lookup-free line."""

    __slots__ = ("file", "key", "sid", "text")

    def __init__(self, key: Key):
        self.key = key
        self.text = json.dumps([*key[:2], list(key[2]), *key[3:]], ensure_ascii=True)
        self.file: _File | None = None
        self.sid = ""


_SHAPES: dict[Key, Shape] = {}


def shape_of(key: Key) -> Shape:
    """The (remembered) ``Shape`` of ``key``."""
    found = _SHAPES.get(key)
    if found is None:
        if len(_SHAPES) >= 4096:
            _SHAPES.clear()
        found = _SHAPES[key] = Shape(key)
    return found


class _File:
    """One spool file being written (or sealed and waiting to be shipped)."""

    __slots__ = ("fd", "markers", "path", "records", "shapes", "size")

    def __init__(self, path: Path, fd: int, size: int):
        self.path = path
        self.fd = fd
        self.size = size
        self.shapes: dict[Key, str] = {}
        self.records: list[Spooled] = []
        self.markers: list[tuple[int, str]] = []  # (seq, hash) of transactions tried


class Spool:
    """The spool of one store in this process (see the module docstring)."""

    def __init__(
        self,
        store: FeatureStore,
        rows: AuditStore,
        *,
        interval_s: float = SHIP_INTERVAL_S,
        ship_records: int = SHIP_RECORDS,
    ):
        self.folder = spool_folder(store)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._header = (MAGIC + json.dumps(_header(store), sort_keys=True) + "\n").encode()
        self._rows = rows
        self.interval_s = interval_s
        self.ship_records = ship_records
        self._lock = threading.Lock()  # the current file and its records
        self._shipping = threading.Lock()  # one shipper at a time
        self._current: _File | None = None
        self._spare: _File | None = None  # made ahead by the thread: no open on a request
        self._sealed: list[_File] = []
        self._counter = 0
        self._due = threading.Event()
        self._stopped = False
        self.failure: BaseException | None = None
        """The last append's error while the spool cannot be written; None when it can."""
        self.ship_failure: BaseException | None = None
        """The last shipment's error while the registry cannot be written."""
        self.shipped = 0
        self._warned = 0.0
        self._thread = threading.Thread(target=self._run, name="parity-audit-spool", daemon=True)
        with self._lock:
            self._current = self._new_file()  # a spool that cannot be made fails here
        self._thread.start()

    # -- the request's side ------------------------------------------------------------------
    def write(self, at_us: int, shape: Shape, counts: str) -> None:
        """Append one record (``counts``: its canonical JSON); ``AuditError`` if it could
        not be, and then nothing of it is in the file."""
        with self._lock:
            current = self._current
            if current is None:
                current = self._open()
            if shape.file is current:  # the shape is defined in this file already
                sid = shape.sid
                line = f"{sid} {at_us} {counts}\n".encode()
            else:
                known = current.shapes.get(shape.key)
                if known is None:
                    sid = str(len(current.shapes))
                    line = f"S{sid} {shape.text}\n{sid} {at_us} {counts}\n".encode()
                else:
                    sid = known
                    line = f"{sid} {at_us} {counts}\n".encode()
            try:
                written = os.write(current.fd, line)
                if written != len(line):
                    raise OSError(errno.ENOSPC, f"short write ({written} of {len(line)} bytes)")
            except OSError as exc:
                self._undo(current, exc)
                raise AuditError(
                    f"the audit spool {current.path} cannot be written, so the operation "
                    f"failed: {exc.strerror or exc}"
                ) from None
            current.size += written
            if shape.file is not current:
                current.shapes[shape.key] = shape.sid = sid
                shape.file = current
            records = current.records
            records.append((at_us, shape.key, counts))
            if len(records) >= self.ship_records:
                self._due.set()
        if self.failure is not None:
            self.failure = None
            log.warning("the audit spool is writable again")

    def _undo(self, current: _File, exc: OSError) -> None:
        """(Holding ``_lock``) cut what a failed append left; a file that cannot be cut is
        sealed (shipped from memory) and a new one is started with the next record."""
        self.failure = exc
        try:
            os.ftruncate(current.fd, current.size)
        except OSError:
            log.error("audit spool %s: a failed append could not be cut off", current.path)
            self._seal(current)
        self._due.set()  # the thread probes until appends work again

    def _open(self) -> _File:
        """(Holding ``_lock``) the next file: the spare one the thread made, else a new one."""
        made, self._spare = self._spare, None
        if made is None:
            try:
                made = self._new_file()
            except OSError as exc:
                self.failure = exc
                raise AuditError(
                    f"the audit spool in {self.folder} cannot be written, so the operation "
                    f"failed: {exc.strerror or exc}"
                ) from None
        self._current = made
        return made

    def _new_file(self) -> _File:
        self._counter += 1
        name = f"{time.time_ns() // 1000}-{os.getpid()}-{self._counter}-{os.urandom(3).hex()}.log"
        path = self.folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.write(fd, self._header) != len(self._header):
                raise OSError(errno.ENOSPC, "short write")
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        return _File(path, fd, len(self._header))

    def _seal(self, current: _File) -> None:
        """(Holding ``_lock``) no more records go to ``current``."""
        if self._current is current:
            self._current = None
        if current.records:
            self._sealed.append(current)
        else:
            self._drop(current)

    @property
    def pending(self) -> int:
        """Records not yet in the chain."""
        with self._lock:
            current = 0 if self._current is None else len(self._current.records)
            return current + sum(len(f.records) for f in self._sealed)

    # -- shipping -----------------------------------------------------------------------------
    def ship(self) -> int:
        """Move every record spooled so far into the chain; the number moved. Raises (the
        registry's error) when it cannot, leaving them spooled."""
        with self._shipping:
            with self._lock:
                current = self._current
                if current is not None and current.records:
                    self._current, self._spare = self._spare, None
                    self._sealed.append(current)
            moved = 0
            while True:
                with self._lock:
                    if not self._sealed:
                        break
                    file = self._sealed[0]
                moved += self._ship_file(file)
                with self._lock:
                    self._sealed.pop(0)
                self._drop(file)
            self.shipped += moved
            return moved

    def _ship_file(self, file: _File) -> int:
        def mark(seq: int, digest: str) -> None:
            file.markers.append((seq, digest))
            line = f"P {seq} {digest}\n".encode()
            if os.write(file.fd, line) != len(line):
                raise OSError(errno.ENOSPC, "short write")

        tried = list(file.markers)
        return self._rows.append_spooled(file.records, markers=tried, before_commit=mark)

    def _drop(self, file: _File) -> None:
        """Delete a shipped (or empty) file and let go of it."""
        with contextlib.suppress(OSError):
            file.path.unlink()
        with contextlib.suppress(OSError):
            os.close(file.fd)

    def _run(self) -> None:
        while not self._stopped:
            self._due.wait(PROBE_INTERVAL_S if self.failure is not None else self.interval_s)
            self._due.clear()
            if self._stopped:
                return
            if self.failure is not None:
                self._probe()
            if self._spare is None:
                with contextlib.suppress(OSError):
                    spare: _File | None = self._new_file()
                    with self._lock:
                        if self._spare is None:
                            self._spare, spare = spare, None
                    if spare is not None:
                        self._drop(spare)
            try:
                self.ship()
            except Exception as exc:
                self._ship_failed(exc)
            else:
                if self.ship_failure is not None:
                    log.warning("the audit log takes records again; the spool is shipped")
                self.ship_failure = None

    def _ship_failed(self, exc: BaseException) -> None:
        first = self.ship_failure is None
        self.ship_failure = exc
        now = time.monotonic()
        if first or now - self._warned >= WARN_EVERY_S:
            self._warned = now
            log.warning(
                "the audit log cannot take records now (%s); %d record(s) stay in the spool "
                "%s and are retried",
                exc,
                self.pending,
                self.folder,
            )

    def _probe(self) -> None:
        """After a failed append: whether a (blank) line can be appended again."""
        with self._lock:
            current = self._current
            try:
                if current is None:
                    current = self._open()
                if os.write(current.fd, b"\n") != 1:
                    raise OSError(errno.ENOSPC, "short write")
                current.size += 1
            except (OSError, AuditError):
                if current is not None:
                    with contextlib.suppress(OSError):
                        os.ftruncate(current.fd, current.size)
                return
        self.failure = None
        log.warning("the audit spool is writable again")

    def abandon(self) -> None:
        """Stop without shipping, letting go of the files as a process that dies does (they
        are orphans then, for ``ship_orphans``): for tests."""
        self._stopped = True
        self._due.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        with self._shipping, self._lock:
            files = [f for f in (self._current, self._spare, *self._sealed) if f is not None]
            self._current = self._spare = None
            self._sealed = []
        for f in files:
            with contextlib.suppress(OSError):
                os.close(f.fd)

    def close(self) -> None:
        """Ship what is spooled and stop; what cannot be shipped stays for the next process
        (``ship_orphans``)."""
        self._stopped = True
        self._due.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        try:
            self.ship()
        except Exception as exc:
            log.warning(
                "the audit log cannot take records now (%s); %d record(s) stay in %s for "
                "the next process to ship",
                exc,
                self.pending,
                self.folder,
            )
        with self._lock:
            files = [f for f in (self._current, self._spare) if f is not None]
            self._current = self._spare = None
            left, self._sealed = self._sealed, []
        for f in files:
            if f.records:
                left.append(f)
            else:
                self._drop(f)
        for f in left:  # unlocked: an orphan now, shipped by the next process
            with contextlib.suppress(OSError):
                os.close(f.fd)


# -- orphans ---------------------------------------------------------------------------------
def parse(text: str) -> tuple[dict[str, Any], list[Spooled], list[tuple[int, str]]]:
    """A spool file's header, records and ``P`` markers; ``ValueError`` when it is not one.
    A last line without its newline is an append that never finished: ignored."""
    lines = text.split("\n")
    lines.pop()  # after the last newline: empty, or an unfinished append
    if not lines or not lines[0].startswith(MAGIC):
        raise ValueError("not an audit spool file (no header)")
    header = json.loads(lines[0][len(MAGIC) :])
    shapes: dict[str, Key] = {}
    records: list[Spooled] = []
    markers: list[tuple[int, str]] = []
    for number, line in enumerate(lines[1:], 2):
        if not line:
            continue
        first, _, rest = line.partition(" ")
        try:
            if first.startswith("S"):
                p, a, res, o, d, t = json.loads(rest)
                shapes[first[1:]] = (p, a, tuple(res), o, d, t)
            elif first == "P":
                seq, digest = rest.split(" ")
                markers.append((int(seq), digest))
            else:
                at, _, counts = rest.partition(" ")
                if not isinstance(json.loads(counts), dict):
                    raise ValueError("counts are not an object")
                records.append((int(at), shapes[first], counts))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number} is not a spool line: {exc}") from None
    return header, records, markers


def ship_orphans(store: FeatureStore, rows: AuditStore | None = None) -> int:
    """Ship the spool files of processes that ended (see the module docstring); the number
    of records moved. Raises when the registry cannot take them (they stay)."""
    folder = spool_folder(store)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".log"))
    except FileNotFoundError:
        return 0
    if not names:
        return 0
    rows = rows if rows is not None else AuditStore(store.registry)
    want = _header(store)
    moved = 0
    for name in names:
        moved += _ship_orphan(folder / name, rows, want)
    return moved


def _ship_orphan(path: Path, rows: AuditStore, want: dict[str, str]) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # its process lives (or another ships it now)
        if os.fstat(fd).st_nlink == 0:
            return 0  # shipped and deleted meanwhile
        with os.fdopen(os.dup(fd), "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        try:
            header, records, markers = parse(text)
        except ValueError as exc:
            if not text.strip() or text.startswith(MAGIC[: len(text)]):
                path.unlink()  # died before its header was complete: nothing in it
                return 0
            log.warning("audit spool %s is damaged and is left alone: %s", path, exc)
            return 0
        if header != want:
            log.warning(
                "audit spool %s belongs to project %r in %s, not this repo's: left alone",
                path,
                header.get("project"),
                header.get("registry"),
            )
            return 0
        moved = 0
        if records:

            def mark(seq: int, digest: str) -> None:
                markers.append((seq, digest))
                line = f"P {seq} {digest}\n".encode()
                if os.write(fd, line) != len(line):
                    raise OSError(errno.ENOSPC, "short write")

            moved = rows.append_spooled(records, markers=list(markers), before_commit=mark)
        path.unlink()
        if moved:
            log.warning("shipped %d audit record(s) a process left in %s", moved, path)
        return moved
    finally:
        os.close(fd)
