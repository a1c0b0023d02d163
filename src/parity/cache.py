"""Work a fresh process would otherwise redo, kept between processes: a per-user disk cache.

A ``parity plan`` on a large repo is a fresh process that reads every YAML file, rebuilds
every registered definition and reads every source's schema. Each of those is a pure
function of something cheap to check (a file's bytes, the registry's content hashes, a
Parquet file's size and time), so its result is kept here, pickled, under a key made of
that something and of this installation's code (Parity's version and every one of its
module files' size and time, Python's and pydantic's versions): any change of either is a
miss, never a stale hit.

The folder is ``$PARITY_CACHE_DIR``, else ``$XDG_CACHE_HOME/parity``, else
``~/.cache/parity``; ``PARITY_CACHE_DIR=off`` turns the cache off. Since a pickle runs code
when read, a folder that is not the user's own, or that others may write to, is never
read (the cache is then off, with one warning). Entries are written atomically; an entry
that cannot be read is removed and counts as a miss. Each namespace keeps its newest
entries: ``KEEP``, or fewer for large ones (a catalog of thousands of definitions is a few
megabytes; its namespace keeps 8).

::

    value = cache.load("yaml", key)       # None on a miss
    cache.save("yaml", key, value)
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["ENV", "KEEP", "bulk_load", "directory", "freeze_after_bulk_loads", "load", "save"]

log = logging.getLogger("parity.cache")

ENV = "PARITY_CACHE_DIR"
KEEP = 256
"""Entries kept per namespace; the oldest go first."""
_OFF = frozenset({"off", "0", "false", "none", "no"})


def directory() -> Path | None:
    """The cache folder, created if need be; None when the cache is off or unsafe."""
    given = os.environ.get(ENV)
    if given is not None and given.strip().lower() in _OFF:
        return None
    if given:
        base = Path(given)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "parity"
    return _checked(base)


@functools.cache
def _checked(base: Path) -> Path | None:
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = base.stat()
    except OSError as exc:  # a read-only home (a container): quietly without
        log.debug("the Parity cache is off: cannot use %s (%s)", base, exc)
        return None
    owner_ok = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    if not owner_ok or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        log.warning(
            "the Parity cache is off: %s is not yours alone (set %s to a private folder)",
            base,
            ENV,
        )
        return None
    return base


@functools.cache
def code_fingerprint() -> str:
    """Parity's code as installed: its version and every module file's size and time."""
    import pydantic

    import parity

    root = Path(parity.__file__).parent
    digest = hashlib.sha256()
    digest.update(f"{sys.version}|{pydantic.VERSION}|{getattr(parity, '__version__', '')}".encode())
    for path in sorted(root.rglob("*.py")):
        try:
            info = path.stat()
        except OSError:
            continue
        digest.update(f"{path.relative_to(root)}|{info.st_size}|{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _entry(namespace: str, key: str) -> Path | None:
    folder = directory()
    if folder is None:
        return None
    name = hashlib.sha256(f"{code_fingerprint()}|{namespace}|{key}".encode()).hexdigest()
    return folder / namespace / f"{name}.pickle"


@contextlib.contextmanager
def bulk_load() -> Iterator[None]:
    """Cyclic garbage collection held off while many objects are made at once (reading a
    catalog or a repo of thousands of definitions): each collection would walk every
    object made so far, and these make no cycles. Nested uses hold it off until the
    outermost ends; other threads only see collection come a little later. In a
    short-lived process (``freeze_after_bulk_loads``) what is alive then is also moved
    out of collection's reach (``gc.freeze``), so the first collection afterwards does
    not walk every object just made."""
    global _BULK_DEPTH
    with _BULK_LOCK:
        if _BULK_DEPTH == 0:
            _BULK_STATE[0] = gc.isenabled()
            gc.disable()
        _BULK_DEPTH += 1
    try:
        yield
    finally:
        with _BULK_LOCK:
            _BULK_DEPTH -= 1
            if _BULK_DEPTH == 0:
                if _FREEZE[0]:
                    gc.freeze()
                if _BULK_STATE[0]:
                    gc.enable()


def freeze_after_bulk_loads(on: bool = True) -> None:
    """For a process that ends soon (a CLI command, not a server): after each bulk load,
    move every object then alive to the permanent generation (``gc.freeze``). They are
    still freed when no longer referenced; only reference cycles among them would stay
    until the process ends, which for a short command costs nothing."""
    _FREEZE[0] = on


_BULK_LOCK = threading.Lock()
_BULK_DEPTH = 0
_BULK_STATE = [True]
_FREEZE = [False]


def load(namespace: str, key: str) -> Any | None:
    """The value saved under ``key``, or None (a miss, an unreadable entry, the cache off)."""
    path = _entry(namespace, key)
    if path is None:
        return None
    try:
        with path.open("rb") as f, bulk_load():
            return pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a torn or foreign entry: drop it, redo the work
        log.debug("dropping unreadable cache entry %s: %s", path, exc)
        path.unlink(missing_ok=True)
        return None


def save(namespace: str, key: str, value: Any, *, keep: int | None = None) -> None:
    """Keep ``value`` under ``key``; a failure to write only costs the next process time.
    ``keep``: how many entries the namespace keeps, newest first (default ``KEEP``)."""
    path = _entry(namespace, key)
    if path is None:
        return
    try:
        path.parent.mkdir(exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _prune(path.parent, KEEP if keep is None else keep)
    except Exception as exc:
        log.debug("cannot write cache entry %s: %s", path, exc)


def _prune(folder: Path, keep: int) -> None:
    entries = [p for p in folder.iterdir() if p.suffix == ".pickle"]
    if len(entries) <= keep:
        return
    entries.sort(key=lambda p: p.stat().st_mtime_ns)
    for old in entries[: len(entries) - keep]:
        old.unlink(missing_ok=True)
