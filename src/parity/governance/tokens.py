"""Parity's API tokens: ``parity_<id>.<secret>``, random, shown once, kept as a salted hash.

::

    issued = tokens.create(store, "alice", ["analyst"], expires="30d")
    issued.token            # 'parity_3f9c0a1b2c3d4e5f.Jx...'; only now, never again
    tokens.list_tokens(store)                  # TokenRecord: id, principal, roles, times
    tokens.revoke(store, issued.record.id)
    tokens.authenticate(store, issued.token)   # -> Actor("alice", ("analyst",), via="token")

The id is public (listings, the audit log name it); the secret is 256 random bits, stored
as HMAC-SHA-256 under a per-token random salt and compared in constant time. A fast hash
is enough for secrets this long (no dictionary to guess from); it keeps verification cheap.

With ``auth`` on, creating, listing and revoking tokens needs ``admin``, except the
bootstrap: while the project has no active token with the ``admin`` role, a local caller
(no ``PARITY_TOKEN``, no ``principal=``) may create one (audited as ``bootstrap``).

``authenticate`` also takes JWTs (``parity.governance.jwt``). A verified credential is
trusted for ``auth.token_cache_seconds`` per process; a revocation made in this process
drops it at once, one made elsewhere is seen within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from parity.definitions.base import NAME_RE, parse_duration
from parity.errors import AuthenticationError, GovernanceError
from parity.governance.context import Actor
from parity.registry.models import tokens as table

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = [
    "IssuedToken",
    "TokenRecord",
    "authenticate",
    "create",
    "forget_cached",
    "list_tokens",
    "revoke",
]

PREFIX = "parity_"
_TOKEN_RE = re.compile(r"^parity_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})\Z")


@dataclass(frozen=True)
class TokenRecord:
    """What the registry keeps about a token: never its secret."""

    id: str
    principal: str
    roles: tuple[str, ...]
    description: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class IssuedToken:
    """A token just made: ``token`` is the only time its secret is shown."""

    token: str
    record: TokenRecord

    def __repr__(self) -> str:  # never print the secret by accident
        return f"IssuedToken(token='parity_{self.record.id}.***', record={self.record!r})"


# -- the cache of verified credentials ---------------------------------------------------


@dataclass(frozen=True)
class _Cached:
    actor: Actor
    checked_at: float
    expires_us: int | None


_cache: dict[tuple[str, bytes], _Cached] = {}
_cache_lock = threading.Lock()
_epoch = 0
"""Moves whenever cached verifications are dropped (``forget_cached``): what a caller
remembering ``_Cached`` entries of its own (the feature server's ``ServerAuth``) checks."""


def epoch() -> int:
    """The current ``_epoch`` (see there)."""
    return _epoch


def cached(store: FeatureStore, token: str) -> _Cached | None:
    """The cache's entry for ``token`` (None when there is none); whether it may still be
    trusted is ``trusted``'s to say."""
    return _cache.get(_cache_key(store, token))


def trusted(store: FeatureStore, hit: _Cached, ttl: float) -> bool:
    """Whether a cached verification is still trusted: younger than ``ttl`` seconds
    (``auth.token_cache_seconds``) and its token not expired."""
    return time.monotonic() - hit.checked_at < ttl and (
        hit.expires_us is None or store.clock.now_us() < hit.expires_us
    )


def _cache_key(store: FeatureStore, token: str) -> tuple[str, bytes]:
    # A digest, not the token, so a heap dump of the cache holds no usable secret.
    digest = hashlib.sha256(token.encode()).digest()
    reg = store.registry
    scope: str | None = reg.__dict__.get("_token_scope")
    if scope is None:  # the registry's identity as text, made once (a URL hashes slowly)
        url = reg.url.render_as_string(hide_password=False)
        text = f"{url}\n{reg.schema}\n{reg.project}".encode()
        scope = reg.__dict__["_token_scope"] = hashlib.sha256(text).hexdigest()
    return (scope, digest)


def forget_cached(token_id: str | None = None) -> None:
    """Drop cached verifications (of one token id; None: all)."""
    global _epoch
    with _cache_lock:
        _epoch += 1
        for key in [
            k for k, v in _cache.items() if token_id is None or v.actor.token_id == token_id
        ]:
            del _cache[key]


# -- operations --------------------------------------------------------------------------


def _now(store: FeatureStore) -> datetime:
    return datetime.fromtimestamp(store.clock.now_us() / 1e6, UTC)


def _hash(salt: str, secret: str) -> str:
    return hmac.new(salt.encode(), secret.encode(), hashlib.sha256).hexdigest()


def _record(row: Any) -> TokenRecord:
    def utc(value: datetime | None) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)  # SQLite returns naive UTC

    created = utc(row.created_at)
    assert created is not None
    return TokenRecord(
        id=row.id,
        principal=row.principal,
        roles=tuple(row.roles),
        description=row.description,
        created_by=row.created_by,
        created_at=created,
        expires_at=utc(row.expires_at),
        revoked_at=utc(row.revoked_at),
    )


def _rows(store: FeatureStore) -> list[TokenRecord]:
    reg = store.registry
    if not reg.exists():
        return []
    with reg._read("read tokens") as conn:
        rows = conn.execute(
            sa.select(table).where(table.c.project == store.project).order_by(table.c.created_at)
        ).all()
    return [_record(r) for r in rows]


def _authorize_management(store: FeatureStore, what: str, *, creating: bool = False) -> str:
    """Who manages tokens (the actor's principal, or ``principal:bootstrap``); raises
    ``PermissionDeniedError`` (audited) unless the actor may."""
    actor = store.actor
    access = store.governance.access
    if not access.enabled or access.is_admin(actor):
        return actor.principal
    if creating and actor.via == "local":
        now = _now(store)
        admins = [t for t in _rows(store) if t.state(now) == "active" and "admin" in t.roles]
        if not admins:
            return f"{actor.principal}:bootstrap"
    from parity.governance.access import PROJECT, Resource

    raise access.denial(actor, "admin", [Resource(PROJECT, store.project)]) from None


def create(
    store: FeatureStore,
    principal: str,
    roles: Sequence[str],
    *,
    expires: timedelta | str | None = None,
    description: str = "",
) -> IssuedToken:
    """A new token for ``principal`` with ``roles`` (see the module docstring)."""
    if not isinstance(principal, str) or not principal.strip() or len(principal) > 128:
        raise GovernanceError(
            f"token principal must be a name of 1-128 characters, got {principal!r}"
        )
    roles = tuple(roles)
    bad = [r for r in roles if not isinstance(r, str) or not NAME_RE.match(r)]
    if bad:
        raise GovernanceError(f"token role {bad[0]!r} is not a valid role name")
    if not roles:
        raise GovernanceError(f"a token for {principal!r} needs at least one role (--role)")
    known = set(store.governance.access.roles())
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise GovernanceError(
            f"token role {unknown[0]!r} is not defined in the registry; "
            f"defined: {', '.join(sorted(known))} (apply the repo's roles first)"
        )
    lifetime = None
    if expires is not None:
        try:
            lifetime = parse_duration(expires)
        except ValueError as exc:
            raise GovernanceError(f"token expiry: {exc}") from None
        if lifetime <= timedelta(0):
            raise GovernanceError(f"token expiry must be positive, got {expires!r}")
    created_by = _authorize_management(store, "create", creating=True)
    now = _now(store)
    token_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
    record = TokenRecord(
        id=token_id,
        principal=principal,
        roles=roles,
        description=description,
        created_by=created_by,
        created_at=now,
        expires_at=None if lifetime is None else now + lifetime,
        revoked_at=None,
    )
    reg = store.registry
    reg._create()
    with reg._write("create a token") as conn:
        reg._lock_project(conn)
        conn.execute(
            table.insert().values(
                id=token_id,
                project=store.project,
                principal=principal,
                roles=list(roles),
                salt=salt,
                hash=_hash(salt, secret),
                description=description,
                created_by=created_by,
                created_at=now,
                expires_at=record.expires_at,
                revoked_at=None,
            )
        )
    store.governance.audit.record(
        action="token_create",
        resources=[f"token:{token_id}"],
        detail=f"principal={principal} roles={','.join(roles)} by={created_by}",
    )
    return IssuedToken(f"{PREFIX}{token_id}.{secret}", record)


def list_tokens(store: FeatureStore, *, include_revoked: bool = False) -> list[TokenRecord]:
    """The project's tokens, oldest first (revoked ones only with ``include_revoked``)."""
    _authorize_management(store, "list")
    return [t for t in _rows(store) if include_revoked or t.revoked_at is None]


def revoke(store: FeatureStore, token_id: str) -> TokenRecord:
    """Revoke a token by id (at once in this process; elsewhere within the cache time)."""
    token_id = token_id.removeprefix(PREFIX).split(".", 1)[0]  # an id, never keep a secret
    by = _authorize_management(store, "revoke")
    reg = store.registry
    found = None
    if reg.exists():
        with reg._write("revoke a token") as conn:
            reg._lock_project(conn)
            where = (table.c.project == store.project) & (table.c.id == token_id)
            conn.execute(
                table.update()
                .where(where & table.c.revoked_at.is_(None))
                .values(revoked_at=_now(store))
            )
            row = conn.execute(sa.select(table).where(where)).first()
            found = None if row is None else _record(row)
    if found is None:
        raise GovernanceError(f"no token with id {token_id!r} in project {store.project!r}")
    forget_cached(token_id)
    store.governance.audit.record(
        action="token_revoke", resources=[f"token:{token_id}"], detail=f"by={by}"
    )
    return found


def authenticate(store: FeatureStore, token: str) -> Actor:
    """The actor a bearer credential (Parity token or JWT) stands for; raises
    ``AuthenticationError`` (code ``invalid_token``, ``token_expired``, ``token_revoked``;
    recorded in the audit log) otherwise. The error never repeats the credential."""
    ttl = store.config.auth.token_cache_seconds
    key = _cache_key(store, token)
    hit = _cache.get(key)
    if hit is not None and trusted(store, hit, ttl):
        return hit.actor
    try:
        if token.startswith(PREFIX):
            actor, expires_us = _verify_parity_token(store, token)
        else:
            from parity.governance import jwt

            actor, expires_us = jwt.verify(store, token)
    except AuthenticationError as exc:
        store.governance.audit.record(
            action="authenticate",
            outcome="denied",
            detail=exc.code,
            actor=Actor("anonymous", via="token"),
        )
        raise
    if ttl > 0:
        with _cache_lock:
            _cache[key] = _Cached(actor, time.monotonic(), expires_us)
    return actor


def _verify_parity_token(store: FeatureStore, token: str) -> tuple[Actor, int | None]:
    match = _TOKEN_RE.match(token)
    invalid = AuthenticationError("invalid token", code="invalid_token")
    if match is None:
        raise invalid
    token_id, secret = match.groups()
    reg = store.registry
    row = None
    if reg.exists():
        with reg._read("check a token") as conn:
            row = conn.execute(
                sa.select(table).where(
                    (table.c.project == store.project) & (table.c.id == token_id)
                )
            ).first()
    # Compare even when the id is unknown, so timing does not tell ids apart.
    salt, stored = (row.salt, row.hash) if row is not None else ("0" * 32, "0" * 64)
    if not hmac.compare_digest(_hash(salt, secret), stored) or row is None:
        raise invalid
    record = _record(row)
    state = record.state(_now(store))
    if state == "revoked":
        raise AuthenticationError(f"token {token_id} was revoked", code="token_revoked")
    if state == "expired":
        raise AuthenticationError(f"token {token_id} has expired", code="token_expired")
    expires_us = None
    if record.expires_at is not None:
        expires_us = int(record.expires_at.timestamp() * 1_000_000)
    actor = Actor(record.principal, roles=record.roles, via="token", token_id=token_id)
    return actor, expires_us
