"""A data subject: an entity and some of its keys, and where Parity keeps their rows.

``subject(catalog, "user", [1, 2])`` checks the keys against the entity's join keys (their
declared ``dtype``; a composite entity takes dicts of its join keys) and follows lineage to
every feature view keyed by the entity, alone or with others. ``Subject.rows_of(table,
columns)`` is the Arrow mask of a table's rows that belong to the subject, and
``Subject.owns_key`` tells whether an encoded online key is one of theirs: the parts of a
composite view key that are this entity's join keys must equal the subject's (the other
entities' parts may be anything).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from parity.definitions import DataSource, Entity, FeatureView, FileSource, PushSource
from parity.errors import GovernanceError, ParityError
from parity.online.encoding import encode_key_part
from parity.registry.catalog import Catalog

__all__ = ["Subject", "ViewKeys", "parse_keys", "require_admin", "subject"]

_SEP = b"\x1f"
_PY_TYPES = {"int": int, "string": str, "bytes": bytes}


@dataclass(frozen=True)
class ViewKeys:
    """One view keyed by the subject's entity: its join keys and where the entity's are."""

    view: FeatureView
    join_keys: tuple[str, ...]
    positions: tuple[int, ...]
    """Where the entity's join keys sit in ``join_keys`` (the online key's parts)."""

    @property
    def exact(self) -> bool:
        """Whether the view is keyed by the entity alone (its online keys are the subject's)."""
        return len(self.join_keys) == len(self.positions)


@dataclass(frozen=True)
class Subject:
    """The keys of one entity whose data an erase or export is about."""

    entity: Entity
    keys: tuple[tuple[Any, ...], ...]
    """Each key as its join-key values, in ``entity.join_keys`` order (no repeats)."""
    views: tuple[ViewKeys, ...]
    """Every feature view keyed by the entity (alone or with other entities), by name."""

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(self.entity.join_keys)

    @property
    def view_names(self) -> tuple[str, ...]:
        return tuple(v.view.name for v in self.views)

    def key_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.join_keys, k, strict=True)) for k in self.keys]

    def encoded_parts(self) -> set[tuple[bytes, ...]]:
        """The subject's keys as encoded online-key parts (``parity.online.encoding``)."""
        return {
            tuple(encode_key_part(v, n) for v, n in zip(k, self.join_keys, strict=True))
            for k in self.keys
        }

    def owns_key(self, key: bytes, vk: ViewKeys, parts: set[tuple[bytes, ...]]) -> bool:
        """Whether the encoded online key ``key`` of view ``vk`` is one of the subject's."""
        n = len(vk.join_keys)
        if key.count(_SEP) == n - 1:
            return _owned(key.split(_SEP), vk.positions, parts)
        # A text part holding the separator: try every split into n tagged parts.
        cuts = [i for i, b in enumerate(key) if b == _SEP[0]]
        for chosen in itertools.combinations(cuts, n - 1):
            bounds = [-1, *chosen, len(key)]
            split = [key[a + 1 : b] for a, b in itertools.pairwise(bounds)]
            if all(p[:1] in (b"i", b"s", b"b") for p in split) and _owned(
                split, vk.positions, parts
            ):
                return True
        return False

    def rows_of(self, table: pa.Table, columns: Sequence[str]) -> pa.ChunkedArray | None:
        """A boolean mask of ``table``'s rows whose ``columns`` (the entity's join keys as
        the table names them, in order) hold one of the subject's keys; None when the table
        lacks one of those columns (it holds nothing keyed by the entity)."""
        if any(c not in table.column_names for c in columns):
            return None
        mask: Any = None
        if len(columns) == 1:
            return _is_in(table.column(columns[0]), [k[0] for k in self.keys])
        for key in self.keys:  # composite keys: few per request, so one pass per key
            hit: Any = None
            for col, value in zip(columns, key, strict=True):
                eq = _is_in(table.column(col), [value])
                hit = eq if hit is None else pc.and_kleene(hit, eq)
            mask = hit if mask is None else pc.or_kleene(mask, hit)
        return pc.fill_null(mask, False)

    def source_columns(self, source: DataSource) -> list[str]:
        """The entity's join keys as ``source``'s files name them (its ``field_mapping``)."""
        return [source.column_for(k) for k in self.join_keys]


def _owned(split: list[bytes], positions: Sequence[int], parts: set[tuple[bytes, ...]]) -> bool:
    return tuple(split[i] for i in positions) in parts


def _is_in(column: pa.ChunkedArray | pa.Array, values: list[Any]) -> pa.ChunkedArray:
    """``column``'s rows equal to one of ``values`` (values the column's type cannot hold
    match nothing); null rows are False."""
    typ = column.type
    if pa.types.is_dictionary(typ):
        column = column.cast(typ.value_type)
        typ = typ.value_type
    fitting = []
    for v in values:
        if not _same_kind(v, typ):  # 1 never matches the text "1": they are other keys
            continue
        try:
            fitting.append(pa.scalar(v).cast(typ))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OverflowError):
            continue
    if not fitting:
        return pc.is_in(column, value_set=pa.array([], typ))
    return pc.fill_null(pc.is_in(column, value_set=pa.array(fitting, typ)), False)


def _same_kind(value: Any, typ: pa.DataType) -> bool:
    if isinstance(value, int):
        return pa.types.is_integer(typ)
    if isinstance(value, str):
        return pa.types.is_string(typ) or pa.types.is_large_string(typ)
    return pa.types.is_binary(typ) or pa.types.is_large_binary(typ)


def subject(catalog: Catalog, entity: str, keys: Iterable[Any]) -> Subject:
    """The subject ``keys`` of ``entity`` name, checked; ``GovernanceError`` naming the
    entity and the first bad key (of another type than the join key's, null, missing a join
    key of a composite entity) and nothing done."""
    try:
        ent = catalog.entity(entity)
    except ParityError as exc:
        raise GovernanceError(str(exc)) from None
    if isinstance(keys, str | bytes | Mapping) or not isinstance(keys, Iterable):
        raise GovernanceError(
            f"entity {entity!r}: keys must be a list of key values, not {type(keys).__name__}"
        )
    keys = list(keys)  # a tuple, a set, a NumPy array or a pandas Series too
    if not keys:
        raise GovernanceError(f"entity {entity!r}: give at least one key")
    names = list(ent.join_keys)
    want = _PY_TYPES.get(getattr(ent.dtype, "kind", ""))
    out: list[tuple[Any, ...]] = []
    for i, key in enumerate(keys):
        if isinstance(key, Mapping):
            missing = [n for n in names if n not in key]
            extra = sorted(set(key) - set(names))
            if missing or extra:
                raise GovernanceError(
                    f"entity {entity!r}: key {i} ({key!r}) must give exactly its join keys "
                    f"{names}" + (f"; it lacks {missing}" if missing else f"; not {extra}")
                )
            values = tuple(key[n] for n in names)
        elif len(names) == 1:
            values = (key,)
        else:
            raise GovernanceError(
                f"entity {entity!r}: key {i} ({key!r}): a composite key is a dict of {names}"
            )
        values = tuple(_checked(v, n, want, entity, i) for v, n in zip(values, names, strict=True))
        if values not in out:
            out.append(values)
    return Subject(ent, tuple(out), _views(catalog, ent))


def _checked(value: Any, name: str, want: type | None, entity: str, i: int) -> Any:
    if hasattr(value, "item") and not isinstance(value, bytes | str):  # numpy scalars
        value = value.item()
    where = f"entity {entity!r}: key {i}, join key {name!r}"
    if value is None:
        raise GovernanceError(f"{where} is null")
    if isinstance(value, bool) or not isinstance(value, int | str | bytes):
        raise GovernanceError(
            f"{where} is {value!r} ({type(value).__name__}); keys are integers, text or bytes"
        )
    if want is not None and type(value) is not want:
        hint = f"; pass int({value!r})" if want is int and isinstance(value, str) else ""
        raise GovernanceError(
            f"{where} is {value!r} ({type(value).__name__}), but the entity's join keys are "
            f"{want.__name__}{hint}"
        )
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise GovernanceError(f"{where} is {value}, outside Int64")
    return value


def _views(catalog: Catalog, ent: Entity) -> tuple[ViewKeys, ...]:
    out = []
    for fv in catalog.views():
        if ent.name not in fv.entity_names:
            continue
        join_keys = tuple(catalog.join_keys_of(fv))
        positions = tuple(join_keys.index(k) for k in ent.join_keys)
        out.append(ViewKeys(fv, join_keys, positions))
    return tuple(out)


def require_admin(store: Any, views: Sequence[FeatureView]) -> None:
    """Refuse (``PermissionDeniedError``, audited by the access policy) unless the actor
    may ``admin`` every one of ``views``: what erase, export and retention need when auth is
    on (the erase's write hook checks the same)."""
    access = store.governance.access
    if not access.enabled:
        return
    from parity.governance.access import Resource

    access.check(
        store.actor, "admin", [Resource("feature_view", v.name, dict(v.tags)) for v in views]
    )


def parse_keys(catalog: Catalog, entity: str, texts: Sequence[str]) -> list[Any]:
    """Keys typed on a command line, as the entity's join keys' values: its ``dtype`` when
    declared; else integers when every key reads as one, text otherwise. A composite
    entity's key is ``k1=v1;k2=v2``."""
    try:
        ent = catalog.entity(entity)
    except ParityError as exc:
        raise GovernanceError(str(exc)) from None
    kind = getattr(ent.dtype, "kind", None)
    parts = [_split(t, ent, i) for i, t in enumerate(texts)]
    for name in ent.join_keys:
        column = [p[name] for p in parts]
        typed = _typed(column, kind, name, entity)
        for p, v in zip(parts, typed, strict=True):
            p[name] = v
    if len(ent.join_keys) == 1:
        return [p[ent.join_keys[0]] for p in parts]
    return parts


def _split(text: str, ent: Entity, i: int) -> dict[str, Any]:
    if len(ent.join_keys) == 1:
        return {ent.join_keys[0]: text.strip()}
    out: dict[str, Any] = {}
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not eq or name.strip() not in ent.join_keys:
            raise GovernanceError(
                f"entity {ent.name!r}: key {i} ({text!r}) must be "
                + ";".join(f"{k}=VALUE" for k in ent.join_keys)
            )
        out[name.strip()] = value.strip()
    missing = [k for k in ent.join_keys if k not in out]
    if missing:
        raise GovernanceError(f"entity {ent.name!r}: key {i} ({text!r}) lacks {missing}")
    return out


def _typed(values: list[str], kind: str | None, name: str, entity: str) -> list[Any]:
    if kind == "int" or (kind is None and all(_is_int(v) for v in values)):
        for v in values:
            if not _is_int(v):
                raise GovernanceError(
                    f"entity {entity!r}: join key {name!r} is an integer, not {v!r}"
                )
        return [int(v) for v in values]
    if kind == "bytes":
        try:
            return [bytes.fromhex(v) for v in values]
        except ValueError:
            raise GovernanceError(
                f"entity {entity!r}: join key {name!r} holds bytes: give them as hex"
            ) from None
    return list(values)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def sources_of(catalog: Catalog, subject: Subject) -> list[DataSource]:
    """Every source feeding a view keyed by the subject's entity, each once, by name."""
    found: dict[str, DataSource] = {}
    for vk in subject.views:
        source = catalog.source_of(vk.view)
        found.setdefault(source.name, source)
    return [found[n] for n in sorted(found)]


def batch_file_source(source: DataSource) -> FileSource | None:
    """The files behind a source: itself (a file source) or a push source's batch source."""
    if isinstance(source, FileSource):
        return source
    if isinstance(source, PushSource) and isinstance(source.batch_source, FileSource):
        return source.batch_source
    return None
