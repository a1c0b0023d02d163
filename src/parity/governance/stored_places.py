"""The places Parity itself writes a subject's data to: the online store and the serving
log (``parity.governance.places`` for the contract; the offline side is
``parity.governance.source_files``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from parity.governance.places import ErasePlace, Found, PlaceCount, status
from parity.governance.source_files import subject_rows
from parity.governance.subjects import Subject, ViewKeys
from parity.online.base import OnlineView, SupportsKeyScan
from parity.online.encoding import decode_values, encode_key, record_times

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["OnlinePlace", "ServingLogPlace", "decode_key", "serving_log_files", "serving_log_root"]

# -- online ----------------------------------------------------------------------------------


class OnlinePlace(ErasePlace):
    """Online records of every online view keyed by the entity.

    A view keyed by the entity alone: the subject's keys encoded. A view keyed by it and other
    entities (``user`` and ``merchant``): the stored keys whose ``user`` parts are the
    subject's, listed by the store (``SupportsKeyScan``; SQLite and Redis have it); a store
    that cannot list its keys gets the keys found in the offline rows Parity can read (the
    offline log and the batch source files), and the receipt says so.
    """

    name = "online"

    def erase(
        self, store: FeatureStore, subject: Subject, *, dry_run: bool, rewrite_sources: bool
    ) -> list[PlaceCount]:
        out = []
        for vk, ov, keys, note in self._keys(store, subject):
            if dry_run:
                found = (
                    sum(r is not None for r in store.online.read([(ov, keys)])[0]) if keys else 0
                )
            else:
                found = store.online.delete(ov, keys) if keys else 0
            out.append(PlaceCount(self.name, vk.view.name, found, status(dry_run), note=note))
        return out

    def export(self, store: FeatureStore, subject: Subject) -> list[Found]:
        out = []
        for vk, ov, keys, _ in self._keys(store, subject):
            records = store.online.read([(ov, keys)])[0] if keys else []
            rows = [(k, r) for k, r in zip(keys, records, strict=True) if r is not None]
            out.append(Found(self.name, vk.view.name, _online_table(vk, ov, rows)))
        return out

    def _keys(
        self, store: FeatureStore, subject: Subject
    ) -> list[tuple[ViewKeys, OnlineView, list[bytes], str]]:
        out = []
        for vk in subject.views:
            if not vk.view.online:
                continue
            ov = OnlineView.of(vk.view, vk.join_keys)
            note = ""
            if vk.exact:
                keys = [encode_key(list(k), vk.join_keys) for k in subject.keys]
            elif isinstance(store.online, SupportsKeyScan):
                parts = subject.encoded_parts()
                keys = [k for k in store.online.scan_keys(ov) if subject.owns_key(k, vk, parts)]
                keys.sort()
            else:
                keys = _keys_from_offline_rows(store, subject, vk)
                note = "keys found in the offline rows (the online store cannot list its keys)"
            out.append((vk, ov, keys, note))
        return out


def _keys_from_offline_rows(store: FeatureStore, subject: Subject, vk: ViewKeys) -> list[bytes]:
    source = store.catalog().source_of(vk.view)
    columns = [source.column_for(k) for k in vk.join_keys]
    keys: set[bytes] = set()
    for table in subject_rows(store, subject, source):
        if all(c in table.column_names for c in columns):
            picked = [table.column(c).to_pylist() for c in columns]
            for values in zip(*picked, strict=True):
                if None not in values:
                    keys.add(encode_key(list(values), vk.join_keys))
    return sorted(keys)


def _online_table(vk: ViewKeys, ov: OnlineView, rows: list[tuple[bytes, bytes]]) -> pa.Table:
    from parity.online.encoding import from_micros
    from parity.types import Timestamp

    cols: dict[str, list[object]] = {k: [] for k in vk.join_keys}
    cols["event_timestamp"], cols["created_timestamp"] = [], []
    features = list(ov.features)
    for f in features:
        cols.setdefault(f, [])
    types = {f.name: f.dtype for f in vk.view.features}
    for key, record in rows:
        for name, value in zip(vk.join_keys, decode_key(key, len(vk.join_keys)), strict=True):
            cols[name].append(value)
        event, created = record_times(record)
        cols["event_timestamp"].append(from_micros(event))
        cols["created_timestamp"].append(None if created is None else from_micros(created))
        values = decode_values(record)
        for f in features:
            v = values.get(f)
            if v is not None and types.get(f) is Timestamp:
                v = from_micros(v)
            cols[f].append(v)
    arrays = {}
    stamps = {"event_timestamp": Timestamp, "created_timestamp": Timestamp}
    for name, column in cols.items():
        dtype = types.get(name) or stamps.get(name)
        try:
            arrays[name] = pa.array(column, None if dtype is None else dtype.to_arrow())
        except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
            arrays[name] = pa.array([None if v is None else str(v) for v in column])
    return pa.table(arrays)


def decode_key(key: bytes, n: int) -> list[int | str | bytes]:
    """An encoded online key's ``n`` join-key values (``parity.online.encoding``)."""
    parts: list[bytes] = []
    for piece in key.split(b"\x1f"):
        # a text value holding the separator: a piece without a tag continues the text
        if parts and (len(parts) == n or piece[:1] not in (b"i", b"s", b"b")):
            parts[-1] += b"\x1f" + piece
        else:
            parts.append(piece)
    out: list[int | str | bytes] = []
    for p in parts:
        tag, body = p[:1], p[1:]
        if tag == b"i":
            out.append(int(body))
        elif tag == b"s":
            out.append(body.decode())
        else:
            out.append(bytes.fromhex(body.decode()))
    return out


# -- the serving log -----------------------------------------------------------------------


class ServingLogPlace(ErasePlace):
    """Rows of the serving log's files that served a view keyed by the entity with the
    subject's keys (the request's entity columns are the join keys); a file left with no
    rows is removed. Rows a running server holds in memory are written after the erase, up
    to ``serving_log.flush_seconds`` later: erase again once they are (the receipt's
    ``note``)."""

    name = "serving_log"

    def erase(
        self, store: FeatureStore, subject: Subject, *, dry_run: bool, rewrite_sources: bool
    ) -> list[PlaceCount]:
        from parity.offline.log import rewriting

        root = serving_log_root(store)
        rows = files = 0
        for path, _table, mask in self._matches(store, subject):
            hits = int(pc.sum(mask).as_py() or 0)
            rows += hits
            files += 1
            if not dry_run:
                with rewriting(path.parent):  # read again under the lock: the newest rows
                    _without(path, subject)
        note = "rows a running server has not written yet are not in the files"
        return [PlaceCount(self.name, _shown(store, root), rows, status(dry_run), files, note)]

    def export(self, store: FeatureStore, subject: Subject) -> list[Found]:
        """One table per file (each file is one request shape: its own feature columns)."""
        root = serving_log_root(store)
        return [
            Found(self.name, str(path.relative_to(root)), t.filter(m).replace_schema_metadata(None))
            for path, t, m in self._matches(store, subject)
        ]

    def _matches(
        self, store: FeatureStore, subject: Subject
    ) -> list[tuple[Path, pa.Table, pa.ChunkedArray]]:

        from parity.monitoring.serving_log import FEATURES_KEY

        views = set(subject.view_names)
        out = []
        for path in serving_log_files(store):
            table = pq.read_table(path, partitioning=None)
            meta = table.schema.metadata or {}
            if FEATURES_KEY not in meta:
                continue
            served = {ref.split(":", 1)[0] for ref in json.loads(meta[FEATURES_KEY])}
            if not served & views:
                continue
            mask = subject.rows_of(table, subject.join_keys)
            if mask is not None and pc.any(mask).as_py():
                out.append((path, table, mask))
        return out


def _without(path: Path, subject: Subject) -> None:
    """A serving-log file without the subject's rows (removed when none is left)."""
    from parity.offline.log import write_atomically

    table = pq.read_table(path, partitioning=None)
    mask = subject.rows_of(table, subject.join_keys)
    if mask is None:
        return
    kept = table.filter(pc.invert(mask))
    if kept.num_rows == 0:
        path.unlink()
    elif kept.num_rows != table.num_rows:
        write_atomically(path, kept)


def _shown(store: FeatureStore, path: Path) -> str:
    """``path`` relative to the repo when it is inside it."""
    try:
        return str(path.relative_to(store.repo_path))
    except ValueError:
        return str(path)


def serving_log_root(store: FeatureStore) -> Path:
    from parity.monitoring.serving_log import log_folder

    return log_folder(store.config.serving_log, store.repo_path)


def serving_log_files(store: FeatureStore) -> list[Path]:
    """The serving log's Parquet files (a file being written has a dot-name: left out)."""
    root = serving_log_root(store)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*.parquet") if not p.name.startswith("."))
