"""Fingerprints of the source files a snapshot was made from, and what changed since.

The files of a source are found as the offline engine finds them
(``parity.governance.source_files.source_files``: one file, a glob, or a folder read
recursively), plus, for a push source, the Parquet files of its offline log. Each file's
fingerprint holds its path (relative to the repo when it is inside it), size, modification
time (ns) and, by ``snapshots.fingerprint`` in ``parity.yaml``:

- ``stats`` (the default): for a Parquet file the SHA-256 of its footer, which holds every
  row group's row count, column chunk sizes and statistics (min, max, nulls): two small
  reads, whatever the file's size; the row count is read from it too. CSV files have no
  footer: they are hashed whole. A rewrite that keeps the size, the statistics and the
  sizes of every column chunk but changes a value inside a page leaves the footer as it
  was: it is still seen by its modification time, and by the result's digest on recreate.
- ``content``: the SHA-256 of every file's bytes (exact, and as slow as reading them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.definitions import DataSource, FileSource, PushSource

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = [
    "FileChange",
    "FileFingerprint",
    "SourceFiles",
    "compare",
    "files_of",
    "fingerprint_sources",
    "shown_path",
]

_MAGIC = b"PAR1"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileFingerprint:
    """One source file as it was: where, how big, when written, and its digest."""

    path: str
    size: int
    mtime_ns: int
    how: str
    """``parquet-footer`` (the SHA-256 of the Parquet footer) or ``sha256`` (of the bytes)."""
    digest: str
    rows: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "how": self.how,
            "digest": self.digest,
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileFingerprint:
        return cls(
            str(data["path"]),
            int(data["size"]),
            int(data["mtime_ns"]),
            str(data["how"]),
            str(data["digest"]),
            None if data.get("rows") is None else int(data["rows"]),
        )


@dataclass(frozen=True)
class SourceFiles:
    """The files one source was read from."""

    source: str
    files: tuple[FileFingerprint, ...]

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "files": [f.to_json() for f in self.files]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceFiles:
        return cls(str(data["source"]), tuple(FileFingerprint.from_json(f) for f in data["files"]))


@dataclass(frozen=True)
class FileChange:
    """A source file ``added``, ``removed`` or ``changed`` since a snapshot was made."""

    source: str
    path: str
    change: str
    detail: str = ""

    def render(self) -> str:
        text = f"{self.change}: {self.path} (source {self.source})"
        return f"{text}: {self.detail}" if self.detail else text


def fingerprint_sources(store: FeatureStore, sources: Iterable[DataSource]) -> list[SourceFiles]:
    """Every file of each source (by name, each once), fingerprinted now."""
    content = store.config.snapshots.fingerprint == "content"
    seen: dict[str, DataSource] = {}
    for source in sources:
        seen.setdefault(source.name, source)
    return [
        SourceFiles(
            name, tuple(_fingerprint(store, p, content) for p in files_of(store, seen[name]))
        )
        for name in sorted(seen)
    ]


def files_of(store: FeatureStore, source: DataSource) -> list[Path]:
    """The files the offline engine reads for ``source``, sorted."""
    from parity.governance.source_files import source_files
    from parity.governance.subjects import batch_file_source
    from parity.offline import log

    found: list[Path] = []
    batch = batch_file_source(source)
    if isinstance(batch, FileSource):
        found += source_files(store, batch)[1]
    if isinstance(source, PushSource):
        folder = log.log_dir(store.config.resolve(store.config.offline_log), source.name)
        if folder.is_dir():
            found += sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
    return found


def compare(recorded: Iterable[SourceFiles], current: Iterable[SourceFiles]) -> list[FileChange]:
    """The files added, removed or changed from ``recorded`` to ``current``, by source and
    path."""
    before = {(s.source, f.path): f for s in recorded for f in s.files}
    after = {(s.source, f.path): f for s in current for f in s.files}
    out = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is None:
            assert new is not None
            out.append(FileChange(key[0], key[1], "added", _size(new)))
        elif new is None:
            out.append(FileChange(key[0], key[1], "removed", _size(old)))
        else:
            detail = _changed(old, new)
            if detail:
                out.append(FileChange(key[0], key[1], "changed", detail))
    return out


def shown_path(store: FeatureStore, path: Path) -> str:
    """``path`` relative to the repo folder when it is inside it (POSIX), else absolute."""
    try:
        return path.resolve().relative_to(store.repo_path.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


# -- one file ------------------------------------------------------------------------------


def _fingerprint(store: FeatureStore, path: Path, content: bool) -> FileFingerprint:
    stat = path.stat()
    shown = shown_path(store, path)
    if not content and path.suffix.lower() == ".parquet":
        footer = _footer(path, stat.st_size)
        if footer is not None:
            import pyarrow.parquet as pq

            rows = pq.read_metadata(path).num_rows
            digest = hashlib.sha256(footer).hexdigest()
            return FileFingerprint(
                shown, stat.st_size, stat.st_mtime_ns, "parquet-footer", digest, rows
            )
    return FileFingerprint(shown, stat.st_size, stat.st_mtime_ns, "sha256", _file_sha256(path))


def _footer(path: Path, size: int) -> bytes | None:
    """The Parquet footer's bytes (FileMetaData and its length); None when not Parquet."""
    if size < 12:
        return None
    with open(path, "rb") as fh:
        fh.seek(size - 8)
        tail = fh.read(8)
        if tail[4:] != _MAGIC:
            return None
        length = int.from_bytes(tail[:4], "little")
        if length + 12 > size:
            return None
        fh.seek(size - 8 - length)
        return fh.read(length) + tail[:4]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _size(f: FileFingerprint) -> str:
    rows = "" if f.rows is None else f", {f.rows:,} rows"
    return f"{f.size:,} bytes{rows}"


def _changed(old: FileFingerprint, new: FileFingerprint) -> str:
    """What differs between two fingerprints of one file, as text; "" when nothing does."""
    parts = []
    if old.size != new.size:
        parts.append(f"size {old.size:,} -> {new.size:,} bytes")
    if old.rows is not None and new.rows is not None and old.rows != new.rows:
        parts.append(f"rows {old.rows:,} -> {new.rows:,}")
    if old.how == new.how and old.digest != new.digest:
        what = "footer (row-group statistics)" if old.how == "parquet-footer" else "content hash"
        parts.append(f"{what} differs")
    elif old.how != new.how:
        parts.append(f"fingerprinted as {new.how} now, {old.how} then")
    if old.mtime_ns != new.mtime_ns:
        parts.append(f"modified {_when(old.mtime_ns)} -> {_when(new.mtime_ns)}")
    return "; ".join(parts)


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")
