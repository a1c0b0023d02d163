"""A snapshot's manifest: one row of ``parity_snapshots`` per (project, name), read and
written here.

The columns hold what a listing shows (digest, file, rows, description, who and when, the
registry revision, the features); ``manifest`` (JSON) holds the rest::

    {"format": 1,
     "scheme": "parity-table-sha256/1",          # parity.snapshots.digest
     "columns": [{"name", "type", "sha256"}],     # every column's digest, in order
     "request": {"features", "full_feature_names", "timestamp_column"},
     "entities": {"sha256", "rows", "columns", "excluded_restricted"},
     "objects": [{"kind", "name", "version", "number"}],   # every object the join used
     "sources": [{"source", "files": [{"path", "size", "mtime_ns", "how", "digest", "rows"}]}],
     "functions": [{"view", "function", "code_hash"}],     # on-demand views' functions
     "profile": [...],                            # monitoring's statistics of each feature
     "erasures": [{"at", "entity", "keys", "rows", "previous_digest"}]}

``entities.sha256`` is the digest of the entity frame as the caller gave it; the rows the
snapshot holds are its rows less the restricted ones left out (``excluded_restricted``).
The snapshot's own file holds the entity frame's columns first (``entities.columns``), then
the features: what ``recreate`` joins again.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from parity.errors import ObjectNotFoundError, SnapshotError
from parity.registry.models import snapshots as table
from parity.snapshots.digest import SCHEME, ColumnDigest, TableDigest
from parity.snapshots.fingerprint import SourceFiles

if TYPE_CHECKING:
    from parity.registry.registry import Registry
    from parity.store import FeatureStore

__all__ = [
    "FORMAT",
    "NAME",
    "Snapshot",
    "check_name",
    "exists",
    "find",
    "folder",
    "get",
    "jsonable",
    "list_all",
    "list_registry",
    "listed",
    "new_manifest",
    "referenced",
    "save",
    "shown",
    "update",
    "with_manifest",
]

FORMAT = 1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""What a snapshot's name may be: letters, digits, ``_``, ``.``, ``-``, at most 128."""


@dataclass(frozen=True)
class Snapshot:
    """One training snapshot: its content-addressed file and the manifest (see the module)."""

    name: str
    digest: str
    path: str
    """The Parquet file, relative to the repo folder when it is inside it."""
    rows: int
    description: str
    created_at: datetime
    created_by: str
    revision: int
    """The registry revision whose definitions made it."""
    features: tuple[str, ...]
    """Every feature it holds, as ``view:feature``."""
    manifest: Mapping[str, Any]

    def file(self, store: FeatureStore) -> Path:
        return store.config.resolve(self.path)

    @property
    def content(self) -> TableDigest:
        """The digest the file must have (every column's too)."""
        columns = tuple(
            ColumnDigest(c["name"], c["type"], c["sha256"]) for c in self.manifest["columns"]
        )
        return TableDigest(self.digest, self.rows, columns)

    @property
    def entity_columns(self) -> tuple[str, ...]:
        return tuple(self.manifest["entities"]["columns"])

    @property
    def objects(self) -> list[dict[str, Any]]:
        """``{"kind", "name", "version", "number"}`` of every object the join used."""
        return list(self.manifest["objects"])

    @property
    def sources(self) -> list[SourceFiles]:
        return [SourceFiles.from_json(s) for s in self.manifest["sources"]]

    @property
    def functions(self) -> list[dict[str, str]]:
        return list(self.manifest.get("functions", []))

    @property
    def profile(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("profile", []))

    @property
    def erasures(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("erasures", []))

    def to_json(self) -> dict[str, Any]:
        """Everything, as JSON values (times as ISO 8601 UTC)."""
        return {
            "name": self.name,
            "digest": self.digest,
            "path": self.path,
            "rows": self.rows,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revision": self.revision,
            "features": list(self.features),
            "manifest": dict(self.manifest),
        }


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SnapshotError(
            f"snapshot name {name!r}: letters, digits, '_', '.' and '-', starting with a letter "
            "or digit, at most 128 characters"
        )
    return name


def folder(store: FeatureStore) -> Path:
    """Where the snapshots' files go (``snapshots.path`` in ``parity.yaml``)."""
    return store.config.resolve(store.config.snapshots.path)


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as None and times as ISO text: what a JSON column
    of SQLite and PostgreSQL alike, and a registry export, can hold."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


# -- the table -------------------------------------------------------------------------------


def list_all(store: FeatureStore) -> list[Snapshot]:
    """Every snapshot of the project, by name."""
    return list_registry(store.registry)


def list_registry(reg: Registry) -> list[Snapshot]:
    """Every snapshot of ``reg``'s project, by name: one query, no file read (what impact
    analysis weighs a plan against; none when the registry does not exist yet)."""
    if not reg._ready():
        return []
    query = sa.select(table).where(table.c.project == reg.project).order_by(table.c.name)
    with reg._read("read the snapshots") as conn:
        return [_snapshot(r) for r in conn.execute(query).all()]


def find(store: FeatureStore, name: str) -> Snapshot | None:
    reg = store.registry
    if not reg._ready():
        return None
    query = sa.select(table).where(table.c.project == reg.project, table.c.name == name)
    with reg._read(f"read snapshot {name!r}") as conn:
        row = conn.execute(query).first()
    return None if row is None else _snapshot(row)


def get(store: FeatureStore, name: str) -> Snapshot:
    """The snapshot ``name``; ``ObjectNotFoundError`` naming close ones when there is none."""
    found = find(store, name)
    if found is not None:
        return found
    names = [s.name for s in list_all(store)]
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    elif names:
        hint = f"known: {', '.join(names[:20])}"
    else:
        hint = "the project has no snapshot yet (parity snapshot create)"
    raise ObjectNotFoundError("snapshot", name, store.project, hint)


def shown(store: FeatureStore, name: str) -> Snapshot:
    """``get``, for a caller that must be able to ``describe`` every view the snapshot holds
    (auth on): a ``PermissionDeniedError``, audited, otherwise."""
    snap = get(store, name)
    store.governance.access.check(store.actor, "describe", _views(snap))
    return snap


def listed(store: FeatureStore) -> list[Snapshot]:
    """``list_all``, less the snapshots holding a view the caller may not ``describe``."""
    found = list_all(store)
    access = store.governance.access
    if not access.enabled:
        return found
    from parity.governance.access import resources_of

    catalog = store.catalog()

    def may(snap: Snapshot) -> bool:
        return all(
            access.allows(store.actor, "describe", r)
            for kind, view in _views(snap)
            for r in resources_of(catalog, kind, [view])
        )

    return [s for s in found if may(s)]


def _views(snap: Snapshot) -> list[tuple[str, str]]:
    """(kind, name) of every view whose features the snapshot holds."""
    kinds = {o["name"]: o["kind"] for o in snap.objects if o["kind"].endswith("feature_view")}
    names = dict.fromkeys(ref.partition(":")[0] for ref in snap.features)
    return [(kinds.get(v, "feature_view"), v) for v in names]


def referenced(store: FeatureStore, digest: str) -> bool:
    """Whether some snapshot of the project holds the file of ``digest``."""
    reg = store.registry
    query = sa.select(sa.func.count()).where(
        table.c.project == reg.project, table.c.digest == digest
    )
    with reg._read("read the snapshots") as conn:
        return bool(conn.execute(query).scalar_one())


def save(store: FeatureStore, snap: Snapshot, *, replace_existing: bool) -> Snapshot | None:
    """Write ``snap``'s row; returns the snapshot it replaced (None: it is new). A name
    taken is a ``SnapshotError`` unless ``replace_existing``."""
    reg = store.registry
    reg._create()
    with reg._write(f"save snapshot {snap.name!r}") as conn:
        old = conn.execute(
            sa.select(table).where(table.c.project == reg.project, table.c.name == snap.name)
        ).first()
        if old is not None and not replace_existing:
            raise exists(store, snap.name)
        values = _row(snap)
        if old is None:
            conn.execute(table.insert().values(project=reg.project, name=snap.name, **values))
        else:
            conn.execute(
                table.update()
                .where(table.c.project == reg.project, table.c.name == snap.name)
                .values(**values)
            )
    return None if old is None else _snapshot(old)


def update(store: FeatureStore, snaps: Sequence[Snapshot]) -> None:
    """Write these snapshots' rows again (an erase's new digests), in one transaction."""
    reg = store.registry
    with reg._write("update snapshots") as conn:
        for snap in snaps:
            conn.execute(
                table.update()
                .where(table.c.project == reg.project, table.c.name == snap.name)
                .values(**_row(snap))
            )


def exists(store: FeatureStore, name: str) -> SnapshotError:
    return SnapshotError(
        f"snapshot {name!r} already exists in project {store.project!r}; choose another name, "
        "or replace it (--replace, replace=True)"
    )


def with_manifest(snap: Snapshot, **changes: Any) -> Snapshot:
    """``snap`` with some manifest keys changed."""
    return replace(snap, manifest={**snap.manifest, **changes})


def _row(snap: Snapshot) -> dict[str, Any]:
    return {
        "digest": snap.digest,
        "path": snap.path,
        "rows": snap.rows,
        "description": snap.description,
        "created_at": snap.created_at,
        "created_by": snap.created_by,
        "revision": snap.revision,
        "features": list(snap.features),
        "manifest": jsonable(dict(snap.manifest)),
    }


def _snapshot(row: Any) -> Snapshot:
    created = row.created_at
    created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
    return Snapshot(
        name=row.name,
        digest=row.digest,
        path=row.path,
        rows=int(row.rows),
        description=row.description,
        created_at=created,
        created_by=row.created_by,
        revision=int(row.revision),
        features=tuple(row.features),
        manifest=dict(row.manifest),
    )


def new_manifest(**parts: Any) -> dict[str, Any]:
    """A manifest of this format from its parts (see the module docstring)."""
    return {"format": FORMAT, "scheme": SCHEME, **parts}
