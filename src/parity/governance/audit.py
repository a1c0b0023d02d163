"""The audit log: who did what, when, to which resources, with what outcome.

``store.governance.audit`` is an ``AuditLog`` when ``audit.enabled`` (default: on exactly
when ``auth`` is) and a ``NullAudit`` otherwise: it records nothing but still reads and
verifies what was recorded before::

    audit = store.governance.audit
    audit.record(action="token_create", resources=["token:ab12"], counts={"roles": 2})
    audit.records(since="2026-12-01", principal="alice", resource="feature_view:drivers")
    audit.verify()          # Verification(ok=True, records=..., head_seq=..., head_hash=...)

A record holds the time, the actor's principal and token id, the action, the resources
(``kind:name``), counts (keys, rows), the outcome (``ok``, ``denied``, ``error``) and a
detail text; never feature values or secrets (text that looks like a token is redacted).
Records are hash-chained per project in the registry database (``audit_chain``,
``audit_store``). How a record gets there:

- **Committed** (the Python API, the CLI): ``record`` returns once its record is committed,
  in groups (``audit_writer``, one writer thread per process), and raises ``AuditError`` if
  it could not be, so the operation fails. After a failed commit the log refuses new
  operations up front (``check_available``) until the database takes writes again.
- **Spooled** (the feature server, ``start_spool()``): ``record`` appends one line to the
  process's spool file and returns; it is shipped into the chain every 0.2 s
  (``audit_spool``), from a child process of the server's (``audit_shipper``). A failed append fails the operation (``AuditError``) and the log then
  refuses new ones up front until appends work again; a registry that cannot be written
  only delays shipping. A process that dies leaves its spool to the next one.

Reading (``records``, ``head``, ``verify``) first ships this process's spool and any that
ended processes left, so a process reads its own records at once; another live process's
records reach the chain within the ship interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from parity.errors import AuditError, GovernanceError
from parity.governance.audit_chain import AuditRecord, ChainCheck, Verification
from parity.governance.audit_spool import shape_of
from parity.governance.audit_store import AuditStore, Entry, counts_text, spooled
from parity.governance.audit_writer import Batch, GroupCommit, LoopWaker
from parity.governance.context import Actor
from parity.registry.engine import is_sqlite

if TYPE_CHECKING:
    from parity.governance.audit_spool import Shape, Spool
    from parity.store import FeatureStore

log = logging.getLogger("parity.audit")

__all__ = [
    "OUTCOMES",
    "AuditLog",
    "AuditRecord",
    "Commits",
    "NullAudit",
    "Outcome",
    "Verification",
    "audit_log",
    "collect",
    "redact",
]

Outcome = Literal["ok", "denied", "error"]
OUTCOMES = ("ok", "denied", "error")
MAX_ACTION = 32
MAX_PRINCIPAL = 128

_SECRET_PATTERNS = (
    (re.compile(r"(parity_[A-Za-z0-9]+)\.[A-Za-z0-9_\-]+"), r"\1.<redacted>"),
    (re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "<jwt redacted>"),
    (re.compile(r"(?i)(bearer\s+)\S+"), r"\1<redacted>"),
)


def redact(text: str) -> str:
    """``text`` with anything shaped like a token's secret, a JWT or a bearer credential
    replaced (the token's public id stays)."""
    if "parity_" not in text and "eyJ" not in text and "earer" not in text.lower():
        return text  # nothing shaped like one (the common case, checked cheaply)
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


# -- what an answer waits for (the feature server) -----------------------------------------
_WAITS: contextvars.ContextVar[Commits | None] = contextvars.ContextVar(
    "parity_audit_commits", default=None
)
_WAKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWaker] = (
    weakref.WeakKeyDictionary()
)


class Commits:
    """The audit commits one request waits for before it is answered, on ``loop`` (whose
    thread ``thread`` is)."""

    __slots__ = ("batches", "closed", "loop", "thread", "waker")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.batches: list[Batch[Entry]] = []
        self.closed = False
        self.loop = loop
        self.thread = threading.get_ident()
        waker = _WAKERS.get(loop)
        if waker is None:
            waker = _WAKERS[loop] = LoopWaker(loop)
        self.waker = waker

    def add(self, batch: Batch[Entry]) -> bool:
        """Wait for ``batch`` too; False once the answer is settled (wait yourself).
        Lock-free: appended first, so a batch added while ``settle`` runs is either seen
        by it or refused here (both, at worst: waited for twice)."""
        self.batches.append(batch)
        return not self.closed

    async def settle(self, *, raise_errors: bool = True) -> None:
        """Wait (without blocking the loop) until every record of the request committed;
        ``AuditError`` if one could not be (unless ``raise_errors`` is False)."""
        self.closed = True
        for batch in self.batches:
            if not batch.done:
                waiter = batch.on_loop(self.waker)
                if waiter is not None:
                    with contextlib.suppress(AuditError):
                        await waiter
            if batch.error is not None and raise_errors:
                raise AuditError(str(batch.error))


def collect() -> Commits:
    """Collect the audit commits of the current task (one server request) from now on:
    ``record`` hands its commit to the collection instead of blocking."""
    commits = Commits(asyncio.get_running_loop())
    _WAITS.set(commits)
    return commits


# -- the log ---------------------------------------------------------------------------------
class _Reader:
    """Reading and verifying a project's log (whether or not this process records)."""

    enabled = False

    def __init__(self, store: FeatureStore | None = None):
        self._store = store

    @cached_property
    def _rows(self) -> AuditStore:
        if self._store is None:
            raise GovernanceError("this audit recorder belongs to no store: nothing to read")
        return AuditStore(self._store.registry)

    def records(
        self,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        principal: str | None = None,
        resource: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        limit: int | None = 100,
    ) -> list[AuditRecord]:
        """Records matching every filter given, newest first, at most ``limit`` (None: all).

        ``since`` (inclusive) and ``until`` (exclusive) are datetimes, ISO 8601 text, or a
        duration back from now (``"1h"``, ``"7d"``); ``resource`` is ``kind:name`` or just
        a name (any kind)."""
        self._may_read()
        if outcome is not None and outcome not in OUTCOMES:
            raise GovernanceError(f"audit: outcome must be one of {OUTCOMES}, not {outcome!r}")
        if limit is not None and limit < 1:
            raise GovernanceError(f"audit: limit must be at least 1, not {limit}")
        like = None if resource is None else _resource_like(resource)
        found = self._rows.select(
            since=_when(since, "since"),
            until=_when(until, "until"),
            principal=principal,
            action=action,
            outcome=outcome,
            resource_like=like,
            limit=None if resource is not None else limit,
        )
        if resource is not None:
            found = [r for r in found if any(_names(res, resource) for res in r.resources)]
            found = found if limit is None else found[:limit]
        return found

    def head(self) -> tuple[int, str] | None:
        """The newest record's (seq, hash); None before the first record."""
        self._may_read()
        return self._rows.head()

    def _may_read(self) -> None:
        """With auth on, reading the log (who did what) needs ``admin``; then what is
        spooled (this process's, and what ended processes left) is shipped first."""
        store = self._store
        if store is not None and store.config.auth.enabled:
            from parity.governance.access import Resource

            store.governance.access.check(
                store.actor, "admin", [Resource("project", store.project)]
            )
        self._ship_spooled()

    def _ship_spooled(self) -> None:
        store = self._store
        if store is None:
            return
        from parity.governance.audit_spool import ship_orphans

        try:
            spool = self._spool()
            if spool is not None:
                spool.ship()
            ship_orphans(store)
        except Exception as exc:
            raise AuditError(
                "the audit log cannot take the spooled records now, so reading it would "
                f"miss them: {redact(str(exc))}"
            ) from exc

    def _spool(self) -> Any:
        return None

    def close(self) -> None:
        """Ship what is spooled and stop spooling (``FeatureStore.close`` does)."""

    def verify(self, *, expect_head: tuple[int, str] | str | None = None) -> Verification:
        """Walk the whole chain; ``ok`` or the first broken record (edited, deleted or
        inserted; see ``audit_chain``). ``expect_head``: a ``(seq, hash)`` or ``"seq:hash"``
        kept elsewhere earlier, which the chain must still contain."""
        self._may_read()
        check = ChainCheck(_anchor(expect_head))
        head = None
        for batch_head, batch in self._rows.scan():
            head = batch_head
            if not check.feed(batch):
                break
        return check.finish(head)


class NullAudit(_Reader):
    """The recorder while the audit log is off: records nothing (reading still works)."""

    enabled = False

    def record(
        self,
        *,
        action: str,
        resources: Sequence[str] = (),
        counts: Mapping[str, int] | None = None,
        outcome: Outcome = "ok",
        detail: str = "",
        actor: Actor | None = None,
    ) -> None:
        """Append one record (``resources`` as ``kind:name`` text, ``counts`` such as
        ``{"keys": 3}``; never values or secrets); raises ``AuditError`` if it cannot."""

    def check_available(self) -> None:
        """Raise ``AuditError`` while the log cannot be written (never, when off)."""


class AuditLog(_Reader):
    """The recorder of one store: appends to the project's chain (see the module docstring)."""

    enabled = True

    def __init__(self, store: FeatureStore):
        super().__init__(store)
        self._store_ref = store
        settings = store.config.audit
        rows = self._rows
        self.writer: GroupCommit[Entry] = GroupCommit(
            rows.append,
            rows.probe,
            window_s=settings.flush_ms / 1000.0,
            timeout_s=store.registry.timeout + 5.0,
            describe=lambda exc, n: (
                f"audit log in {store.registry.location}: could not write {n} record(s): "
                f"{redact(str(exc))}"
            ),
            release=rows.release,
            inline=is_sqlite(store.registry.url),  # a local commit: on the loop
        )
        self.spooled: Spool | None = None
        """The spool records go to (``start_spool``); None: each is committed."""
        self._principals: dict[str, str] = {}

    def start_spool(self, **options: Any) -> Spool:
        """Spool records from now on (see the module docstring), after shipping what
        ended processes left; ``OSError`` when the spool folder cannot be made.
        ``options``: ``Spool``'s (``interval_s``, ``ship_records``, ``shipper``: "process"
        ships from a child process, ``audit_shipper``)."""
        from parity.governance.audit_spool import Spool, ship_orphans

        store = self._store_ref
        try:
            ship_orphans(store)
        except Exception as exc:  # they stay; shipped by a later read or start
            log.warning("could not ship the audit spools ended processes left: %s", exc)
        if self.spooled is None:
            self.spooled = Spool(store, self._rows, **options)
        return self.spooled

    def _spool(self) -> Spool | None:
        return self.spooled

    def close(self) -> None:
        spool, self.spooled = self.spooled, None
        if spool is not None:
            spool.close()
            self._rows.release()

    def record(
        self,
        *,
        action: str,
        resources: Sequence[str] = (),
        counts: Mapping[str, int] | None = None,
        outcome: Outcome = "ok",
        detail: str = "",
        actor: Actor | None = None,
    ) -> None:
        """Append one record and wait for its commit (see the module docstring);
        ``AuditError`` if it could not be written, ``GovernanceError`` for bad fields."""
        who = actor if actor is not None else self._store_ref.actor
        self._submit(make_entry(who, action, resources, counts, outcome, detail))

    def _submit(self, entry: Entry) -> None:
        """Spool ``entry``, or queue it: a request of the feature server awaits its commit
        in ``settle``; any other caller blocks until it committed."""
        spool = self.spooled
        if spool is not None:
            at_us, key, counts = spooled(entry)
            spool.write(at_us, shape_of(key), counts)
            return
        waits = _WAITS.get()
        if waits is not None and not waits.closed:
            # On the request's own loop thread the batch may be committed on that loop
            # (so never block here: nothing can close ``waits`` between the check and
            # ``add``, both run in this task). Elsewhere (a thread the request handed work
            # to) the writer thread commits it.
            on_loop = waits.thread == threading.get_ident()
            batch = self.writer.submit(entry, waits.loop if on_loop else None)
            if waits.add(batch):
                return
        else:
            batch = self.writer.submit(entry)
        self.writer.wait(batch)

    def record_checked(
        self,
        actor: Actor,
        action: str,
        resources: tuple[str, ...],
        counts: dict[str, int],
        outcome: str,
        detail: str,
    ) -> None:
        """``record`` for fields Parity built itself (the hooks: action, resources, integer
        counts), so only the actor's and the detail's text are redacted, not checked."""
        spool = self.spooled
        if spool is not None:  # the feature server's path
            shape = self.shape(actor, action, resources, outcome, detail)
            spool.write(time.time_ns() // 1000, shape, counts_text(counts))
            return
        entry = Entry(
            datetime.now(UTC),
            redact(actor.principal)[:MAX_PRINCIPAL],
            action,
            resources,
            counts,
            outcome,
            redact(detail) if detail else detail,
            actor.token_id,
        )
        self._submit(entry)

    def shape(
        self, actor: Actor, action: str, resources: tuple[str, ...], outcome: str, detail: str
    ) -> Shape:
        """The spool's shape of a record of Parity's own fields (``record_checked``'s);
        the hooks keep it per read plan and actor, so a read's record costs one line."""
        principal = self._principals.get(actor.principal)
        if principal is None:
            if len(self._principals) > 4096:
                self._principals.clear()
            principal = redact(actor.principal)[:MAX_PRINCIPAL]
            self._principals[actor.principal] = principal
        detail = redact(detail) if detail else detail
        return shape_of((principal, action, resources, outcome, detail, actor.token_id))

    def check_available(self) -> None:
        """Raise ``AuditError`` while the log cannot be written: operations are refused up
        front rather than done and then failed."""
        spool = self.spooled
        failure = self.writer.failure if spool is None else spool.failure
        if failure is not None:
            raise AuditError(
                "the audit log cannot be written, so nothing is done until it can: "
                f"{redact(str(failure))}"
            )


def audit_log(store: FeatureStore) -> AuditLog | NullAudit:
    """The store's audit log (a ``NullAudit`` while it is off)."""
    if store.config.audit_enabled:
        return AuditLog(store)
    return NullAudit(store)


def make_entry(
    actor: Actor,
    action: str,
    resources: Sequence[str],
    counts: Mapping[str, int] | None,
    outcome: str,
    detail: str,
) -> Entry:
    """A checked record: ``GovernanceError`` naming the field that is wrong."""
    if not isinstance(action, str) or not 0 < len(action) <= MAX_ACTION:
        raise GovernanceError(f"audit record: action must be 1-{MAX_ACTION} characters: {action!r}")
    if outcome not in OUTCOMES:
        raise GovernanceError(f"audit record: outcome must be one of {OUTCOMES}, not {outcome!r}")
    if isinstance(resources, str):
        raise GovernanceError("audit record: resources must be a list of 'kind:name' texts")
    res = tuple(resources)
    for r in res:
        if not isinstance(r, str):
            raise GovernanceError(f"audit record: resource {r!r} is not text")
    nums: dict[str, int] = {}
    for key, value in (counts or {}).items():
        if not isinstance(key, str) or key.startswith("@"):
            raise GovernanceError(f"audit record: count name {key!r} must be text, not '@...'")
        if isinstance(value, bool) or not isinstance(value, int):
            raise GovernanceError(f"audit record: count {key!r} must be an integer: {value!r}")
        nums[key] = value
    principal = redact(actor.principal)[:MAX_PRINCIPAL]
    return Entry(
        at=datetime.now(UTC),
        principal=principal,
        action=action,
        resources=tuple(redact(r) for r in res),
        counts=nums,
        outcome=outcome,
        detail=redact(detail),
        token_id=actor.token_id,
    )


def _when(value: datetime | str | None, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*[smhdw]\s*", value):
        from parity.definitions.base import parse_duration

        return datetime.now(UTC) - parse_duration(value.strip())
    from parity.clock import parse_time

    return parse_time(value, f"audit --{what}")


def _names(stored: str, wanted: str) -> bool:
    if ":" in wanted:
        return stored == wanted
    return stored.partition(":")[2] == wanted


def _resource_like(resource: str) -> str:
    escaped = resource.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f'%"{escaped}"%' if ":" in resource else f'%:{escaped}"%'


def _anchor(value: tuple[int, str] | str | None) -> tuple[int, str] | None:
    if value is None or isinstance(value, tuple):
        return value
    seq, sep, digest = value.partition(":")
    if not sep or not seq.strip().isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest.strip()):
        raise GovernanceError(
            f"audit: a kept head is 'SEQ:HASH' (as `parity audit verify` prints), not {value!r}"
        )
    return int(seq), digest.strip()
