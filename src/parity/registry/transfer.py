"""Registry backup and migration: a project's definitions with their whole history, to one
JSON file and back, between any two registries (SQLite to PostgreSQL, or back)::

    summary = export_registry(Registry("sqlite:///data/registry.db", "shop"), "registry.json")
    import_registry(Registry("postgresql://db/parity", "shop"), "registry.json")

What is carried (``CARRIED``): the project's row of ``parity_projects`` (its revision
counter), every row of ``parity_versions`` (the history, deletes included), the live rows
of ``parity_objects`` and the training snapshots' manifests (``parity_snapshots``; their
Parquet files are not in the file: copy the snapshots' folder with the repo). Their columns
are read from the table objects, so a column a later migration adds travels with no change
here. Not carried, on purpose: the audit log (its hash chain is the record of the registry
it was written in), tokens (secrets' hashes stay with the registry that issued them),
materialization windows and jobs, monitoring results, alerts and freshness marks (they
describe data in online and offline stores that do not move with the file), stream
consumers' offsets and restrictions (per-deployment operational state).

The file: ``{"header": {...}, "tables": {table: [rows]}}``, keys sorted, one row per object
version in (kind order, name, version) order, datetimes as ISO 8601 UTC text, JSON columns
as JSON, no ``project`` column (the header names the project). Nothing in it depends on the
database it came from, so export, import into an empty registry and export again gives the
same bytes (``exported_at`` apart, which a caller may pin).

Import checks the whole file first and writes nothing when any row is wrong (every problem
is named by table, row and field): the format and its version, the schema revision (one
newer than this Parity's migrations is refused; an older one is brought to head by the
migrations themselves, in a scratch SQLite database, exactly as an in-place upgrade would),
each column's type, known kinds, versions contiguous from 1 with a valid sequence of
actions, content hashes, and every live object matching its object's last version. It then
writes in one transaction under the registry's write lock (``Registry._write`` and
``_lock_project``, like an apply), so no apply runs in between; the target project must hold
no definitions and no history unless ``replace=True``, which deletes them in the same
transaction.

The revision counter is the file's, unless that would not move the target project's counter
forward while its definitions change (``replace`` over a newer history): then it is the
current one plus one. Every cache of the definitions (``CatalogCache``, a feature server's
plans) is keyed by that counter, so a changed number is what makes them read again.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection

from parity import __version__
from parity.definitions import KINDS, spec_hash
from parity.errors import RegistryError
from parity.registry import engine as eng
from parity.registry.diff import FieldChange
from parity.registry.migrate import alembic_config, current_revision, head_revision
from parity.registry.models import ACTIONS, metadata
from parity.registry.plan import sort_key
from parity.registry.records import rebuild

if TYPE_CHECKING:
    from parity.registry.registry import Registry

__all__ = [
    "CARRIED",
    "FORMAT",
    "FORMAT_VERSION",
    "PathOrFile",
    "TransferSummary",
    "export_registry",
    "import_registry",
]

FORMAT = "parity-registry"
FORMAT_VERSION = 1
"""Bumped when the file's layout changes (not for new columns: those travel as they are)."""

CARRIED: tuple[str, ...] = (
    "parity_projects",
    "parity_versions",
    "parity_objects",
    "parity_snapshots",
)
"""The tables carried, in the order they are written (each after those it references).
Each is scoped by a ``project`` column in its primary key and is carried without it. A later
table of per-project metadata is carried by adding its name here, and a check in ``_check``
when its rows must agree with the others' (as a snapshot's revision must)."""

PROJECTS, VERSIONS, OBJECTS, SNAPSHOTS = CARRIED
MAX_PROBLEMS = 20
"""How many problems of a bad file are listed (the count says how many more there were)."""

PathOrFile = str | os.PathLike[str] | IO[str]
"""Where a file is: a path, or an open text file (``sys.stdout``, ``sys.stdin``)."""


@dataclass(frozen=True)
class TransferSummary:
    """What an export wrote or an import wrote: per kind, live objects and versions.

    ``project`` is the registry's project, ``file_project`` the one the file was exported
    from (they differ when an import renames). ``revision`` is the project's revision counter
    in the file (export) or after the import; ``replaced`` the objects an import with
    ``replace`` removed (0 otherwise)."""

    project: str
    file_project: str
    path: str
    revision: int
    schema_revision: str
    objects: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    replaced: int = 0


# -- export -------------------------------------------------------------------------------


def export_registry(
    registry: Registry, out: PathOrFile, *, exported_at: datetime | None = None
) -> TransferSummary:
    """Write the project's definitions and history to ``out`` (a path, written atomically
    through a temporary file, or an open text file), read in one consistent transaction.

    ``exported_at`` (default: now) is the header's only field that changes between two
    exports of the same registry; pin it for byte-identical files. A registry that does not
    exist, or a project it has never heard of, is refused (a wrong path or project name)."""
    if not registry.exists():
        raise RegistryError(
            f"the registry at {registry.location} does not exist (project "
            f"{registry.project!r}): nothing to export"
        )
    with registry._read("export the registry", consistent=True) as conn:
        schema_revision = current_revision(conn, registry.schema) or head_revision()
        tables = {name: _read_rows(conn, _table(name), registry.project) for name in CARRIED}
    if not tables[PROJECTS]:
        raise RegistryError(
            f"project {registry.project!r} has never written to the registry at "
            f"{registry.location}: nothing to export (is the project name right?)"
        )
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "parity_version": __version__,
        "project": registry.project,
        "schema_revision": schema_revision,
        "exported_at": _iso(exported_at or datetime.now(UTC)),
        "counts": {name: len(rows) for name, rows in tables.items()},
    }
    text = json.dumps(
        {"header": header, "tables": tables},
        sort_keys=True,
        indent=1,
        ensure_ascii=False,
        allow_nan=False,
    )
    where = _write_text(out, text + "\n")
    revision = int(tables[PROJECTS][0]["revision"])
    return _summary(registry.project, registry.project, where, revision, schema_revision, tables)


def _read_rows(conn: Connection, table: sa.Table, project: str) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(table).where(table.c.project == project)).all()
    out = [{c.name: _encode(c, row._mapping[c.name]) for c in _columns(table)} for row in rows]
    return sorted(out, key=functools.partial(_order, table))


def _order(table: sa.Table, row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A row's place: its primary key without ``project``, kinds in dependency order."""
    key: list[Any] = []
    for c in table.primary_key.columns:
        if c.name == "kind":
            key.extend(sort_key(row["kind"], "")[:2])
        elif c.name != "project":
            key.append(row[c.name])
    return tuple(key)


def _write_text(out: PathOrFile, text: str) -> str:
    if not isinstance(out, str | os.PathLike):
        out.write(text)
        out.flush()
        return getattr(out, "name", "-")
    path = Path(out)
    # A name of our own next to the target (same file system, so the rename is atomic);
    # opened with "x" so it gets the usual permissions, unlike mkstemp's 0600.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RegistryError(f"could not write the registry export {str(path)!r}: {exc}") from exc
    return str(path)


# -- import -------------------------------------------------------------------------------


def import_registry(
    registry: Registry, source: PathOrFile, *, replace: bool = False
) -> TransferSummary:
    """Write an export's definitions and history into ``registry``'s project, all or nothing.

    The file is checked first (see the module docstring); a bad one raises ``RegistryError``
    listing every problem, and nothing is written. The project must hold no objects and no
    versions, unless ``replace`` (then they are deleted in the same transaction). Runs under
    the registry's write lock, so concurrent applies wait for it (or it for them)."""
    where, doc = _load(source)
    header = _header(doc, where)
    schema_revision = header["schema_revision"]
    raw: dict[str, list[Any]] = {name: doc["tables"].get(name, []) for name in CARRIED}
    if schema_revision == head_revision():
        tables, problems = _decode_all({name: _table(name) for name in CARRIED}, raw)
    else:
        tables, problems = _upgrade(raw, schema_revision, header["project"])
    if not problems:
        problems = _check(tables)
    if problems:
        shown = [f"  - {p}" for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"  - ... and {len(problems) - MAX_PROBLEMS} more")
        raise RegistryError(
            f"{where}: not imported, nothing written; {len(problems)} problem(s):\n"
            + "\n".join(shown)
        )
    registry._create()
    with registry._write(f"import {where}") as conn:
        current = registry._lock_project(conn)
        present = {name: _count(conn, _table(name), registry.project) for name in CARRIED[1:]}
        if any(present.values()) and not replace:
            raise RegistryError(
                f"project {registry.project!r} in the registry at {registry.location} already "
                f"holds {present[OBJECTS]} object(s) and {present[VERSIONS]} version(s) of "
                "history"
                + (f" and {present[SNAPSHOTS]} snapshot(s)" if present[SNAPSHOTS] else "")
                + ": import into a project without definitions, or replace them "
                "(--replace, replace=True; export them first to keep a copy)"
            )
        project_row: dict[str, Any] = (
            dict(tables[PROJECTS][0]) if tables[PROJECTS] else {"revision": 0}
        )
        revision = int(project_row["revision"])
        changes = any(present.values()) or any(tables[n] for n in CARRIED[1:])
        if revision <= current and changes:
            # Not forward: caches keyed by the counter would keep the old definitions.
            revision = current + 1
            project_row["updated_at"] = datetime.now(UTC)
        elif revision < current:
            revision = current  # nothing changes: nothing to tell the caches
        project_row["revision"] = revision
        _replace_rows(conn, registry.project, tables, project_row)
    return _summary(
        registry.project,
        header["project"],
        where,
        revision,
        schema_revision,
        tables,
        replaced=present[OBJECTS],
    )


def _replace_rows(
    conn: Connection,
    project: str,
    tables: Mapping[str, list[dict[str, Any]]],
    project_row: dict[str, Any],
) -> None:
    """Delete the project's rows (each table before those it references), write the file's."""
    for name in reversed(CARRIED[1:]):
        table = _table(name)
        conn.execute(table.delete().where(table.c.project == project))
    projects = _table(PROJECTS)
    conn.execute(projects.update().where(projects.c.project == project).values(**project_row))
    for name in CARRIED[1:]:
        _insert(conn, _table(name), project, tables[name])


def _count(conn: Connection, table: sa.Table, project: str) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(table.c.project == project)
    return int(conn.execute(query).scalar_one())


def _load(source: PathOrFile) -> tuple[str, Any]:
    if isinstance(source, str | os.PathLike):
        where = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"could not read the registry export {where!r}: {exc}") from exc
    else:
        where, text = getattr(source, "name", "-"), source.read()
    try:
        return where, json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{where} is not a Parity registry export (not JSON: {exc})") from None


def _header(doc: Any, where: str) -> dict[str, Any]:
    """The checked header; the tables' shape and counts are checked against it."""
    header = doc.get("header") if isinstance(doc, dict) else None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RegistryError(
            f"{where} is not a Parity registry export (no header with format {FORMAT!r}; "
            "`parity registry export` writes one)"
        )
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise RegistryError(
            f"{where}: header.format_version is {version!r}; this Parity ({__version__}) reads "
            f"version {FORMAT_VERSION}" + ("; import it with a newer Parity" if newer else "")
        )
    for key in ("project", "schema_revision"):
        if not isinstance(header.get(key), str) or not header[key]:
            raise RegistryError(f"{where}: header.{key} must be text, got {header.get(key)!r}")
    schema_revision = header["schema_revision"]
    if schema_revision not in _known_revisions():
        raise RegistryError(
            f"{where}: written at registry schema revision {schema_revision!r}, which this "
            f"Parity ({__version__}, newest schema revision {head_revision()!r}) does not "
            f"know: it comes from a newer Parity (parity_version "
            f"{header.get('parity_version')!r}); import it with that version or later"
        )
    tables = doc.get("tables")
    if not isinstance(tables, dict):
        raise RegistryError(f"{where}: 'tables' must be an object of table name -> rows")
    unknown = sorted(set(tables) - set(CARRIED))
    if unknown:
        raise RegistryError(
            f"{where}: holds table(s) {', '.join(unknown)} this Parity does not carry "
            f"(it carries {', '.join(CARRIED)})"
        )
    counts = header.get("counts")
    if not isinstance(counts, dict):
        raise RegistryError(f"{where}: header.counts must be an object of table -> rows")
    for name in CARRIED:
        rows = tables.get(name, [])
        if not isinstance(rows, list):
            raise RegistryError(f"{where}: tables.{name} must be a list of rows")
        # a table added to CARRIED later is absent from older files: no rows
        said = counts.get(name, None if name in tables else 0)
        if said != len(rows):
            raise RegistryError(
                f"{where}: header.counts.{name} is {said!r} but the file holds {len(rows)} "
                "row(s): it was cut short or edited"
            )
    return header


@functools.cache
def _known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(s.revision for s in script.walk_revisions())


def _upgrade(
    raw: Mapping[str, list[Any]], schema_revision: str, project: str
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Rows of an older schema brought to head by the migrations (which may compute new
    columns from old ones), in a scratch SQLite database at the file's revision that is
    rolled back and deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="parity-import-") as folder:
        url = eng.parse_url(sa.URL.create("sqlite", database=str(Path(folder) / "r.db")))
        engine = eng.create_engine(url, schema=None, timeout=30.0)
        try:
            with engine.connect() as conn:
                trans = conn.begin()
                try:
                    return _upgrade_in(conn, raw, schema_revision, project)
                finally:
                    trans.rollback()
        finally:
            engine.dispose()


def _upgrade_in(
    conn: Connection, raw: Mapping[str, list[Any]], schema_revision: str, project: str
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    command.upgrade(alembic_config(None, conn), schema_revision)
    old = sa.MetaData()
    old.reflect(conn, only=lambda name, _: name in CARRIED)
    problems = [
        f"{name}: there was no such table at schema revision {schema_revision}"
        for name in CARRIED
        if name not in old.tables and raw[name]
    ]
    present = {n: old.tables[n] for n in CARRIED if n in old.tables}
    decoded, more = _decode_all(present, {n: raw[n] for n in present})
    if problems or more:
        return {}, problems + more
    # Rows that do not agree are named by _check at head; only a CHECK constraint of the
    # old schema can refuse one here (then named by _check on the old rows, where it can).
    conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
    try:
        for name, rows in decoded.items():
            _insert(conn, old.tables[name], project, rows)
        command.upgrade(alembic_config(None, conn), "head")
    except sa.exc.SQLAlchemyError as exc:
        try:
            named = _check(decoded)
        except KeyError:  # a column _check reads did not exist yet
            named = []
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return {}, named or [f"the rows could not be upgraded to schema head: {reason}"]
    tables = {}
    for name in CARRIED:
        table = _table(name)
        tables[name] = [
            {c.name: _utc_if_time(r._mapping[c.name]) for c in _columns(table)}
            for r in conn.execute(sa.select(table)).all()
        ]
    return tables, []


def _insert(conn: Connection, table: sa.Table, project: str, rows: list[dict[str, Any]]) -> None:
    """Insert the project's rows; rows that leave out optional columns (their defaults
    apply) go in their own statement, as executemany takes one set of keys."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append({**row, "project": project})
    for group in groups.values():
        conn.execute(table.insert(), group)


# -- columns: one codec per column type ----------------------------------------------------


def _table(name: str) -> sa.Table:
    return metadata.tables[name]


def _columns(table: sa.Table) -> list[sa.Column[Any]]:
    return [c for c in table.c if c.name != "project"]


def _encode(column: sa.Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, sa.DateTime):
        return _iso(value)
    if isinstance(column.type, sa.LargeBinary):
        return base64.b64encode(value).decode("ascii")
    if isinstance(column.type, sa.JSON | sa.String | sa.Integer | sa.Float | sa.Boolean):
        return value
    raise TypeError(f"{column.table.name}.{column.name}: no JSON form for {column.type!r}")


def _decode_all(
    tables: Mapping[str, sa.Table], raw: Mapping[str, list[Any]]
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Every row as column values, and the problems found (row and field named)."""
    out: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    for name, table in tables.items():
        columns = {c.name: c for c in _columns(table)}
        required = [
            c
            for c in columns.values()
            if not c.nullable and c.server_default is None and c.default is None
        ]
        rows = []
        for i, row in enumerate(raw.get(name, [])):
            where = _label(table, row, i)
            if not isinstance(row, dict):
                problems.append(f"{where}: must be an object of column -> value")
                continue
            problems += [
                f"{where}: field {c.name!r} is missing" for c in required if c.name not in row
            ]
            problems += [
                f"{where}: field {key!r} is not a column of {name}"
                for key in row
                if key not in columns
            ]
            values = {}
            for key, value in row.items():
                if key in columns:
                    try:
                        values[key] = _decode(columns[key], value)
                    except ValueError as exc:
                        problems.append(f"{where}: field {key!r}: {exc}")
            rows.append(values)
        out[name] = rows
    return out, problems


def _decode(column: sa.Column[Any], value: Any) -> Any:
    kind = column.type
    if value is None:
        if not column.nullable:
            raise ValueError("must not be null")
        return None
    if isinstance(kind, sa.JSON):
        return value
    if isinstance(kind, sa.DateTime):
        if not isinstance(value, str):
            raise ValueError(f"must be an ISO 8601 time in UTC, got {value!r}")
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset (write ...Z)")
        return when.astimezone(UTC)
    if isinstance(kind, sa.Boolean):
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if isinstance(kind, sa.Integer):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"must be a whole number, got {value!r}")
        return value
    if isinstance(kind, sa.Float):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"must be a number, got {value!r}")
        return float(value)
    if isinstance(kind, sa.String):
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {value!r}")
        if kind.length is not None and len(value) > kind.length:
            raise ValueError(f"is {len(value)} characters long, at most {kind.length} fit")
        return value
    if isinstance(kind, sa.LargeBinary):
        try:
            return base64.b64decode(value, validate=True)
        except (TypeError, ValueError):
            raise ValueError("must be base64 text") from None
    raise ValueError(f"this Parity cannot read a {kind!r} column from a file")


def _label(table: sa.Table, row: Any, index: int) -> str:
    """``parity_versions feature_view 'driver_stats' version 2``: a row by its key."""
    keys = [c.name for c in table.primary_key.columns if c.name != "project"]
    if not isinstance(row, dict):
        return f"{table.name} row {index + 1}"
    if not keys:
        return f"{table.name} (the project's row)"
    parts = []
    for key in keys:
        value = row.get(key)
        parts.append(
            str(value) if key == "kind" else repr(value) if key == "name" else f"{key} {value}"
        )
    return f"{table.name} {' '.join(parts)}"


# -- what must hold between rows -----------------------------------------------------------


def _check(tables: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """The problems of rows whose columns are fine one by one: what apply always leaves."""
    problems: list[str] = []
    if len(tables[PROJECTS]) > 1:
        problems.append(f"{PROJECTS}: one row for the project, found {len(tables[PROJECTS])}")
    counter = int(tables[PROJECTS][0]["revision"]) if tables[PROJECTS] else 0
    history: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in tables[VERSIONS]:
        where = _label(_table(VERSIONS), row, 0)
        problems += _check_version(row, where, counter)
        history.setdefault((row["kind"], row["name"]), []).append(row)
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for (kind, name), rows in history.items():
        rows.sort(key=lambda r: r["version"])
        problems += _check_sequence(kind, name, rows)
        last[(kind, name)] = rows[-1]
    live = set()
    for row in tables[OBJECTS]:
        kind, name = row["kind"], row["name"]
        where = _label(_table(OBJECTS), row, 0)
        if (kind, name) in live:
            problems.append(f"{where}: appears twice")
            continue
        live.add((kind, name))
        if kind not in KINDS:
            problems.append(f"{where}: field 'kind': unknown kind {kind!r}; known: {list(KINDS)}")
            continue
        top = last.get((kind, name))
        if top is None:
            problems.append(f"{where}: field 'version': no version of it is in the file")
        elif row["version"] != top["version"] or top["action"] == "delete":
            state = "deleted" if top["action"] == "delete" else f"at version {top['version']}"
            problems.append(
                f"{where}: field 'version': points at version {row['version']}, but its "
                f"history in the file is {state}"
            )
        elif row["spec"] != top["spec"] or row["content_hash"] != top["content_hash"]:
            field_name = "spec" if row["spec"] != top["spec"] else "content_hash"
            problems.append(
                f"{where}: field {field_name!r}: differs from version {top['version']}'s"
            )
        else:
            try:
                rebuild(kind, row["spec"])
            except RegistryError as exc:
                problems.append(f"{where}: field 'spec': {exc}")
    for (kind, name), top in sorted(last.items(), key=lambda kv: sort_key(*kv[0])):
        if top["action"] != "delete" and (kind, name) not in live and kind in KINDS:
            problems.append(
                f"{OBJECTS}: {kind} {name!r} is missing, though its history has it live "
                f"(version {top['version']}: {top['action']})"
            )
    snapshots: set[str] = set()
    for row in tables.get(SNAPSHOTS, []):
        where = _label(_table(SNAPSHOTS), row, 0)
        if row["name"] in snapshots:
            problems.append(f"{where}: appears twice")
        snapshots.add(row["name"])
        if not 0 <= row["revision"] <= counter:
            problems.append(
                f"{where}: field 'revision': {row['revision']} is not between 0 and the "
                f"project's revision {counter}"
            )
    return problems


def _check_version(row: dict[str, Any], where: str, counter: int) -> list[str]:
    problems = []
    if row["kind"] not in KINDS:
        problems.append(
            f"{where}: field 'kind': unknown kind {row['kind']!r}; known: {list(KINDS)}"
        )
    if row["action"] not in ACTIONS:
        problems.append(f"{where}: field 'action': {row['action']!r} is not one of {ACTIONS}")
    spec = row["spec"]
    if not isinstance(spec, dict):
        problems.append(f"{where}: field 'spec': must be an object, got {type(spec).__name__}")
    else:
        if spec.get("name", row["name"]) != row["name"]:
            problems.append(f"{where}: field 'spec': names {spec['name']!r}, not {row['name']!r}")
        if spec_hash(spec) != row["content_hash"]:
            problems.append(f"{where}: field 'content_hash': is not the hash of its spec")
    diff = row["diff"]
    if not isinstance(diff, list) or not all(_is_change(d) for d in diff):
        problems.append(f"{where}: field 'diff': must be a list of {{path, old, new}} objects")
    if not 1 <= row["revision"] <= counter:
        problems.append(
            f"{where}: field 'revision': {row['revision']} is not between 1 and the "
            f"project's revision {counter}"
        )
    return problems


def _is_change(value: Any) -> bool:
    try:
        FieldChange.from_dict(value)
    except (TypeError, KeyError, AttributeError):
        return False
    return isinstance(value["path"], str)


def _check_sequence(kind: str, name: str, rows: list[dict[str, Any]]) -> list[str]:
    """Versions 1..n; create first and after a delete, update and delete only while live;
    each written by a later revision than the one before (an apply writes one per object)."""
    label = f"{VERSIONS} {kind} {name!r}"
    numbers = [r["version"] for r in rows]
    if numbers != list(range(1, len(rows) + 1)):
        return [f"{label}: versions {numbers} are not 1 to {len(rows)}, each once"]
    problems = []
    alive = False
    previous = 0
    for r in rows:
        action = r["action"]
        if action in ACTIONS and (action == "create") == alive:
            problems.append(
                f"{label} version {r['version']}: field 'action': a {action} "
                + ("of an object that is live" if alive else "of an object that is not live")
            )
        alive = action != "delete"
        if r["revision"] <= previous:
            problems.append(
                f"{label} version {r['version']}: field 'revision': {r['revision']} is not "
                f"after version {r['version'] - 1}'s ({previous})"
            )
        previous = r["revision"]
    return problems


# -- small helpers ----------------------------------------------------------------------


def _summary(
    project: str,
    file_project: str,
    where: str,
    revision: int,
    schema_revision: str,
    tables: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    replaced: int = 0,
) -> TransferSummary:
    objects = Counter(r["kind"] for r in tables[OBJECTS])
    versions = Counter(r["kind"] for r in tables[VERSIONS])
    order = sorted(set(objects) | set(versions), key=lambda k: sort_key(k, ""))
    return TransferSummary(
        project=project,
        file_project=file_project,
        path=where,
        revision=revision,
        schema_revision=schema_revision,
        objects={k: objects[k] for k in order},
        versions={k: versions[k] for k in order},
        replaced=replaced,
    )


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_if_time(value: Any) -> Any:
    return _utc(value) if isinstance(value, datetime) else value


def _iso(value: datetime) -> str:
    return _utc(value).isoformat(timespec="microseconds").replace("+00:00", "Z")
