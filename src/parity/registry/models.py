"""The registry's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

The main tables, every row scoped by ``project`` (besides the materialization windows, the
feature server's background materialization jobs and the stream consumers' counters):

- ``parity_projects``: one row per project holding the ``revision`` counter. Writers lock this
  row (PostgreSQL) or the whole database (SQLite) for the length of an apply.
- ``parity_objects``: the live objects, one row per (project, kind, name) with the current
  version, spec and content hash.
- ``parity_versions``: every version ever written, append-only; its primary key
  (project, kind, name, version) makes writing one version twice impossible.

Tables are declared without a schema; a PostgreSQL schema is applied at run time with
``schema_translate_map``. These declarations must match the migrations in
``registry/migrations/versions``; a test compares them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

ALEMBIC_VERSION_TABLE = "parity_alembic_version"
"""Alembic's own bookkeeping table, prefixed so it never clashes with an application's."""

ACTIONS = ("create", "update", "delete")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = Table(
    "parity_projects",
    metadata,
    Column("project", String(128), primary_key=True),
    Column("revision", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

versions = Table(
    "parity_versions",
    metadata,
    Column("project", String(128), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("action", String(16), nullable=False),
    # The spec after the change; for a delete, the spec that was deleted.
    Column("spec", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    # A list of {"path", "old", "new"}; "old"/"new" are left out when absent.
    Column("diff", JSON, nullable=False),
    Column("author", String(256), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("revision", BigInteger, nullable=False),
    # The semantic version MAJOR.MINOR.PATCH (``registry.semver``; migration 0008) and why
    # the version was written when it was more than an apply (an override, a rollback).
    Column("semver", String(32), nullable=False, server_default="1.0.0"),
    Column("note", Text, nullable=False, server_default=""),
    Column("code", Text, nullable=True),  # an on-demand view's function source, when known
    CheckConstraint("action IN ('create', 'update', 'delete')", name="action"),
    CheckConstraint("version >= 1", name="version_positive"),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
    Index(None, "project", "name"),
    Index(None, "project", "revision"),
)

objects = Table(
    "parity_objects",
    metadata,
    Column("project", String(128), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # A live object always points at a version that was written.
    ForeignKeyConstraint(
        ["project", "kind", "name", "version"],
        [versions.c.project, versions.c.kind, versions.c.name, versions.c.version],
    ),
    Index(None, "project", "name"),
)

materializations = Table(
    "parity_materializations",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("project", String(128), nullable=False),
    Column("view", String(128), nullable=False),
    # The window [start_at, end_at] of event times that was loaded into the online store.
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("stored", BigInteger, nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
    Index(None, "project", "view", "end_at"),
)

materialization_jobs = Table(
    "parity_materialization_jobs",
    metadata,
    # Background materializations the feature server runs (``parity.registry.jobs``): kept
    # here so that every worker of a server, and every server, sees each job's state.
    Column("id", String(64), primary_key=True),
    Column("project", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("views", JSON, nullable=False),
    Column("request", JSON, nullable=False),
    # {view: {"state", "rows", "stored", "start", "end", "seconds"}}, filled as views finish
    Column("progress", JSON, nullable=False),
    Column("error", JSON, nullable=True),
    # host:pid of the worker running it; heartbeat_at moves while it runs
    Column("owner", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("state IN ('queued', 'running', 'succeeded', 'failed')", name="state"),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
    Index(None, "project", "created_at"),
)

stream_consumers = Table(
    "parity_stream_consumers",
    metadata,
    # One row per consumer of a stream source (``parity.registry.streams``): ``parity stream
    # run`` processes, on any host, beat here every few seconds; ``parity stream status``
    # reads them. Keyed by the consumer's name in the group, unique per process.
    Column("project", String(128), primary_key=True),
    Column("source", String(128), primary_key=True),
    Column("consumer", String(256), primary_key=True),
    # host:pid of the process; "lost" is never stored, it is read from heartbeat_at and owner
    Column("owner", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("stopped_at", DateTime(timezone=True), nullable=True),
    Column("consumed", BigInteger, nullable=False),
    Column("written", BigInteger, nullable=False),
    Column("batches", BigInteger, nullable=False),
    # {reason: count}
    Column("dead_letters", JSON, nullable=False),
    Column("last_offset", Text, nullable=True),
    # {"event": FreshnessWindow.to_json(), "append": ...} (parity.streams.freshness)
    Column("freshness", JSON, nullable=False),
    Column("error", Text, nullable=True),
    CheckConstraint("state IN ('running', 'stopped')", name="state"),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
)

monitor_results = Table(
    "parity_monitor_results",
    metadata,
    # What monitoring computed and keeps (``parity.registry.monitoring``): profiles, drift
    # reports, check runs, skew reports, freshness samples. ``data`` is the result table as
    # Arrow IPC; ``summary`` what a listing shows without reading it.
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("project", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    # the view ("" for a result about every view, e.g. a freshness sample)
    Column("view", String(128), nullable=False),
    Column("view_version", Integer, nullable=True),
    # the event-time range the result covers (null: open), and where the values came from
    Column("start_at", DateTime(timezone=True), nullable=True),
    Column("end_at", DateTime(timezone=True), nullable=True),
    Column("scope", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("summary", JSON, nullable=False),
    Column("data", LargeBinary, nullable=False),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
    Index(None, "project", "kind", "view", "created_at"),
)

view_freshness = Table(
    "parity_view_freshness",
    metadata,
    # Per view and target (online | offline), the newest event time known to have reached
    # it: what freshness SLAs are measured against. Only ever moves forward.
    Column("project", String(128), primary_key=True),
    Column("view", String(128), primary_key=True),
    Column("target", String(16), primary_key=True),
    Column("newest_event_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
)

alerts = Table(
    "parity_alerts",
    metadata,
    # Monitoring's alerts (``parity.registry.monitoring``): one row per firing, open until
    # the rule holds again. ``feature`` is "" for a rule about a whole view.
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("project", String(128), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("view", String(128), nullable=False),
    Column("feature", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("observed", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("message", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("state IN ('open', 'resolved')", name="state"),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
    Index(None, "project", "state", "rule", "view", "feature"),
)

tokens = Table(
    "parity_tokens",
    metadata,
    # API tokens (``parity.governance.tokens``): ``id`` is the token's public part; only a
    # salted hash of its secret is kept. Roles are names of the repo's ``Role`` definitions.
    Column("id", String(32), primary_key=True),
    Column("project", String(128), nullable=False),
    Column("principal", String(128), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("salt", String(64), nullable=False),
    Column("hash", String(128), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
    Index(None, "project", "principal"),
)

audit_heads = Table(
    "parity_audit_heads",
    metadata,
    # The newest audit record per project: writers lock this row to append to the chain.
    Column("project", String(128), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("hash", String(64), nullable=False),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
)

audit = Table(
    "parity_audit",
    metadata,
    # The audit log (``parity.governance.audit``), append-only and hash-chained: ``hash`` is
    # over the record's canonical form and ``prev_hash``. Never feature values or tokens.
    Column("project", String(128), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("principal", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("resources", JSON, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("token_id", String(64), nullable=True),  # the token's public id (migration 0007)
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
    Index(None, "project", "at"),
    Index(None, "project", "principal", "at"),
)

usage = Table(
    "parity_usage",
    metadata,
    # Reads per feature ("" for an object read whole) and consumer (a principal, or
    # service:NAME / model:NAME when a read named one), online and offline (migration 0009).
    Column("project", String(128), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("feature", String(128), primary_key=True),
    Column("consumer", String(160), primary_key=True),
    Column("reads_online", BigInteger, nullable=False),
    Column("reads_offline", BigInteger, nullable=False),
    Column("keys_online", BigInteger, nullable=False),
    Column("rows_offline", BigInteger, nullable=False),
    Column("first_read_at", DateTime(timezone=True), nullable=False),
    Column("last_read_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
    Index(None, "project", "last_read_at"),
)

snapshots = Table(
    "parity_snapshots",
    metadata,
    # Training snapshots (migration 0009): the result's content-addressed Parquet file and
    # the manifest that makes it reproducible.
    Column("project", String(128), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("features", JSON, nullable=False),
    Column("manifest", JSON, nullable=False),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
    Index(None, "project", "digest"),
)

restrictions = Table(
    "parity_restrictions",
    metadata,
    # Entity keys whose processing is restricted (``parity restrict``): served masked, left
    # out of new training snapshots. ``entity_key`` is the key's canonical JSON text.
    Column("project", String(128), primary_key=True),
    Column("entity", String(128), primary_key=True),
    Column("entity_key", String(512), primary_key=True),
    Column("restricted_at", DateTime(timezone=True), nullable=False),
    Column("restricted_by", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    ForeignKeyConstraint(["project"], ["parity_projects.project"], ondelete="CASCADE"),
)

__all__ = [
    "ACTIONS",
    "ALEMBIC_VERSION_TABLE",
    "alerts",
    "audit",
    "audit_heads",
    "materialization_jobs",
    "materializations",
    "metadata",
    "monitor_results",
    "objects",
    "projects",
    "restrictions",
    "snapshots",
    "stream_consumers",
    "tokens",
    "usage",
    "versions",
    "view_freshness",
]
