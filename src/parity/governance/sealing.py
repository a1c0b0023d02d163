"""Where encryption meets the stores: the online store boundary and the offline log.

- **Online**: ingest's encoder (``Sealer.encode``: pushes, direct writes, stream batches and
  materialization all encode through it) seals a view's ``encrypt=True`` features of each
  record together, into one entry (``SEALED_KEY``: one AES-GCM value per record, the
  cheapest a write can be). ``SealedOnlineStore`` wraps the project's online store: every
  read (Python, HTTP, async) opens that entry before the record is decoded, so on-demand
  views, masking and the response see plaintext and the store never does; a write that did
  not come through the encoder is sealed there. A feature still stored in plaintext (from
  before it was ``encrypt=True``) is served as it is until ``parity keys rotate`` seals it.
- **Offline log**: ``seal_log`` seals a push source's encrypted columns in each new log file
  (binary, the column's type in its field metadata); ``open_log`` turns a file back into
  its plaintext table, and the offline engine reads the log through it (historical
  retrieval, materialization, monitoring). A folder holding sealed files has a
  ``.sealed`` marker, so an engine without the keys refuses instead of reading ciphertext.

A column is encrypted in the log when any view of its source declares it ``encrypt=True``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import pyarrow as pa

from parity.errors import EncryptionError
from parity.governance.crypto import Cipher, load_keyring
from parity.lazy import LazyModule
from parity.online.base import (
    OnlineStore,
    OnlineView,
    RecordBatch,
    SupportsAsyncRead,
    SupportsCompact,
    SupportsKeyScan,
    SupportsUpdate,
)
from parity.online.encoding import HEADER
from parity.online.writer import CREATED_US, EVENT_US, _pylist, encode_batch

if TYPE_CHECKING:
    import pyarrow.compute as pc
else:
    pc = LazyModule("pyarrow.compute", globals(), "pc")  # imported on first use

if TYPE_CHECKING:
    from parity.definitions import DataSource, FeatureView
    from parity.registry.catalog import Catalog
    from parity.store import FeatureStore

__all__ = [
    "MARKER",
    "SEALED",
    "SEALED_KEY",
    "SealedOnlineStore",
    "SealedRecordBatch",
    "Sealer",
    "encrypted_columns",
    "encrypted_features",
    "open_log",
    "seal_log",
    "sealed_store",
]

SEALED_KEY = "\x00"
"""How the record-body entry holding a record's ``encrypt=True`` features begins: the entry
is ``"\x00name,score"`` -> the values, in that order, sealed together (one AES-GCM value per
record: the cheapest a write can be; no feature name holds ``\x00`` or ``,``). The entry's
name is part of what the value is bound to, with the project and the view."""


def sealed_entry(features: Sequence[str]) -> str:
    return SEALED_KEY + ",".join(features)


def find_entry(body: dict[str, Any]) -> str | None:
    """The sealed entry's name in a record body, None when it has none."""
    for k in body:
        if k[:1] == SEALED_KEY:
            return k
    return None


SEALED = b"parity.sealed"
"""Field metadata of a sealed log column: the column's Arrow type, as text."""
MARKER = ".sealed"

Catalogs = Callable[[], "Catalog"]


def encrypted_features(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """View name -> its ``encrypt=True`` features (views with none left out)."""
    out: dict[str, tuple[str, ...]] = {}
    for view in catalog.views():
        names = tuple(f.name for f in view.features if f.encrypt)
        if names:
            out[view.name] = names
    return out


def encrypted_columns(catalog: Catalog, source: DataSource) -> tuple[str, ...]:
    """The source columns some view of ``source`` encrypts, in first-seen order."""
    cols: dict[str, None] = {}
    for view in catalog.views():
        if view.source_name == source.name:
            for f in view.features:
                if f.encrypt:
                    cols[source.column_for(f.name)] = None
    return tuple(cols)


class _Plan:
    """What is encrypted, per catalog (rebuilt when the catalog object changes)."""

    __slots__ = ("catalog", "views")

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.views = encrypted_features(catalog)


class SealedOnlineStore(OnlineStore):
    """The online store with ``encrypt=True`` features sealed in every record."""

    def __init__(self, inner: OnlineStore, sealer: Sealer, catalogs: Catalogs):
        self.inner = inner
        self.sealer = sealer
        self._catalogs = catalogs
        self._plan: _Plan | None = None

    def __getattr__(self, name: str) -> Any:  # the store's own attributes (path, where...)
        return getattr(self.__dict__["inner"], name)

    def encrypted(self, view: str) -> tuple[str, ...]:
        catalog = self._catalogs()
        plan = self._plan
        if plan is None or plan.catalog is not catalog:
            plan = self._plan = _Plan(catalog)
        return plan.views.get(view, ())

    # -- the contract ----------------------------------------------------------------------
    def setup(self, views: Sequence[OnlineView]) -> None:
        self.inner.setup(views)

    def write(self, view: OnlineView, batch: RecordBatch) -> int:
        if isinstance(batch, SealedRecordBatch) or not batch.records:
            return self.inner.write(view, batch)  # sealed by ingest's encoder: no catalog check
        features = self.encrypted(view.name)
        if features:
            # a write that did not come through ingest's encoder: sealed here, record by record
            records = [r for r in self.reseal(view.name, features, batch.records) if r is not None]
            batch = RecordBatch(batch.keys, batch.event_us, batch.created_us, records)
        return self.inner.write(view, batch)

    def read(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        return self._opened(requests, self.inner.read(requests))

    def delete(self, view: OnlineView, keys: Sequence[bytes]) -> int:
        return self.inner.delete(view, keys)

    def drop_views(self, names: Sequence[str]) -> None:
        self.inner.drop_views(names)

    def teardown(self) -> None:
        self.inner.teardown()

    def close(self) -> None:
        self.inner.close()

    # -- records ---------------------------------------------------------------------------
    def reseal(
        self, view: str, features: Sequence[str], records: Sequence[bytes | None]
    ) -> list[bytes | None]:
        """Records with ``features`` sealed by the active key: plaintext values moved into
        the sealed entry, an entry sealed by another key sealed again; a record already as
        it should be is returned as it is (the same object)."""
        cipher = self.sealer.cipher
        active = cipher.active
        out: list[bytes | None] = []
        pack = msgpack.Packer(use_bin_type=True).pack
        for rec in records:
            if rec is None:
                out.append(None)
                continue
            body = msgpack.unpackb(rec[HEADER:], raw=False)
            plain = {f: body.pop(f) for f in features if f in body}
            entry = find_entry(body)
            blob = None if entry is None else body[entry]
            if not plain and (blob is None or cipher.key_ids([blob])[0] == active):
                out.append(rec)
                continue
            values = {**plain}
            if entry is not None:
                values.update(self._open_entries(view, [(entry, body.pop(entry))])[0])
            names = tuple(values)
            body[sealed_entry(names)] = cipher.seal_many(
                [tuple(values.values())], view, sealed_entry(names)
            )[0]
            out.append(rec[:HEADER] + pack(body))
        return out

    def _open_entries(
        self, view: str, entries: Sequence[tuple[str, bytes]]
    ) -> list[dict[str, Any]]:
        """Each sealed entry (its name, its value) opened into {feature: value}."""
        cipher = self.sealer.cipher
        out: list[dict[str, Any]] = []
        names = None
        for entry, blob in entries:
            if entry != names:  # a batch's records nearly always share one entry name
                names = entry
                features = entry[1:].split(",")
                label = f"view {view!r}, encrypted features ({', '.join(features)})"
            values = cipher.open_many([blob], view, entry, label=label)[0]
            out.append(dict(zip(features, values, strict=True)))
        return out

    def open_records(self, view: str, records: Sequence[bytes | None]) -> list[bytes | None]:
        """Records with their sealed entry opened into the features it holds."""
        unpack = msgpack.unpackb
        bodies = [None if r is None else unpack(r[HEADER:], raw=False) for r in records]
        entries = [None if b is None else find_entry(b) for b in bodies]
        at = [i for i, e in enumerate(entries) if e is not None]
        if not at:
            return list(records)
        opened = self._open_entries(
            view,
            [(entries[i], bodies[i].pop(entries[i])) for i in at],  # type: ignore[union-attr, misc]
        )
        pack = msgpack.Packer(use_bin_type=True).pack
        out = list(records)
        for i, values in zip(at, opened, strict=True):
            body = bodies[i]
            assert body is not None and records[i] is not None
            body.update(values)
            out[i] = records[i][:HEADER] + pack(body)  # type: ignore[index]
        return out

    def _opened(
        self,
        requests: Sequence[tuple[OnlineView, Sequence[bytes]]],
        results: list[list[bytes | None]],
    ) -> list[list[bytes | None]]:
        for i, (view, _) in enumerate(requests):
            if self.encrypted(view.name):
                results[i] = self.open_records(view.name, results[i])
        return results


class SealedRecordBatch(RecordBatch):
    """Records whose ``encrypt=True`` features ingest's encoder sealed already."""


class _SealedUpdate(SupportsUpdate):
    def update(self, view: OnlineView, keys: Sequence[bytes], fn: Any) -> int:
        # Aggregated views (the only users) hold no encrypted features (refused at apply).
        return self.inner.update(view, keys, fn)  # type: ignore[attr-defined]


class _SealedAsync(SupportsAsyncRead):
    async def read_async(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        inner = self.inner  # type: ignore[attr-defined]
        return self._opened(requests, await inner.read_async(requests))  # type: ignore[attr-defined]


class _SealedCompact(SupportsCompact):
    def compact(self) -> None:
        self.inner.compact()  # type: ignore[attr-defined]


class _SealedScan(SupportsKeyScan):
    def scan_keys(self, view: OnlineView) -> Iterator[bytes]:
        return self.inner.scan_keys(view)  # type: ignore[attr-defined, no-any-return]


_ABILITIES: tuple[tuple[type, type], ...] = (
    (SupportsUpdate, _SealedUpdate),
    (SupportsAsyncRead, _SealedAsync),
    (SupportsKeyScan, _SealedScan),
    (SupportsCompact, _SealedCompact),
)
_CLASSES: dict[tuple[bool, ...], type] = {}


def sealed_store(inner: OnlineStore, sealer: Sealer, catalogs: Catalogs) -> SealedOnlineStore:
    """``inner`` wrapped, keeping its abilities (``isinstance`` checks still see them)."""
    key = tuple(isinstance(inner, ability) for ability, _ in _ABILITIES)
    cls = _CLASSES.get(key)
    if cls is None:
        mixins = [m for has, (_, m) in zip(key, _ABILITIES, strict=True) if has]
        cls = _CLASSES[key] = type("SealedOnlineStore", (SealedOnlineStore, *mixins), {})
    return cls(inner, sealer, catalogs)  # type: ignore[no-any-return]


# -- the offline log ------------------------------------------------------------------------
def seal_log(cipher: Cipher, source: str, table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``table`` (one log file's rows) with ``columns`` sealed (scope: the push source)."""
    for name in columns:
        if name not in table.column_names:
            continue
        at = table.schema.get_field_index(name)
        column = table.column(at)
        field = pa.field(name, pa.binary(), metadata={SEALED: str(column.type).encode()})
        table = table.set_column(at, field, cipher.seal_column(column, source, name))
    return table


def _not_finite(column: pa.ChunkedArray | pa.Array) -> bool:
    """Whether a float (or list of floats) column holds NaN or an infinity."""
    t = column.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        column, t = column.flatten(), t.value_type
    if not pa.types.is_floating(t):
        return False
    return bool(pc.any(pc.invert(pc.fill_null(pc.is_finite(column), True))).as_py())


def mark(folder: Path) -> None:
    """Note that ``folder`` holds sealed files (before the first is written)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).touch()


def is_marked(folder: Path) -> bool:
    return (folder / MARKER).exists()


def sealed_fields(schema: pa.Schema) -> Iterator[tuple[int, pa.Field]]:
    for i, f in enumerate(schema):
        if f.metadata and SEALED in f.metadata:
            yield i, f


def open_log(cipher: Cipher | None, source: str, table: pa.Table, path: Path) -> pa.Table:
    """One log file's table with its sealed columns opened (typed as they were)."""
    for at, field in list(sealed_fields(table.schema)):
        if cipher is None:
            raise EncryptionError(
                f"offline log {path}: column {field.name!r} is encrypted and parity.yaml has "
                "no encryption section; configure the keys to read it"
            )
        arrow_type = _parse(field.metadata[SEALED].decode())
        opened = cipher.open_column(table.column(at), arrow_type, source, field.name)
        table = table.set_column(at, pa.field(field.name, arrow_type), opened)
    return table


def _parse(text: str) -> pa.DataType:
    """An Arrow type back from its text (``timestamp[us, tz=UTC]``, ``list<item: double>``)."""
    simple = {
        "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
        "uint8": pa.uint8(), "uint16": pa.uint16(), "uint32": pa.uint32(),
        "uint64": pa.uint64(), "float": pa.float32(), "double": pa.float64(),
        "halffloat": pa.float16(), "bool": pa.bool_(), "string": pa.string(),
        "large_string": pa.large_string(), "binary": pa.binary(),
        "large_binary": pa.large_binary(), "date32[day]": pa.date32(),
        "date64[ms]": pa.date64(),
    }  # fmt: skip
    if text in simple:
        return simple[text]
    if text.startswith("timestamp[") and text.endswith("]"):
        unit, _, tz = text[10:-1].partition(", tz=")
        return pa.timestamp(unit, tz=tz or None)
    for prefix, make in (("list<item: ", pa.list_), ("large_list<item: ", pa.large_list)):
        if text.startswith(prefix) and text.endswith(">"):
            return make(_parse(text[len(prefix) : -1]))
    raise EncryptionError(f"an encrypted log column has a type Parity cannot restore: {text}")


def read_log_file(cipher: Cipher | None, source: str, path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    return open_log(cipher, source, pq.read_table(path), path)


class Sealer:
    """Encryption for one store: its cipher (keys loaded on first need), the online
    wrapper, the log sealer and the log reader the offline engine uses."""

    def __init__(self, store: FeatureStore):
        self._store = store
        self._cipher: Cipher | None = None
        self._lock = threading.Lock()
        self._logs: dict[str, tuple[tuple[Any, ...], pa.Table]] = {}

    @property
    def configured(self) -> bool:
        return self._store.config.encryption is not None

    @property
    def cipher(self) -> Cipher:
        """The project's cipher; ``EncryptionError`` when parity.yaml has no encryption
        section or its keys cannot be loaded."""
        if self._cipher is None:
            config = self._store.config.encryption
            if config is None:
                raise EncryptionError(
                    "encrypted values need keys: add an encryption section (key_file or "
                    "key_env) to parity.yaml"
                )
            self._cipher = Cipher(load_keyring(config, self._store.repo_path), self._store.project)
        return self._cipher

    def encode(
        self, view: FeatureView, ov: OnlineView, batch: pa.Table | pa.RecordBatch, checked: bool
    ) -> RecordBatch:
        """Online records of ``batch`` with the view's ``encrypt=True`` features sealed into
        one entry per record (ingest's encoder: ``parity.ingest.online.Encoder``)."""
        features = tuple(f.name for f in view.features if f.encrypt)
        if not features:
            return encode_batch(batch, ov, checked=checked)
        if not checked and any(_not_finite(batch.column(f)) for f in features):
            return encode_batch(batch, ov, checked=False)  # refused there, naming the entity
        entry = sealed_entry(features)
        cols = [_pylist(batch.column(f)) for f in features]
        sealed = self.cipher.seal_rows(cols, ov.name, entry)
        keep = [f for f in ov.features if f not in features]
        names = [*ov.join_keys, *keep, EVENT_US, CREATED_US]
        table = pa.table([*(batch.column(n) for n in names), sealed], names=[*names, entry])
        inner = replace(ov, features=(*keep, entry))
        rb = encode_batch(table, inner, checked=checked)
        return SealedRecordBatch(rb.keys, rb.event_us, rb.created_us, rb.records)

    def online(self, inner: OnlineStore) -> OnlineStore:
        """``inner`` wrapped to seal and open ``encrypt=True`` features; as it is when
        nothing can be encrypted (no ``encryption`` section, which apply requires for
        ``encrypt=True``, and no such feature registered): then reads pay nothing."""
        if not self.configured and not self._any_registered():
            return inner
        return sealed_store(inner, self, self._store.catalog)

    def _any_registered(self) -> bool:
        try:
            return bool(encrypted_features(self._store.catalog()))
        except Exception:  # the registry cannot be read now: keep the checks, they cost little
            return True

    def log(self, catalog: Catalog, source: DataSource, table: pa.Table, folder: Path) -> pa.Table:
        """A new log file's table with the columns its source's views encrypt sealed."""
        columns = encrypted_columns(catalog, source)
        if not columns:
            return table
        sealed = seal_log(self.cipher, source.name, table, columns)
        mark(folder)
        return sealed

    def read_log(self, source: str, folder: Path) -> pa.Table | None:
        """The plaintext of a log folder that holds sealed files (cached until a file
        changes); None when it holds none."""
        if not is_marked(folder):
            return None
        files = sorted(folder.glob("*.parquet"))
        stamp = tuple((f.name, s.st_mtime_ns, s.st_size) for f in files for s in [f.stat()])
        with self._lock:
            cached = self._logs.get(str(folder))
            if cached is not None and cached[0] == stamp:
                return cached[1]
        cipher = self._cipher if not self.configured else self.cipher
        tables = [read_log_file(cipher, source, f) for f in files]
        table = pa.concat_tables(tables, promote_options="permissive")
        with self._lock:
            self._logs[str(folder)] = (stamp, table)
        return table
