"""The registry: every project's definitions, their versions and a revision counter.

``apply`` is all-or-nothing and safe under concurrency: it takes the write lock first (the
project row on PostgreSQL, the database on SQLite), reads the live objects under that lock,
computes the plan from them and writes versions, live rows and the new revision in the same
transaction. Concurrent applies, from threads or processes, therefore run one after the other
and each sees everything the previous one wrote.

Reading never creates anything: a registry whose database (the SQLite file, the PostgreSQL
schema's tables) does not exist yet reads as empty, and the first write (an apply, a
recorded materialization) creates it, so a read-only command pointed at a wrong path does
not leave an empty registry behind.
"""

from __future__ import annotations

import builtins
import contextlib
import getpass
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from parity import cache
from parity.definitions import Definition, OnDemandFeatureView
from parity.errors import ConcurrentApplyError, DefinitionError, ValidationError
from parity.registry import engine as eng
from parity.registry.diff import FieldChange
from parity.registry.migrate import head_revision, migration_of, upgrade
from parity.registry.models import materializations, objects, projects, versions
from parity.registry.plan import Plan, Stored, compute_plan, sort_key
from parity.registry.records import (
    MaterializationRecord,
    RegistrySnapshot,
    VersionRecord,
    check_kind,
    not_found,
    rebuild,
)
from parity.registry.writing import write_plan

__all__ = ["Registry"]

DEFAULT_TIMEOUT = 30.0
CACHED_CATALOG_OBJECTS = 200
"""A catalog read that must rebuild this many objects or more keeps what it rebuilt in the
disk cache, keyed by every object's content hash (``_all_live``)."""


class Registry:
    """The definitions of one ``project`` in a SQLite file or a PostgreSQL database.

    ``url`` is a SQLAlchemy URL (``sqlite:///path/registry.db``,
    ``postgresql+psycopg://host:5432/db``; a bare ``postgresql://`` means psycopg 3).
    ``schema`` is the PostgreSQL schema to keep the tables in.
    ``timeout`` (seconds) bounds waits for another writer's lock and for connecting.
    Opening an existing registry runs any pending migrations of its tables; opening one
    that does not exist creates nothing: it reads as empty until the first write creates
    the database (SQLite file and folder, PostgreSQL schema and tables). ``exists()`` tells.
    """

    def __init__(
        self,
        url: str,
        project: str,
        *,
        schema: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not isinstance(project, str) or not 0 < len(project) <= 128:
            raise DefinitionError(
                f"registry: project must be a name of 1 to 128 characters, got {project!r}"
            )
        self.url = eng.parse_url(url)
        self.project = project
        self.schema = schema
        self.timeout = timeout
        self._engine = eng.create_engine(self.url, schema=schema, timeout=timeout)
        # An in-memory SQLite database is one shared connection: take turns on it.
        self._turns: contextlib.AbstractContextManager[Any] = (
            threading.RLock()
            if isinstance(self._engine.pool, StaticPool)
            else contextlib.nullcontext()
        )
        self._created = False
        try:
            if eng.sqlite_path(self.url) is None and eng.is_sqlite(self.url):
                self._create()  # in memory: nothing on disk to spare
            else:
                eng.check_folder(self.url)
                self._ready()
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def from_location(
        cls,
        location: str,
        project: str,
        base_dir: Path,
        schema: str | None = None,
        **kwargs: Any,
    ) -> Registry:
        """A registry from a repo config value: a URL (``...://...``) or a SQLite file path.

        A relative path is taken from ``base_dir``; its missing folders are created by the
        first write.
        """
        if "://" in location:
            return cls(location, project, schema=schema, **kwargs)
        path = Path(location).expanduser()
        if not path.is_absolute():
            path = Path(base_dir) / path
        url = sa.URL.create("sqlite", database=str(path.resolve()))
        return cls(url.render_as_string(), project, schema=schema, **kwargs)

    # -- reading --------------------------------------------------------------------------

    @property
    def location(self) -> str:
        """Where the registry is, for messages: the SQLite file, or the URL (and schema)."""
        path = eng.sqlite_path(self.url)
        if path is not None:
            return str(path)
        where = f" schema {self.schema!r}" if self.schema else ""
        return eng.safe_url(self.url) + where

    def exists(self) -> bool:
        """Whether the registry's database exists; False until the first write creates it."""
        return self._ready()

    def revision(self) -> int:
        """The project's revision: +1 for every apply that changed something; 0 when new."""
        if not self._ready():
            return 0
        with self._read("read the revision") as conn:
            return self._revision(conn)

    def list(self, kind: str | None = None) -> builtins.list[Definition]:
        """Live objects, optionally of one kind, sorted by (kind in dependency order, name)."""
        if kind is not None:
            check_kind(kind)
        if not self._ready():
            return []
        with self._read("list objects") as conn:
            return self._live_definitions(conn, kind)

    def get(self, kind: str, name: str) -> Definition:
        """One live object; ``ObjectNotFoundError`` (with close names as a hint) if absent."""
        check_kind(kind)
        if not self._ready():
            raise not_found(self.project, kind, name, [])
        with self._read(f"read {kind} {name!r}") as conn:
            row = conn.execute(
                sa.select(objects.c.spec).where(
                    objects.c.project == self.project,
                    objects.c.kind == kind,
                    objects.c.name == name,
                )
            ).first()
            if row is None:
                raise self._not_found(conn, kind, name)
        return rebuild(kind, row.spec)

    def find(self, name: str) -> builtins.list[Definition]:
        """Live objects called ``name``, of any kind (in kind order); empty if none."""
        if not self._ready():
            return []
        with self._read(f"find {name!r}") as conn:
            rows = conn.execute(
                sa.select(objects.c.kind, objects.c.spec).where(
                    objects.c.project == self.project, objects.c.name == name
                )
            ).all()
        rows = sorted(rows, key=lambda r: sort_key(r.kind, name))
        return [rebuild(r.kind, r.spec) for r in rows]

    def history(self, name: str, kind: str | None = None) -> builtins.list[VersionRecord]:
        """Every version of ``name`` (of one kind, or all kinds), oldest first.

        Deleted objects keep their history. ``ObjectNotFoundError`` if it never existed.
        """
        if kind is not None:
            check_kind(kind)
        query = sa.select(versions).where(
            versions.c.project == self.project, versions.c.name == name
        )
        if kind is not None:
            query = query.where(versions.c.kind == kind)
        if not self._ready():
            raise not_found(self.project, kind or "object", name, [])
        with self._read(f"read the history of {name!r}") as conn:
            rows = conn.execute(query).all()
            if not rows:
                raise self._not_found(conn, kind or "object", name)
        records = [_record(r) for r in rows]
        records.sort(key=lambda r: (r.revision, sort_key(r.kind, r.name), r.number))
        return records

    # -- materialization intervals ----------------------------------------------------------
    def record_materialization(
        self, view: str, start: datetime, end: datetime, *, rows: int, stored: int
    ) -> None:
        """Note that ``view``'s event times in [start, end] were loaded into the online store."""
        self._create()
        with self._write(f"record a materialization of {view!r}") as conn:
            self._lock_project(conn)
            conn.execute(
                materializations.insert().values(
                    project=self.project,
                    view=view,
                    start_at=_utc(start),
                    end_at=_utc(end),
                    rows=rows,
                    stored=stored,
                    finished_at=_now(),
                )
            )

    def materializations(self, view: str | None = None) -> builtins.list[MaterializationRecord]:
        """Every recorded materialization (of one view or all), oldest first."""
        query = sa.select(materializations).where(materializations.c.project == self.project)
        if view is not None:
            query = query.where(materializations.c.view == view)
        if not self._ready():
            return []
        with self._read("read materializations") as conn:
            rows = conn.execute(query.order_by(materializations.c.id)).all()
        return [
            MaterializationRecord(
                view=r.view,
                start=_utc(r.start_at),
                end=_utc(r.end_at),
                rows=int(r.rows),
                stored=int(r.stored),
                finished_at=_utc(r.finished_at),
            )
            for r in rows
        ]

    def materialized_until(self) -> dict[str, datetime]:
        """Per view, the latest end of a recorded materialization window."""
        query = (
            sa.select(materializations.c.view, sa.func.max(materializations.c.end_at))
            .where(materializations.c.project == self.project)
            .group_by(materializations.c.view)
        )
        if not self._ready():
            return {}
        with self._read("read materializations") as conn:
            return {view: _utc(end) for view, end in conn.execute(query).all()}

    def forget_materializations(self, views: Sequence[str] | None = None) -> None:
        """Drop the intervals of these views (all when None), after their data was removed."""
        query = materializations.delete().where(materializations.c.project == self.project)
        if views is not None:
            query = query.where(materializations.c.view.in_(list(views)))
        if not self._ready():
            return  # nothing recorded, nothing to create
        with self._write("forget materializations") as conn:
            conn.execute(query)

    def snapshot(self, known: Iterable[Definition] = ()) -> RegistrySnapshot:
        """Every live object and the revision, read in one transaction (consistent).

        ``known``: definitions the caller holds (a repo's, about to be planned); a live
        object equal to one of them is taken from them rather than rebuilt."""
        if not self._ready():
            return RegistrySnapshot(self.project, 0, ())
        with self._read("read a snapshot", consistent=True) as conn, cache.bulk_load():
            revision = self._revision(conn)
            objs = self._all_live(conn, known)
        return RegistrySnapshot(self.project, revision, tuple(objs))

    # -- writing --------------------------------------------------------------------------

    def plan(self, objects: Sequence[Definition], *, delete_missing: bool = False) -> Plan:
        """What ``apply(objects)`` would do now; changes nothing."""
        desired = _desired(objects)
        if not self._ready():
            return replace(
                compute_plan({}, desired, delete_missing=delete_missing), base_revision=0
            )
        with self._read("plan", consistent=True) as conn:
            base = self._revision(conn)
            plan = compute_plan(self._live(conn), desired, delete_missing=delete_missing)
        return replace(plan, base_revision=base)

    def apply(
        self,
        objects: Sequence[Definition],
        *,
        delete_missing: bool = False,
        author: str | None = None,
        expected_revision: int | None = None,
        guard: Callable[[Plan], Mapping[tuple[str, str], str]] | None = None,
    ) -> Plan:
        """Create, update (and with ``delete_missing`` delete) objects; return what was done.

        ``guard`` sees the plan under the write lock before anything is written: it raises
        to refuse it, or returns notes to keep with versions (``(kind, name)`` -> text).

        The plan is computed under the write lock, so it is exactly what was written.
        ``author`` defaults to ``$PARITY_USER``, then the login name. With
        ``expected_revision`` (e.g. the ``base_revision`` of a plan a person approved),
        ``ConcurrentApplyError`` is raised and nothing written if the registry moved on.
        """
        desired = _desired(objects)
        author = author or os.environ.get("PARITY_USER") or _login()
        self._create()
        with self._write("apply") as conn:
            base = self._lock_project(conn)
            if expected_revision is not None and base != expected_revision:
                raise ConcurrentApplyError(
                    f"project {self.project!r} is at revision {base}, not {expected_revision}: "
                    "someone applied in between; plan again and review the changes"
                )
            plan = compute_plan(self._live(conn), desired, delete_missing=delete_missing)
            if not plan.has_changes:
                return replace(plan, base_revision=base, revision=base)
            revision = base + 1
            notes = guard(plan) if guard is not None else None
            code = {
                (o.kind, o.name): o.source_code()
                for o in objects
                if isinstance(o, OnDemandFeatureView)
            }
            write_plan(conn, self.project, plan, revision, author, notes, code)
        return replace(plan, base_revision=base, revision=revision)

    def close(self) -> None:
        """Release the connection pool; the object is unusable afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f", schema={self.schema!r}" if self.schema else ""
        return f"Registry({eng.safe_url(self.url)!r}, project={self.project!r}{where})"

    # -- internals ------------------------------------------------------------------------

    def _ready(self) -> bool:
        """Whether the database exists, migrated to head; checked again while it does not
        (another process may have created it since)."""
        if not self._created:
            at = migration_of(self._engine, self.url, self.schema, timeout=self.timeout)
            if at is not None and at == head_revision():
                self._created = True  # up to date: nothing to make or migrate
            elif at is not None:
                self._create()
        return self._created

    def _create(self) -> None:
        """Create the database (folder, schema, tables) or migrate it to head; once."""
        if self._created:
            return
        with self._turns:
            eng.make_folder(self.url)
            upgrade(self._engine, self.url, self.schema, timeout=self.timeout)
            self._created = True

    @contextlib.contextmanager
    def _read(self, action: str, *, consistent: bool = False) -> Iterator[Connection]:
        with (
            self._turns,
            eng.database_errors(self.url, action, timeout=self.timeout),
            eng.connect(self._engine, write=False, snapshot=consistent) as conn,
        ):
            yield conn

    @contextlib.contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        with (
            self._turns,
            eng.database_errors(self.url, action, timeout=self.timeout),
            eng.connect(self._engine, write=True) as conn,
        ):
            if self._engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(self.timeout * 1000)}")
            yield conn

    def _revision(self, conn: Connection) -> int:
        value = conn.execute(
            sa.select(projects.c.revision).where(projects.c.project == self.project)
        ).scalar()
        return int(value or 0)

    def _lock_project(self, conn: Connection) -> int:
        """Create the project row if needed, lock it, and return its revision."""
        now = _now()
        conn.execute(
            eng.insert_for(conn)(projects)
            .values(project=self.project, revision=0, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["project"])
        )
        return int(
            conn.execute(
                sa.select(projects.c.revision)
                .where(projects.c.project == self.project)
                .with_for_update()
            ).scalar_one()
        )

    def _live(self, conn: Connection) -> dict[tuple[str, str], Stored]:
        """Every live object's spec and hash; each spec read only when asked for."""
        text = sa.cast(objects.c.spec, sa.Text).label("spec")  # parsed only if needed
        rows = conn.execute(
            sa.select(objects.c.kind, objects.c.name, text, objects.c.content_hash).where(
                objects.c.project == self.project
            )
        ).all()
        return {(kind, name): Stored(spec, digest) for kind, name, spec, digest in rows}

    def _live_definitions(self, conn: Connection, kind: str | None) -> builtins.list[Definition]:
        if kind is None:
            return self._all_live(conn, ())
        query = sa.select(objects.c.kind, objects.c.name, objects.c.spec).where(
            objects.c.project == self.project, objects.c.kind == kind
        )
        rows = sorted(conn.execute(query).all(), key=lambda r: sort_key(r.kind, r.name))
        return [rebuild(r.kind, r.spec) for r in rows]

    def _all_live(self, conn: Connection, known: Iterable[Definition]) -> builtins.list[Definition]:
        """Every live object, in catalog order. Each is taken from ``known`` when one there
        has its kind, name and content hash and holds no other definition (so rebuilding
        it from its spec would give an equal object: equal hashes are equal specs); else
        from the disk cache of rebuilt catalogs (``parity.cache``, when at least
        ``CACHED_CATALOG_OBJECTS`` are not known), keyed by every kind, name and hash; else
        it is rebuilt from its spec."""
        heads = sorted(
            conn.execute(
                sa.select(objects.c.kind, objects.c.name, objects.c.content_hash).where(
                    objects.c.project == self.project
                )
            ).all(),
            key=lambda r: sort_key(r.kind, r.name),
        )
        held = {(o.kind, o.name): o for o in known if _rebuilds_as_itself(o)}
        out: builtins.list[Definition | None] = []
        for r in heads:
            obj = held.get((r.kind, r.name))
            out.append(obj if obj is not None and obj.content_hash() == r.content_hash else None)
        missing = [i for i, obj in enumerate(out) if obj is None]
        if not missing:
            return [o for o in out if o is not None]
        key = None
        if len(missing) >= CACHED_CATALOG_OBJECTS:
            text = "\n".join(f"{r.kind}|{r.name}|{r.content_hash}" for r in heads)
            key = hashlib.sha256(text.encode()).hexdigest()
            found = cache.load("catalog", key)
            if isinstance(found, tuple) and len(found) == len(heads):
                return list(found)
        query = sa.select(objects.c.kind, objects.c.name, objects.c.spec).where(
            objects.c.project == self.project
        )
        if held and len(missing) <= _FEW_REBUILT:  # most were known: read the rest by name
            wanted = [(heads[i].kind, heads[i].name) for i in missing]
            query = query.where(sa.tuple_(objects.c.kind, objects.c.name).in_(wanted))
        specs = {(r.kind, r.name): r.spec for r in conn.execute(query).all()}
        for i in missing:
            out[i] = rebuild(heads[i].kind, specs[(heads[i].kind, heads[i].name)])
        built = [o for o in out if o is not None]
        if key is not None:
            for obj in built:
                obj.content_hash()  # kept with the object, so pickled too
            cache.save("catalog", key, tuple(built), keep=8)
        return built

    def _not_found(self, conn: Connection, kind: str, name: str) -> Exception:
        live = conn.execute(
            sa.select(objects.c.kind, objects.c.name).where(objects.c.project == self.project)
        ).all()
        last = conn.execute(
            sa.select(versions.c.action, versions.c.revision)
            .where(
                versions.c.project == self.project,
                versions.c.kind == kind,
                versions.c.name == name,
            )
            .order_by(versions.c.version.desc())
            .limit(1)
        ).first()
        deleted_at = int(last.revision) if last is not None and last.action == "delete" else None
        return not_found(
            self.project, kind, name, [(r.kind, r.name) for r in live], deleted_at=deleted_at
        )


_FEW_REBUILT = 500
"""Live objects rebuilt by name (more: every spec is read, or the disk cache asked)."""


def _rebuilds_as_itself(obj: Definition) -> bool:
    """Whether ``obj`` equals what its spec rebuilds: it holds no other definition (a view
    holding its source object rebuilds holding the name) and is not an on-demand view
    (whose function is found again when rebuilt)."""
    if isinstance(obj, OnDemandFeatureView):
        return False
    for name in type(obj).model_fields:
        value = obj.__dict__.get(name)
        if isinstance(value, Definition):
            return False
        if isinstance(value, list | tuple) and any(isinstance(v, Definition) for v in value):
            return False
    return True


def _desired(objs: Sequence[Definition]) -> dict[tuple[str, str], Stored]:
    """The objects to apply keyed by (kind, name); two different objects with one key refused."""
    out: dict[tuple[str, str], Stored] = {}
    problems = []
    for obj in objs:
        if not isinstance(obj, Definition):
            raise DefinitionError(f"registry: cannot apply {obj!r}, not a Parity definition")
        check_kind(obj.kind)
        key = (obj.kind, obj.name)
        stored = Stored(obj.stored_spec, obj.content_hash())
        prev = out.get(key)
        if prev is not None and prev.content_hash != stored.content_hash:
            problems.append(f"{obj.kind} {obj.name!r} is defined twice, differently")
        out[key] = stored
    if problems:
        raise ValidationError(problems)
    return out


def _record(row: Any) -> VersionRecord:
    return VersionRecord(
        kind=row.kind,
        name=row.name,
        number=int(row.version),
        version=str(row.semver),
        note=str(row.note or ""),
        code=row.code,
        action=row.action,
        spec=row.spec,
        content_hash=row.content_hash,
        diff=tuple(FieldChange.from_dict(d) for d in row.diff),
        author=row.author,
        applied_at=_utc(row.applied_at),
        revision=int(row.revision),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"
