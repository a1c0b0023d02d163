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

The feature server ships from a child process instead (``shipper="process"``,
``audit_shipper``): the thread then only seals the current file, closes it (so its lock is
free: the file is shipped as an orphan is, exactly once, by whoever takes its lock) and
nudges the child, which ships its parent's sealed files in the order they were made. What
a read of the log needs (``ship()``) the reading process ships itself, oldest first,
waiting (bounded) for a file the child holds: so a process still reads its own records at
once. ``close()`` stops the child (bounded) and makes the last ship itself. A child that
dies is started again, at most ``RESTARTS`` times a minute; past that the thread ships.

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
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.errors import AuditError
from parity.governance.audit_store import AuditStore, Spooled
from parity.registry.engine import is_sqlite, sqlite_path

if TYPE_CHECKING:
    from parity.registry.registry import Registry
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
        shipper: str = "thread",
    ):
        if shipper not in ("thread", "process"):
            raise ValueError(f"shipper must be 'thread' or 'process', not {shipper!r}")
        self.folder = spool_folder(store)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._want = _header(store)
        self._header = (MAGIC + json.dumps(self._want, sort_keys=True) + "\n").encode()
        self._wait_s = store.registry.timeout + 5.0
        self._rows = rows
        self.interval_s = interval_s
        self.ship_records = ship_records
        self._lock = threading.Lock()  # the current file and its records
        self._shipping = threading.Lock()  # one shipper at a time
        self._current: _File | None = None
        self._spare: _File | None = None  # made ahead by the thread: no open on a request
        self._sealed: list[_File] = []
        self._counter = itertools.count(1)
        self._due = threading.Event()
        self._stopped = False
        self.failure: BaseException | None = None
        """The last append's error while the spool cannot be written; None when it can."""
        self.ship_failure: BaseException | None = None
        """The last shipment's error while the registry cannot be written."""
        self.shipped = 0
        self._warned = 0.0
        self._handed: list[Path] = []  # sealed, closed, unlocked: the shipper child's
        self.child: Shipper | None = None
        """The shipper process (``shipper="process"``; None: this process ships)."""
        self._thread = threading.Thread(target=self._run, name="parity-audit-spool", daemon=True)
        with self._lock:
            self._current = self._new_file()  # a spool that cannot be made fails here
        reg = store.registry
        if shipper == "process" and not (is_sqlite(reg.url) and sqlite_path(reg.url) is None):
            child = Shipper(reg, self.folder, self._want, interval_s)
            try:
                child.start()
            except OSError as exc:
                log.warning("the audit shipper process cannot start (%s): shipped here", exc)
            else:
                self.child = child
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
        """A new file, locked and with its header, made under a name no shipper lists
        (``.new``) and renamed into place: a shipper never sees it unlocked or empty."""
        n = next(self._counter)  # atomic (the thread makes spares, requests may make files)
        name = f"{time.time_ns() // 1000}-{os.getpid()}-{n}-{os.urandom(3).hex()}.log"
        path = self.folder / name
        making = path.with_suffix(".new")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(making, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.write(fd, self._header) != len(self._header):
                raise OSError(errno.ENOSPC, "short write")
            os.rename(making, path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                making.unlink()
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
            if self.child is not None:
                self._hand_off()
            else:
                with self._lock:
                    current = self._current
                    if current is not None and current.records:
                        self._current, self._spare = self._spare, None
                        self._sealed.append(current)
            moved = 0
            while True:  # oldest first: files sealed here, and those handed to the child
                with self._lock:
                    waiting: list[_File | Path] = [*self._sealed, *self._handed]
                if not waiting:
                    break
                item = min(waiting, key=_created)
                if isinstance(item, Path):  # shipped here, or waited for if the child is on it
                    moved += ship_sealed(item, self._rows, self._want, self._wait_s)
                    self._handed.remove(item)
                else:
                    moved += self._ship_file(item)
                    with self._lock:
                        self._sealed.remove(item)
                    self._drop(item)
            self.shipped += moved
            return moved

    def _hand_off(self) -> None:
        """Seal the current file (if it has records) and let go of it: the shipper child
        (or whoever reads the log) ships it as an orphan."""
        with self._lock:
            current = self._current
            if current is None or not current.records:
                return
            self._current, self._spare = self._spare, None
            current.records = []  # counted in the chain from now on, not here
        os.close(current.fd)  # its lock with it: nothing writes to it any more
        self._handed.append(current.path)
        if self.child is not None:
            self.child.nudge()

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
            if self.child is not None and self._tend_child():
                try:
                    with self._shipping:
                        self._hand_off()
                        self._handed = [p for p in self._handed if p.exists()]
                    if self._sealed:  # (rare) a file a failed append sealed: shipped here
                        self.ship()
                except Exception as exc:
                    self._ship_failed(exc)
                continue
            try:
                self.ship()
            except Exception as exc:
                self._ship_failed(exc)
            else:
                if self.ship_failure is not None:
                    log.warning("the audit log takes records again; the spool is shipped")
                self.ship_failure = None

    def _tend_child(self) -> bool:
        """Whether the shipper child lives (restarted when it died; past ``RESTARTS`` a
        minute the spool ships from this thread from now on: False)."""
        child = self.child
        assert child is not None
        if child.alive():
            return True
        code = None if child.proc is None else child.proc.returncode
        child.stop()
        if child.may_restart():
            try:
                child.start()
            except OSError as exc:
                log.warning("the audit shipper process cannot start again (%s)", exc)
            else:
                log.warning("the audit shipper process ended (code %s): started again", code)
                child.nudge()
                return True
        log.warning("the audit shipper process ended (code %s): the spool is shipped here", code)
        self.child = None
        return False

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
        if self.child is not None:
            self.child.kill()
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
        child, self.child = self.child, None
        if child is not None:  # it ends after the file it ships; the last ship is here
            with self._shipping:
                self._hand_off()
            child.stop()
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


def _created(item: _File | Path) -> int:
    """A file's place in its spool's order (the counter in its name)."""
    name = item.name if isinstance(item, Path) else item.path.name
    return int(name.split("-")[2])


# -- the shipper process (``audit_shipper``) -------------------------------------------------
STOP_WAIT_S = 5.0
"""Beyond the registry's timeout: how long ``stop`` waits for the child to end."""
RESTARTS = 3
"""Restarts of a dead child within a minute before the spool ships from its thread."""


class Shipper:
    """The parent's handle on one shipper child."""

    def __init__(self, registry: Registry, folder: Path, header: dict[str, str], interval_s: float):
        self.registry = registry
        self.folder = folder
        self.header = header
        self.interval_s = interval_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._starts: list[float] = []

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        """Start the child; ``OSError`` when it cannot be."""
        import parity

        reg = self.registry
        config = {
            "url": reg.url.render_as_string(hide_password=False),
            "schema": reg.schema,
            "project": reg.project,
            "timeout": reg.timeout,
            "folder": str(self.folder),
            "header": self.header,
            "interval_s": self.interval_s,
            "parent": os.getpid(),
        }
        env = dict(os.environ)
        src = str(Path(parity.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "parity.governance.audit_shipper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(config).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            _end(proc, 0.0)
            raise
        fd = proc.stdin.fileno()
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.proc = proc
        self._starts = [t for t in self._starts if time.monotonic() - t < 60.0]
        self._starts.append(time.monotonic())

    def nudge(self) -> None:
        """Tell the child there is a sealed file (never blocks: a full pipe already says so)."""
        proc = self.proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):  # full, or a child that died: see alive
            os.write(proc.stdin.fileno(), b"\n")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def may_restart(self) -> bool:
        return len([t for t in self._starts if time.monotonic() - t < 60.0]) <= RESTARTS

    def stop(self) -> None:
        """End the child: close its pipe (it finishes the file it ships, then ends), wait
        (bounded), kill it past that."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _end(proc, self.registry.timeout + STOP_WAIT_S)

    def kill(self) -> None:
        """End the child at once (tests: as a dying shipper)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _end(proc, 0.0)


def _end(proc: subprocess.Popen[bytes], wait_s: float) -> None:
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    if wait_s > 0:
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            log.warning(
                "the audit shipper (pid %d) did not end in %.0f s: killed", proc.pid, wait_s
            )
    with contextlib.suppress(OSError):
        proc.kill()
    proc.wait()


# -- orphans ---------------------------------------------------------------------------------
_OBJECTS: set[str] = set()
"""Counts texts known to be JSON objects."""


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
                if counts not in _OBJECTS:  # a busy server's counts repeat: checked once
                    if not isinstance(json.loads(counts), dict):
                        raise ValueError("counts are not an object")
                    if len(_OBJECTS) >= 4096:
                        _OBJECTS.clear()
                    _OBJECTS.add(counts)
                records.append((int(at), shapes[first], counts))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number} is not a spool line: {exc}") from None
    return header, records, markers


def ship_orphans(store: FeatureStore, rows: AuditStore | None = None) -> int:
    """Ship the spool files of processes that ended (see the module docstring); the number
    of records moved. Raises when the registry cannot take them (they stay)."""
    folder = spool_folder(store)
    if not folder.is_dir():
        return 0
    rows = rows if rows is not None else AuditStore(store.registry)
    return ship_folder(folder, rows, _header(store))


def ship_folder(
    folder: Path, rows: AuditStore, want: dict[str, str], *, pid: int | None = None
) -> int:
    """``ship_orphans`` of ``folder`` (files of project and registry ``want``). With ``pid``:
    only that live process's sealed files (a shipper child's work), in the order it made
    them, up to the first one held (its current file, or one it ships itself: the rest
    waits, so the chain keeps the order), without a warning."""
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".log"))
    except FileNotFoundError:
        return 0
    if pid is not None:
        mine = str(pid)
        names = [n for n in names if n.count("-") == 3 and n.split("-")[1] == mine]
        names.sort(key=lambda n: _created(Path(n)))
    moved = 0
    for name in names:
        if pid is None:
            moved += _ship_orphan(folder / name, rows, want)
            continue
        found = _ship_orphan(folder / name, rows, want, quiet=True, busy=True)
        if found < 0:
            break
        moved += found
    return moved


def ship_sealed(path: Path, rows: AuditStore, want: dict[str, str], wait_s: float) -> int:
    """Make sure the sealed (unlocked) file ``path`` is shipped: ship it here (the records
    moved), or wait (at most ``wait_s``) for whoever ships it now (0); raises when it cannot
    be (it stays)."""
    deadline = time.monotonic() + wait_s
    while path.exists():
        moved = _ship_orphan(path, rows, want, quiet=True, busy=True)
        if moved >= 0:
            return moved
        if time.monotonic() >= deadline:
            raise AuditError(f"the audit spool {path} is being shipped by another process still")
        time.sleep(0.005)  # polling a lock held by the shipper that is committing it
    return 0


def _ship_orphan(
    path: Path, rows: AuditStore, want: dict[str, str], *, quiet: bool = False, busy: bool = False
) -> int:
    """Ship one unlocked file; the records moved (-1 with ``busy`` when its lock is held)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return -1 if busy else 0  # its process lives (or another ships it now)
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
        if moved and not quiet:
            log.warning("shipped %d audit record(s) a process left in %s", moved, path)
        return moved
    finally:
        os.close(fd)
