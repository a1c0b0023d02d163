"""Key rotation and key status (``parity keys rotate`` / ``parity keys status``).

To rotate: add a new key to the keyring and make it active (keep the old one listed), so
new writes seal with it; run ``rotate``: every stored encrypted value sealed with another
key (or stored in plaintext, from before its field was ``encrypt=True``) is sealed again
with the active key, online (per record, atomically: the store's ``update``) and in the
offline log (each file rewritten atomically, ``parity.offline.log.rewrite``). Reads accept
every key in the keyring meanwhile, so nothing stops. Once ``status`` shows no value under
the old key, remove it from the keyring.

Online rotation needs a store that can list its keys (``SupportsKeyScan``: SQLite, Redis);
a store that ``SupportsCompact`` (SQLite) is compacted afterwards, so no old page keeps a
value under the old key (or in plaintext).
A Redis record rewritten by the rotation starts its key expiry again (the reader still
expires it by its event time, as always).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack
import pyarrow as pa
import pyarrow.parquet as pq

from parity.errors import GovernanceError
from parity.governance.access import Resource
from parity.governance.crypto import Cipher
from parity.governance.sealing import (
    SealedOnlineStore,
    encrypted_columns,
    encrypted_features,
    find_entry,
    mark,
    open_log,
    seal_log,
    sealed_fields,
)
from parity.offline import log
from parity.online.base import (
    OnlineView,
    RecordBatch,
    SupportsCompact,
    SupportsKeyScan,
    SupportsUpdate,
)
from parity.online.encoding import HEADER, record_times
from parity.progress import progress_bar

if TYPE_CHECKING:
    from parity.definitions import PushSource
    from parity.store import FeatureStore

__all__ = ["KeyStatus", "KeyUsage", "PlaceRotation", "Rotation", "rotate", "status"]


@dataclass(frozen=True)
class PlaceRotation:
    """What rotation did in one place: ``online`` (a view: records) or ``offline_log``
    (a push source: files)."""

    place: str
    name: str
    examined: int
    rewritten: int


@dataclass(frozen=True)
class Rotation:
    """What ``rotate`` did, per place; every value is now sealed with ``active``."""

    active: str
    places: tuple[PlaceRotation, ...]

    @property
    def rewritten(self) -> int:
        return sum(p.rewritten for p in self.places)


@dataclass(frozen=True)
class KeyUsage:
    """How many stored values of one field each key sealed (``plaintext``: not sealed)."""

    place: str
    name: str
    field: str
    by_key: Mapping[str, int] = dataclasses.field(default_factory=dict)
    plaintext: int = 0


@dataclass(frozen=True)
class KeyStatus:
    """The keyring (ids only, never keys) and what each key sealed."""

    active: str
    keys: tuple[str, ...]
    where: str
    usage: tuple[KeyUsage, ...]

    def values_under(self, key_id: str) -> int:
        return sum(u.by_key.get(key_id, 0) for u in self.usage)


def _sealer_of(store: FeatureStore) -> tuple[Cipher, SealedOnlineStore]:
    cipher = store._sealer.cipher  # EncryptionError when parity.yaml has no keys
    online = store.online
    while not isinstance(online, SealedOnlineStore):  # a wrapper around ours (the server's)
        inner = getattr(online, "inner", None) or getattr(online, "_inner", None)
        if inner is None:
            raise GovernanceError("the online store is not Parity's encrypting store")
        online = inner
    return cipher, online


def _check_admin(store: FeatureStore, views: Iterable[Any]) -> None:
    access = store.governance.access
    if access.enabled:
        resources = [Resource("feature_view", v.name, v.tags) for v in views]
        access.check(store.actor, "admin", resources or [Resource("project", store.project)])


# -- rotation ---------------------------------------------------------------------------------
def rotate(store: FeatureStore, *, progress: bool = False) -> Rotation:
    """Seal every stored encrypted value with the active key; see the module docstring."""
    cipher, sealed = _sealer_of(store)
    catalog = store.catalog(fresh=True)
    views = encrypted_features(catalog)
    _check_admin(store, [catalog.view(v) for v in views])
    places: list[PlaceRotation] = []
    with progress_bar(progress, unit="records") as counter:
        for name, features in views.items():
            view = catalog.view(name)
            if not view.online:
                continue
            ov = OnlineView.of(view, catalog.join_keys_of(view))
            places.append(_rotate_view(sealed, ov, features, counter))
        for source in _push_sources(store):
            done = _rotate_log(store, cipher, source, encrypted_columns(catalog, source), counter)
            if done is not None:
                places.append(done)
    if isinstance(sealed.inner, SupportsCompact) and any(
        p.rewritten for p in places if p.place == "online"
    ):
        sealed.inner.compact()  # no copy of a value under the old key (or plaintext) stays
    result = Rotation(cipher.active, tuple(places))
    store.governance.audit.record(
        action="rotate_keys",
        resources=[
            f"{'feature_view' if p.place == 'online' else 'source'}:{p.name}" for p in places
        ],
        counts={"rewritten": result.rewritten, "examined": sum(p.examined for p in places)},
        detail=f"active key {cipher.active}",
    )
    return result


def _rotate_view(
    sealed: SealedOnlineStore,
    ov: OnlineView,
    features: tuple[str, ...],
    counter: Any,
) -> PlaceRotation:
    inner = sealed.inner
    if not isinstance(inner, SupportsKeyScan):
        raise GovernanceError(
            f"view {ov.name!r}: the online store ({type(inner).__name__}) cannot list its keys, "
            "so its values cannot be re-encrypted in place; materialize the view again instead"
        )
    examined = rewritten = 0

    def reseal(keys: Any, records: list[bytes | None]) -> list[bytes | None]:
        return sealed.reseal(ov.name, features, records)

    for keys in _chunks(inner.scan_keys(ov)):
        examined += len(keys)
        if isinstance(inner, SupportsUpdate):
            rewritten += inner.update(ov, keys, reseal)
        else:  # the same (event, created) times: the rewrite replaces the record
            old = inner.read([(ov, keys)])[0]
            new = reseal(keys, old)
            todo = [
                (k, n) for k, o, n in zip(keys, old, new, strict=True) if n is not None and n != o
            ]
            times = [record_times(n) for _, n in todo]
            batch = RecordBatch(
                [k for k, _ in todo],
                [t[0] for t in times],
                [t[1] for t in times],
                [n for _, n in todo],
            )
            rewritten += inner.write(ov, batch)
        if counter is not None:
            counter(f"online {ov.name}", len(keys))
    return PlaceRotation("online", ov.name, examined, rewritten)


def _push_sources(store: FeatureStore) -> list[PushSource]:
    from parity.definitions import PushSource

    root = store.config.resolve(store.config.offline_log)
    return [
        s
        for s in store.catalog().objects["source"].values()
        if isinstance(s, PushSource) and log.has_files(log.log_dir(root, s.name))
    ]


def _stale(cipher: Cipher, table: pa.Table, columns: Iterable[str]) -> bool:
    """Whether a log file holds a value not sealed by the active key."""
    sealed = {f.name for _, f in sealed_fields(table.schema)}
    if any(c in table.column_names and c not in sealed for c in columns):
        return True
    active = cipher.active
    for name in sealed:
        ids = cipher.key_ids(table.column(name).to_pylist())
        if any(i is not None and i != active for i in ids):
            return True
    return False


def _rotate_log(
    store: FeatureStore, cipher: Cipher, source: PushSource, columns: tuple[str, ...], counter: Any
) -> PlaceRotation | None:
    folder = log.log_dir(store.config.resolve(store.config.offline_log), source.name)
    files = sorted(folder.glob("*.parquet"))
    sealed_any = False
    examined = rewritten = 0
    for path in files:
        schema = pq.read_schema(path)
        was_sealed = [f.name for _, f in sealed_fields(schema)]
        if not was_sealed and not any(c in schema.names for c in columns):
            continue
        sealed_any = True
        examined += 1
        table = pq.read_table(path)
        if not _stale(cipher, table, columns):
            continue
        keep = tuple(dict.fromkeys([*columns, *was_sealed]))  # sealed stays sealed

        def change(t: pa.Table, keep: tuple[str, ...] = keep, path: Any = path) -> pa.Table:
            return seal_log(cipher, source.name, open_log(cipher, source.name, t, path), keep)

        mark(folder)
        log.rewrite(path, change)
        rewritten += 1
        if counter is not None:
            counter(f"offline log {source.name}", table.num_rows)
    if not sealed_any:
        return None
    return PlaceRotation("offline_log", source.name, examined, rewritten)


# -- status -----------------------------------------------------------------------------------
def status(store: FeatureStore) -> KeyStatus:
    """The keyring's ids and, per encrypted field, how many values each key sealed."""
    cipher, sealed = _sealer_of(store)
    catalog = store.catalog(fresh=True)
    usage: list[KeyUsage] = []
    for name, features in encrypted_features(catalog).items():
        view = catalog.view(name)
        inner = sealed.inner
        if not view.online or not isinstance(inner, SupportsKeyScan):
            continue
        ov = OnlineView.of(view, catalog.join_keys_of(view))
        counts: dict[str, int] = {}
        plain = {"*": 0}
        for keys in _chunks(inner.scan_keys(ov)):
            for rec in inner.read([(ov, keys)])[0]:
                if rec is None:
                    continue
                body = msgpack.unpackb(rec[HEADER:], raw=False)
                entry = find_entry(body)
                _tally(cipher, None if entry is None else body[entry], counts, plain, "*")
                if any(body.get(f) is not None for f in features):
                    plain["*"] += 1  # a feature stored before it was encrypt=True
        usage.append(KeyUsage("online", name, ", ".join(features), counts, plain["*"]))
    for source in _push_sources(store):
        folder = log.log_dir(store.config.resolve(store.config.offline_log), source.name)
        columns = encrypted_columns(catalog, source)
        lcounts: dict[str, dict[str, int]] = {}
        lplain: dict[str, int] = {}
        for path in sorted(folder.glob("*.parquet")):
            table = pq.read_table(path)
            names = [*columns, *(f.name for _, f in sealed_fields(table.schema))]
            for c in dict.fromkeys(names):
                if c not in table.column_names:
                    continue
                lcounts.setdefault(c, {})
                lplain.setdefault(c, 0)
                for v in table.column(c).to_pylist():
                    _tally(cipher, v, lcounts[c], lplain, c)
        usage += [KeyUsage("offline_log", source.name, c, lcounts[c], lplain[c]) for c in lcounts]
    ring = cipher.keyring
    return KeyStatus(ring.active, tuple(ring.keys), ring.where, tuple(usage))


def _tally(
    cipher: Cipher, value: Any, counts: dict[str, int], plain: dict[str, int], f: str
) -> None:
    if value is None:
        return
    kid = cipher.key_ids([value])[0]
    if kid is None:
        plain[f] += 1
    else:
        counts[kid] = counts.get(kid, 0) + 1


def _chunks(keys: Iterator[bytes], size: int = 1000) -> Iterator[list[bytes]]:
    """A view's keys ``size`` at a time (one read and one update per chunk)."""
    chunk: list[bytes] = []
    for key in keys:
        chunk.append(key)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
