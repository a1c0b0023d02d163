"""Restriction of processing (the data subject's right to restrict, or to object).

::

    store.governance.restrict("user", [1, 2], reason="ticket 1234")   # newly restricted: 2
    store.governance.restrictions("user")                             # [Restriction(...)]
    store.governance.lift("user", [1])

A restricted key's features are served masked on every read path (Python and HTTP online,
historical retrieval) for every feature of every view keyed by its entity, on-demand views
computed from them included, unless the reader has ``admin`` (with auth off nobody is
admin: they stay masked). ``restricted_keys(store, entity)`` gives them to export and to
training snapshots. Restrictions live in the registry database (``parity_restrictions``),
so they survive restarts and reach every process: a process reads them again at most every
``masking.restrictions_refresh_seconds`` (at once after its own changes). With auth on,
restricting and lifting need ``admin`` on the entity; each is recorded in the audit log
(counts only: never the keys).

Keys are typed by the entity: Int64 keys are ints, String keys strings; an entity with
several join keys takes a tuple per key, in join-key order. Stored as canonical JSON text.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from parity.errors import GovernanceError, ObjectNotFoundError
from parity.governance.access import Resource
from parity.registry.engine import insert_for
from parity.registry.models import projects
from parity.registry.models import restrictions as table

if TYPE_CHECKING:
    from parity.definitions import Entity
    from parity.store import FeatureStore

__all__ = [
    "Restriction",
    "Restrictions",
    "canonical_key",
    "lift",
    "parse_keys",
    "restrict",
    "restricted_keys",
    "restrictions",
    "snapshot",
]

Key = Any
"""A typed entity key: a value, or a tuple for an entity with several join keys."""

_MAX_KEY_TEXT = 512  # the column's width


@dataclass(frozen=True)
class Restriction:
    """One restricted entity key."""

    entity: str
    key: Key
    restricted_at: datetime
    restricted_by: str
    reason: str


# -- keys ---------------------------------------------------------------------------------


def _entity(store: FeatureStore, entity: str) -> Entity:
    try:
        return store.catalog().entity(entity)
    except ObjectNotFoundError as exc:
        raise GovernanceError(f"restrict: {exc}") from None


def _check_part(value: Any, dtype: Any, key_name: str, where: str) -> Any:
    kind = getattr(dtype, "kind", None)
    if hasattr(value, "item") and not isinstance(value, bytes | str):  # numpy scalars
        value = value.item()
    if value is None:
        raise GovernanceError(f"{where}: {key_name!r} is null")
    if kind == "int" and (type(value) is not int):
        raise GovernanceError(f"{where}: {key_name!r} is {value!r}; the entity's keys are {dtype}")
    if kind == "string" and type(value) is not str:
        raise GovernanceError(f"{where}: {key_name!r} is {value!r}; the entity's keys are {dtype}")
    if kind is None and type(value) not in (int, str):
        raise GovernanceError(f"{where}: {key_name!r} is {value!r}; give an int or a string")
    return value


def typed_keys(entity: Entity, keys: Sequence[Any]) -> list[Key]:
    """``keys`` checked against ``entity``'s join keys and type; ``GovernanceError`` naming
    every bad one (nothing is changed then)."""
    if isinstance(keys, str | bytes) or not isinstance(keys, Sequence):
        raise GovernanceError(f"entity {entity.name!r}: keys must be a list, got {keys!r}")
    if not keys:
        raise GovernanceError(f"entity {entity.name!r}: no keys given")
    names = entity.join_keys
    out, bad = [], []
    for i, key in enumerate(keys):
        where = f"entity {entity.name!r} key {i} ({key!r})"
        try:
            if len(names) == 1:
                out.append(_check_part(key, entity.dtype, names[0], where))
                continue
            if not isinstance(key, tuple | list) or len(key) != len(names):
                raise GovernanceError(f"{where}: give one value for each join key {names}")
            out.append(
                tuple(
                    _check_part(v, entity.dtype, n, where) for v, n in zip(key, names, strict=True)
                )
            )
        except GovernanceError as exc:
            bad.append(str(exc))
    if bad:
        raise GovernanceError("; ".join(bad))
    return list(dict.fromkeys(out))


def canonical_key(key: Key) -> str:
    """The stored text of a typed key: its JSON (a list for several join keys)."""
    return json.dumps(list(key) if isinstance(key, tuple) else key, separators=(",", ":"))


def _from_text(text: str) -> Key:
    value = json.loads(text)
    return tuple(value) if isinstance(value, list) else value


def parse_keys(entity: Entity, text: str) -> list[Key]:
    """``--keys 1,2`` typed by the entity (``1:7,2:8`` for two join keys); ``GovernanceError``
    naming a key that does not parse."""
    kind = getattr(entity.dtype, "kind", None)
    out: list[Any] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        parts = item.split(":") if len(entity.join_keys) > 1 else [item]
        typed: list[Any] = []
        for part in parts:
            if kind == "int" or (kind is None and part.lstrip("-").isdigit()):
                try:
                    typed.append(int(part))
                except ValueError:
                    raise GovernanceError(
                        f"entity {entity.name!r}: key {item!r} is not an integer ({entity.dtype})"
                    ) from None
            else:
                typed.append(part)
        out.append(tuple(typed) if len(entity.join_keys) > 1 else typed[0])
    return typed_keys(entity, out)


# -- changing and reading -----------------------------------------------------------------


def _authorize(store: FeatureStore, entity: Entity, action: str) -> None:
    gov = store.governance
    gov.access.check(store.actor, action, [Resource("entity", entity.name, entity.tags)])


def restrict(store: FeatureStore, entity: str, keys: Sequence[Any], *, reason: str = "") -> int:
    """Restrict processing of ``keys`` of ``entity``; how many were not restricted before."""
    ent = _entity(store, entity)
    _authorize(store, ent, "admin")
    typed = typed_keys(ent, keys)
    texts = [canonical_key(k) for k in typed]
    long = [t for t in texts if len(t) > _MAX_KEY_TEXT]
    if long:
        raise GovernanceError(
            f"entity {entity!r}: {len(long)} key(s) longer than {_MAX_KEY_TEXT} characters"
        )
    reg = store.registry
    reg._create()
    now = datetime.now(UTC)
    by = store.actor.principal
    with reg._write(f"restrict keys of {entity!r}") as conn:
        insert = insert_for(conn)
        conn.execute(
            insert(projects)
            .values(project=reg.project, revision=0, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["project"])
        )
        had = set(
            conn.execute(
                sa.select(table.c.entity_key).where(
                    table.c.project == reg.project,
                    table.c.entity == entity,
                    table.c.entity_key.in_(texts),
                )
            ).scalars()
        )
        new = [t for t in texts if t not in had]
        if new:
            conn.execute(
                table.insert(),
                [
                    {
                        "project": reg.project,
                        "entity": entity,
                        "entity_key": t,
                        "restricted_at": now,
                        "restricted_by": by,
                        "reason": reason,
                    }
                    for t in new
                ],
            )
    changed()
    # after the commit: the audit log's writer takes the registry's write lock itself
    store.governance.audit.record(
        action="restrict",
        resources=[f"entity:{entity}"],
        counts={"keys": len(texts), "new": len(new)},
        detail=reason,
    )
    return len(new)


def lift(store: FeatureStore, entity: str, keys: Sequence[Any]) -> int:
    """Lift the restriction of ``keys`` of ``entity``; how many were restricted."""
    ent = _entity(store, entity)
    _authorize(store, ent, "admin")
    texts = [canonical_key(k) for k in typed_keys(ent, keys)]
    reg = store.registry
    if not reg._ready():
        return 0
    with reg._write(f"lift restrictions of {entity!r}") as conn:
        gone = conn.execute(
            table.delete().where(
                table.c.project == reg.project,
                table.c.entity == entity,
                table.c.entity_key.in_(texts),
            )
        ).rowcount
    changed()
    store.governance.audit.record(
        action="lift", resources=[f"entity:{entity}"], counts={"keys": len(texts), "lifted": gone}
    )
    return int(gone)


def restrictions(store: FeatureStore, entity: str | None = None) -> list[Restriction]:
    """The restricted keys (of ``entity``, else of every entity the actor may describe),
    by entity, time and key."""
    reg = store.registry
    if entity is not None:
        ent = _entity(store, entity)
        _authorize(store, ent, "describe")
    if not reg._ready():
        return []
    query = sa.select(table).where(table.c.project == reg.project)
    if entity is not None:
        query = query.where(table.c.entity == entity)
    with reg._read("read restrictions") as conn:
        rows = conn.execute(
            query.order_by(table.c.entity, table.c.restricted_at, table.c.entity_key)
        ).all()
    if entity is None and store.governance.access.enabled:  # what the actor may describe
        rows = [r for r in rows if _may_describe(store, r.entity)]
    return [
        Restriction(
            r.entity,
            _from_text(r.entity_key),
            _utc(r.restricted_at),
            r.restricted_by,
            r.reason,
        )
        for r in rows
    ]


def _may_describe(store: FeatureStore, entity: str) -> bool:
    catalog = store.catalog()
    tags = catalog.entity(entity).tags if catalog.has("entity", entity) else {}
    resource = Resource("entity", entity, tags)
    return bool(store.governance.access.allows(store.actor, "describe", resource))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def restricted_keys(store: FeatureStore, entity: str) -> frozenset[Key]:
    """The restricted keys of ``entity`` as typed keys (for export and training snapshots)."""
    return snapshot(store).get(entity, frozenset())


# -- what the read path sees --------------------------------------------------------------

_GENERATION = [0]
_GEN_LOCK = threading.Lock()


def changed() -> None:
    """This process changed restrictions: every store reads them again on its next read."""
    with _GEN_LOCK:
        _GENERATION[0] += 1


class Restrictions:
    """The restricted keys of one store's project, re-read at most every ``ttl`` seconds
    (and at once after a change made in this process)."""

    def __init__(self, store: FeatureStore):
        self._store = weakref.ref(store)
        self._ttl = store.config.masking.restrictions_refresh_seconds
        self._keys: Mapping[str, frozenset[Key]] = {}
        self._read_at = -float("inf")
        self._generation = -1
        self._lock = threading.Lock()

    def get(self) -> Mapping[str, frozenset[Key]]:
        """Restricted keys by entity (entities without any are absent)."""
        now = time.monotonic()
        if now - self._read_at < self._ttl and self._generation == _GENERATION[0]:
            return self._keys
        with self._lock:
            if now - self._read_at < self._ttl and self._generation == _GENERATION[0]:
                return self._keys
            generation = _GENERATION[0]
            store = self._store()
            self._keys = {} if store is None else _read_all(store)
            self._read_at, self._generation = time.monotonic(), generation
            return self._keys


def _read_all(store: FeatureStore) -> dict[str, frozenset[Key]]:
    reg = store.registry
    if not reg._ready():
        return {}
    query = sa.select(table.c.entity, table.c.entity_key).where(table.c.project == reg.project)
    with reg._read("read restrictions") as conn:
        rows = conn.execute(query).all()
    found: dict[str, set[Key]] = {}
    for entity, text in rows:
        found.setdefault(entity, set()).add(_from_text(text))
    return {e: frozenset(k) for e, k in found.items()}


_BY_STORE: weakref.WeakKeyDictionary[FeatureStore, Restrictions] = weakref.WeakKeyDictionary()
_BY_STORE_LOCK = threading.Lock()


def for_store(store: FeatureStore) -> Restrictions:
    """The restriction cache of ``store`` (one per store)."""
    found = _BY_STORE.get(store)
    if found is None:
        with _BY_STORE_LOCK:
            found = _BY_STORE.get(store)
            if found is None:
                found = _BY_STORE[store] = Restrictions(store)
    return found


def snapshot(store: FeatureStore) -> Mapping[str, frozenset[Key]]:
    """Restricted keys by entity, as the read path sees them now."""
    return for_store(store).get()
