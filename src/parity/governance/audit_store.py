"""The audit log's rows in the registry database (``parity_audit``, ``parity_audit_heads``).

``append`` writes a batch in one transaction: it locks the project's head row (PostgreSQL:
``SELECT ... FOR UPDATE``; SQLite: the transaction begins ``IMMEDIATE``, the database's
write lock), numbers and hashes the records after the head, inserts them and moves the
head. Every process appending to one project's log therefore extends one chain. The
project's apply lock (its ``parity_projects`` row) is never taken, so a long apply does
not hold up reads being recorded.

A record's token id has its own column (``token_id``; migration 0007 moved it there from
the ``counts`` JSON, where it was kept under the reserved key ``@token``: callers' counts
still may not start with ``@``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from parity.errors import RegistryError
from parity.governance.audit_chain import (
    GENESIS,
    AuditRecord,
    counts_json,
    resources_json,
)
from parity.registry import engine as eng
from parity.registry.models import audit as audit_table
from parity.registry.models import audit_heads, projects
from parity.registry.registry import Registry

__all__ = ["AuditStore", "Entry", "Spooled", "counts_text", "spooled"]

SCAN_BATCH = 5000


class Entry(NamedTuple):
    """A record before it is numbered and hashed (a tuple: made once per operation)."""

    at: datetime
    principal: str
    action: str
    resources: tuple[str, ...]
    counts: dict[str, int]
    outcome: str
    detail: str
    token_id: str | None


Spooled = tuple[int, tuple[Any, ...], str]
"""A record as the spool keeps it: (time in µs since the epoch, its shape: principal,
action, resources, outcome, detail, token id; its counts' canonical JSON)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def counts_text(counts: Mapping[str, int]) -> str:
    """The counts' canonical JSON (hashed and stored alike; remembered per shape)."""
    key = tuple(counts.items())
    found = _COUNTS.get(key)
    if found is None:
        if len(_COUNTS) >= _REMEMBERED:
            _COUNTS.clear()
        found = _COUNTS[key] = counts_json(counts)
    return found


def spooled(e: Entry) -> Spooled:
    """``e`` in the spool's form."""
    return ((e.at - _EPOCH) // _US, e[1:4] + e[5:], counts_text(e.counts))


BeforeCommit = Callable[[int, str], object]
"""Called with the new head (seq, hash) once a batch is inserted, before it commits."""


class _RolledBack(Exception):
    """Ends the probe's transaction without committing."""


class AuditStore:
    """One project's audit rows."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._project_row = False
        self._raw: Any = None  # the writer thread's own DB-API connection (the hot path)
        self._shared = isinstance(registry._engine.pool, StaticPool)  # in memory: one conn
        self.per_row = False
        """SQLite: insert with ``executemany`` (less CPU, but the driver takes the GIL per
        row; for a process that ships and does nothing else: ``audit_shipper``) rather than
        one ``json_each`` statement."""

    # -- writing ----------------------------------------------------------------------------
    def append(self, entries: Sequence[Entry]) -> int:
        """Number, hash and insert ``entries`` after the chain's head, in one transaction."""
        return self.append_spooled([spooled(e) for e in entries])

    def append_spooled(
        self,
        records: Sequence[Spooled],
        *,
        markers: Sequence[tuple[int, str]] = (),
        before_commit: BeforeCommit | None = None,
    ) -> int:
        """``append`` for records in the spool's form. ``markers``: the (seq, hash) heads
        earlier tries of the same records named (``before_commit`` was told them): when the
        chain holds one of them, those tries committed and nothing is inserted (0 returned)."""
        if self._project_row and not self._shared:
            count = self._append_raw(records, markers, before_commit)
            if count is not None:
                return count
        reg = self.registry
        reg._create()
        try:
            with reg._write(f"append {len(records)} audit record(s)") as conn:
                count = self._append(conn, records, markers, before_commit)
        except RegistryError:
            raise
        except Exception as exc:  # the driver's own (the statements are the driver's)
            raise RegistryError(
                f"registry at {reg.location}: could not append audit records: {_first_line(exc)}"
            ) from exc
        self._project_row = True
        return count

    def _append_raw(
        self,
        entries: Sequence[Spooled],
        markers: Sequence[tuple[int, str]] = (),
        before_commit: BeforeCommit | None = None,
    ) -> int | None:
        """``append`` on a connection of the writer's own, straight through the driver;
        None when the head row is missing (the ordinary path makes it)."""
        reg = self.registry
        if self._raw is None:
            with eng.database_errors(reg.url, "connect to append audit records"):
                self._raw = reg._engine.raw_connection()
        conn = self._raw
        try:
            raw = _Raw(conn.cursor(), reg, conn.dbapi_connection.__class__.__module__)
            raw.per_row = self.per_row
            raw.begin(reg.timeout)
            head = raw.lock_head()
            if head is None:
                conn.rollback()
                self._project_row = False
                return None
            if markers and raw.holds(markers):
                conn.rollback()
                return 0
            rows, seq, last = _chained_rows(reg.project, entries, *head, pg=raw.pg)
            raw.insert(rows, seq, last)
            if before_commit is not None:
                before_commit(seq, last)
            raw.commit()
            return len(rows)
        except Exception as exc:
            self.release(broken=True)
            raise RegistryError(
                f"registry at {reg.location}: could not append audit records: {_first_line(exc)}"
            ) from exc

    def release(self, *, broken: bool = False) -> None:
        """Let go of the writer's connection (when its thread ends, or after an error)."""
        conn, self._raw = self._raw, None
        if conn is None:
            return
        if broken:  # its transaction ends here, whatever state the error left it in
            with contextlib.suppress(Exception):
                conn.rollback()
            with contextlib.suppress(Exception):
                conn.invalidate()
        else:
            with contextlib.suppress(Exception):
                conn.close()

    def probe(self) -> None:
        """Raise unless a record could be appended now (one is, then rolled back)."""
        reg = self.registry
        reg._create()
        now = datetime.now(UTC)
        try:
            with reg._write("probe the audit log") as conn:
                probe = Entry(now, "parity", "probe", (), {}, "ok", "", None)
                self._append(conn, [spooled(probe)])
                raise _RolledBack
        except _RolledBack:
            pass

    def _append(
        self,
        conn: Connection,
        entries: Sequence[Spooled],
        markers: Sequence[tuple[int, str]] = (),
        before_commit: BeforeCommit | None = None,
    ) -> int:
        if not self._project_row:
            self._ensure_project(conn)
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        raw = _Raw(dbapi.cursor(), self.registry, type(dbapi).__module__)
        raw.per_row = self.per_row
        head = raw.lock_head()
        if head is None:
            head = self._lock_head(conn)
        if markers and raw.holds(markers):
            return 0
        rows, seq, last = _chained_rows(self.registry.project, entries, *head, pg=raw.pg)
        raw.insert(rows, seq, last)
        if before_commit is not None:
            before_commit(seq, last)
        return len(rows)

    def _ensure_project(self, conn: Connection) -> None:
        project = self.registry.project
        found = conn.execute(
            sa.select(projects.c.project).where(projects.c.project == project)
        ).first()
        if found is None:  # (never the apply lock: the row is not locked, only made)
            now = datetime.now(UTC)
            conn.execute(
                eng.insert_for(conn)(projects)
                .values(project=project, revision=0, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["project"])
            )

    def _lock_head(self, conn: Connection) -> tuple[int, str]:
        project = self.registry.project
        query = sa.select(audit_heads.c.seq, audit_heads.c.hash).where(
            audit_heads.c.project == project
        )
        row = conn.execute(query.with_for_update()).first()
        if row is None:  # the project's first record; a concurrent first writer waits here
            conn.execute(
                eng.insert_for(conn)(audit_heads)
                .values(project=project, seq=0, hash=GENESIS)
                .on_conflict_do_nothing(index_elements=["project"])
            )
            row = conn.execute(query.with_for_update()).first()
        assert row is not None
        return int(row.seq), str(row.hash)

    # -- reading ----------------------------------------------------------------------------
    def head(self) -> tuple[int, str] | None:
        if not self.registry._ready():
            return None
        with self.registry._read("read the audit log's head") as conn:
            return _head(conn, self.registry.project)

    def select(
        self,
        *,
        since: datetime | None,
        until: datetime | None,
        principal: str | None,
        action: str | None,
        outcome: str | None,
        resource_like: str | None,
        limit: int | None,
    ) -> list[AuditRecord]:
        """Records matching the filters, newest first (``resource_like``: a LIKE pattern
        over the resources' JSON text, refined by the caller)."""
        t = audit_table
        query = sa.select(t).where(t.c.project == self.registry.project)
        if since is not None:
            query = query.where(t.c.at >= since.astimezone(UTC))
        if until is not None:
            query = query.where(t.c.at < until.astimezone(UTC))
        if principal is not None:
            query = query.where(t.c.principal == principal)
        if action is not None:
            query = query.where(t.c.action == action)
        if outcome is not None:
            query = query.where(t.c.outcome == outcome)
        if resource_like is not None:
            query = query.where(sa.cast(t.c.resources, sa.Text).like(resource_like, escape="\\"))
        query = query.order_by(t.c.seq.desc())
        if limit is not None:
            query = query.limit(limit)
        if not self.registry._ready():
            return []
        with self.registry._read("read the audit log") as conn:
            return [_record(r) for r in conn.execute(query)]

    def scan(self) -> Iterator[tuple[tuple[int, str] | None, list[AuditRecord]]]:
        """The head, then every record oldest first in batches, from one snapshot."""
        if not self.registry._ready():
            yield None, []
            return
        t = audit_table
        project = self.registry.project
        with self.registry._read("verify the audit log", consistent=True) as conn:
            head = _head(conn, project)
            after = -1
            while True:
                rows = conn.execute(
                    sa.select(t)
                    .where(t.c.project == project, t.c.seq > after)
                    .order_by(t.c.seq)
                    .limit(SCAN_BATCH)
                ).all()
                batch = [_record(r) for r in rows]
                yield head, batch
                if len(batch) < SCAN_BATCH:
                    return
                after = batch[-1].seq


def _chained_rows(
    project: str, records: Sequence[Spooled], seq: int, prev: str, *, pg: bool
) -> tuple[list[tuple[Any, ...]], int, str]:
    """``records`` numbered, hashed and laid out as ``parity_audit`` rows after the head
    ``(seq, prev)``; returns the rows and the new head. The shipper's hot path: the hashed
    bytes are ``canonical(...)``'s, assembled from parts remembered per record shape (a
    busy server's records differ only in number, time and counts) and per second."""
    if records and isinstance(records[0], Entry):
        records = [spooled(e) for e in records]  # type: ignore[arg-type]
    rows = []
    head = "[" + _text(project) + ","
    sha256 = hashlib.sha256
    second = None
    day = clock = ""
    for at_us, key, counts in records:
        seq += 1
        shape = _SHAPES.get(key)
        if shape is None:
            shape = _shape(key)
        whole, frac = divmod(at_us, 1_000_000)
        if whole != second:
            second = whole
            text = (_EPOCH + timedelta(seconds=whole)).isoformat()
            day, clock = text[:10], text[11:19]
        text = f'{head}{seq},"{day}T{clock}.{frac:06d}+00:00"{shape[0]}{counts}{shape[1]}"{prev}"]'
        digest = sha256(text.encode()).hexdigest()
        stored: Any = _EPOCH + timedelta(microseconds=at_us) if pg else f"{day} {clock}.{frac:06d}"
        rows.append(
            (project, seq, stored, key[0], key[1], shape[2], counts, key[3], key[4], prev,
             digest, key[5])
        )  # fmt: skip
        prev = digest
    return rows, seq, prev


_text = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_SHAPES: dict[tuple[Any, ...], tuple[str, str, str]] = {}
_COUNTS: dict[tuple[Any, ...], str] = {}
_REMEMBERED = 4096


def _shape(key: tuple[Any, ...]) -> tuple[str, str, str]:
    """(the canonical text between the time and the counts, the text between the counts
    and ``prev_hash``, the resources' JSON) of a record's shape (``Spooled``'s second
    part)."""
    principal, action, resources, outcome, detail, token_id = key
    res = resources_json(resources)
    token = "null" if token_id is None else _text(token_id)
    mid = f",{_text(principal)},{_text(action)},{res},"
    tail = f",{_text(outcome)},{_text(detail)},{token},"
    if len(_SHAPES) >= _REMEMBERED:
        _SHAPES.clear()
    found = _SHAPES[key] = (mid, tail, res)
    return found


class _Raw:
    """The append's statements on a DB-API cursor: the hot path of a busy server, where
    SQLAlchemy's per-statement work would cost more than the database's. Values are stored
    as SQLAlchemy's types store them (JSON text; on SQLite, times as
    ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC), so both read them alike."""

    def __init__(self, cursor: Any, registry: Registry, driver: str):
        self.cursor = cursor
        self.project = registry.project
        self.pg = not driver.startswith("sqlite")
        prefix = f'"{registry.schema}".' if self.pg and registry.schema else ""
        self.audit, self.heads = f"{prefix}parity_audit", f"{prefix}parity_audit_heads"
        self.p = "%s" if self.pg else "?"
        self.per_row = False

    def begin(self, timeout: float) -> None:
        """Open the transaction (SQLite: with the write lock; PostgreSQL: lock waits bounded)."""
        if self.pg:
            self.cursor.execute(f"SET LOCAL lock_timeout = {int(timeout * 1000)}")
        else:
            self.cursor.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.cursor.execute("COMMIT")

    def lock_head(self) -> tuple[int, str] | None:
        lock = " FOR UPDATE" if self.pg else ""  # SQLite: the transaction holds the lock
        self.cursor.execute(
            f"SELECT seq, hash FROM {self.heads} WHERE project = {self.p}{lock}", (self.project,)
        )
        rows = self.cursor.fetchall()  # all: a statement left open would hold its snapshot
        return None if not rows else (int(rows[0][0]), str(rows[0][1]))

    def holds(self, markers: Sequence[tuple[int, str]]) -> bool:
        """Whether the chain has a record at one of ``markers``' numbers with that hash."""
        p = self.p
        wanted = {(int(seq), str(digest)) for seq, digest in markers}
        numbers = sorted({seq for seq, _ in wanted})
        marks = ", ".join([p] * len(numbers))
        self.cursor.execute(
            f"SELECT seq, hash FROM {self.audit} WHERE project = {p} AND seq IN ({marks})",
            (self.project, *numbers),
        )
        return any((int(seq), str(digest)) in wanted for seq, digest in self.cursor.fetchall())

    def insert(self, rows: Sequence[tuple[Any, ...]], seq: int, last: str) -> None:
        if not self.pg and not self.per_row:  # one statement: the GIL let go once, not per row
            picks = _PICKS
            self.cursor.execute(
                f"INSERT INTO {self.audit} (project, seq, at, principal, action, resources,"
                f" counts, outcome, detail, prev_hash, hash, token_id) SELECT {picks}"
                " FROM json_each(?)",
                (json.dumps(rows, check_circular=False),),
            )
            self.cursor.execute(
                f"UPDATE {self.heads} SET seq = ?, hash = ? WHERE project = ?",
                (seq, last, self.project),
            )
            return
        p, js = self.p, ("%s::json" if self.pg else "?")
        self.cursor.executemany(
            f"INSERT INTO {self.audit} (project, seq, at, principal, action, resources, counts,"
            f" outcome, detail, prev_hash, hash, token_id) VALUES ({p}, {p}, {p}, {p}, {p},"
            f" {js}, {js}, {p}, {p}, {p}, {p}, {p})",
            rows,
        )
        self.cursor.execute(
            f"UPDATE {self.heads} SET seq = {p}, hash = {p} WHERE project = {p}",
            (seq, last, self.project),
        )


_PICKS = ", ".join(
    f"value->>{i}" if sqlite3.sqlite_version_info >= (3, 38) else f"json_extract(value, '$[{i}]')"
    for i in range(12)
)
"""The columns of one ``json_each`` row (SQLite before 3.38 has no ``->>``)."""


def _sqlite_time(at: datetime) -> str:
    """What SQLAlchemy's SQLite ``DateTime`` stores: naive UTC with microseconds."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _head(conn: Connection, project: str) -> tuple[int, str] | None:
    row = conn.execute(
        sa.select(audit_heads.c.seq, audit_heads.c.hash).where(audit_heads.c.project == project)
    ).first()
    return None if row is None else (int(row.seq), str(row.hash))


def _record(row: Any) -> AuditRecord:
    counts = dict(row.counts or {})
    token_id = row.token_id
    at = row.at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return AuditRecord(
        project=row.project,
        seq=int(row.seq),
        at=at,
        principal=row.principal,
        action=row.action,
        resources=tuple(row.resources or ()),
        counts=counts,
        outcome=row.outcome,
        detail=row.detail,
        token_id=token_id,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
