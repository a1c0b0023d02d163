"""Who an HTTP request is for: its ``Authorization: Bearer <token>`` (with ``auth`` on).

Every endpoint except ``/health`` needs a valid token: none, a malformed, forged, expired or
revoked one is 401 (``unauthenticated``, ``invalid_token``, ``token_expired``,
``token_revoked``; the answer carries ``WWW-Authenticate: Bearer``). The request then runs
as the token's actor (``parity.governance.context``), its purpose from
``X-Parity-Purpose``; what the actor may do is the access hooks' business (403
``forbidden`` / ``purpose_not_allowed``). Endpoints that only describe the server
(``/ready``, ``/metrics``, ``/openapi.json``, ``/docs``, ``/``, the job listings) need a
valid token and nothing more.
"""

from __future__ import annotations

import contextvars
import hashlib
import re
from typing import TYPE_CHECKING, Any

from parity.errors import AuthenticationError
from parity.governance import context, tokens
from parity.governance.context import Actor
from parity.governance.tokens import authenticate

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["OPEN_PATHS", "SERVER_ACTOR", "ServerAuth"]

OPEN_PATHS = frozenset({"/health"})
"""Paths answered without a token."""

SERVER_ACTOR = Actor("parity-server", roles=("admin",), via="local")
"""Who the server's own work runs as (warming its caches): nothing it reads leaves it."""

_PURPOSE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")


class ServerAuth:
    """Authenticates requests against one store's tokens (and JWTs)."""

    def __init__(self, store: FeatureStore):
        self.store = store
        config = getattr(store, "config", None)  # (a stand-in store without one: no memo)
        self._ttl: float = 0.0 if config is None else config.auth.token_cache_seconds
        self._memo: dict[bytes, tuple[int, Any]] = {}
        """The SHA-256 of an ``Authorization`` header (never the header: no secret kept) ->
        (``tokens.epoch()`` when found, its verification in ``tokens``' cache): a request
        with a header seen before skips parsing it and hashing the token again. The cache's
        rules hold as they are: an entry is trusted for ``auth.token_cache_seconds`` from
        its verification and not past its expiry, and a revocation in this process
        (``forget_cached``, which moves the epoch) drops it at once."""

    def actor(self, authorization: bytes | None, purpose: bytes | None) -> Actor:
        """The request's actor; ``AuthenticationError`` (audited) without a valid token."""
        if authorization is not None:
            digest = hashlib.sha256(authorization).digest()
            seen = self._memo.get(digest)
            if (
                seen is not None
                and seen[0] == tokens.epoch()
                and tokens.trusted(self.store, seen[1], self._ttl)
            ):
                actor: Actor = seen[1].actor
                return actor if purpose is None else self._with_purpose(actor, purpose)
        actor = self._authenticate(authorization)
        return actor if purpose is None else self._with_purpose(actor, purpose)

    def _authenticate(self, authorization: bytes | None) -> Actor:
        if authorization is None:
            raise self._refuse("this endpoint needs a token: Authorization: Bearer <token>")
        scheme, _, credential = authorization.strip().partition(b" ")
        credential = credential.strip()
        if scheme.lower() != b"bearer" or not credential:
            raise self._refuse("the Authorization header must be 'Bearer <token>'")
        try:
            token = credential.decode("ascii")
        except UnicodeDecodeError:
            raise self._refuse("the token is not ASCII text", "invalid_token") from None
        epoch = tokens.epoch()  # before: a revocation meanwhile makes the entry stale
        actor = authenticate(self.store, token)
        hit = tokens.cached(self.store, token) if self._ttl > 0 else None
        if hit is not None and hit.actor is actor:
            if len(self._memo) >= 4096:
                self._memo.clear()
            self._memo[hashlib.sha256(authorization).digest()] = (epoch, hit)
        return actor

    @staticmethod
    def _with_purpose(actor: Actor, purpose: bytes) -> Actor:
        text = purpose.decode("latin-1").strip()
        if not _PURPOSE.match(text):
            from parity.server.errors import ApiError

            raise ApiError(
                "invalid_request",
                "X-Parity-Purpose must be 1-64 letters, digits or _ . : -",
            )
        return actor.with_purpose(text)

    def enter(
        self, authorization: bytes | None, purpose: bytes | None
    ) -> contextvars.Token[Actor | None]:
        """Set the request's actor for this task (and what it hands on with ``carry``);
        ``exit`` with the returned token once answered."""
        return context._ACTOR.set(self.actor(authorization, purpose))

    @staticmethod
    def exit(token: contextvars.Token[Actor | None]) -> None:
        context._ACTOR.reset(token)

    def _refuse(self, message: str, code: str = "unauthenticated") -> AuthenticationError:
        self.store.governance.audit.record(
            action="authenticate",
            outcome="denied",
            detail=code,
            actor=Actor("anonymous", via="token"),
        )
        return AuthenticationError(message, code=code)
