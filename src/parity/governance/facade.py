"""``store.governance``: the governance operations, each delegated to its module.

::

    gov = store.governance
    issued = gov.create_token("alice", ["analyst"], expires="30d")   # issued.token, once
    gov.tokens(); gov.revoke_token(issued.record.id)                    # parity.governance.tokens
    gov.access.check(store.actor, "read_online", [("feature_view", "driver_stats")])
    gov.audit.records(since=..., principal="alice"); gov.audit.verify()  # parity.governance.audit
    gov.erase("user", [1, 2], dry_run=True)                             # parity.governance.erase
    gov.export("user", [1], "user-1.json")
    gov.restrict("user", [1, 2]); gov.lift("user", [1])                 # parity.governance.restrict
    gov.run_retention()                                                 # parity.governance.retention
    gov.rotate_keys()                                                   # parity.governance.keys
    gov.violations()                                                    # parity.governance.policies
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parity.definitions import Definition
    from parity.store import FeatureStore

__all__ = ["Governance"]


class Governance:
    """What governance keeps and does for one store; every part is built on first use."""

    def __init__(self, store: FeatureStore):
        self._store = store

    # -- tokens and access (parity.governance.tokens, .access) ----------------------------
    def create_token(
        self,
        principal: str,
        roles: Sequence[str],
        *,
        expires: timedelta | str | None = None,
        description: str = "",
    ) -> Any:
        """A new random token for ``principal`` with ``roles``; its secret is returned once
        (``.token``) and only a salted hash is kept."""
        from parity.governance import tokens

        return tokens.create(
            self._store, principal, roles, expires=expires, description=description
        )

    def tokens(self, *, include_revoked: bool = False) -> list[Any]:
        from parity.governance import tokens

        return tokens.list_tokens(self._store, include_revoked=include_revoked)

    def revoke_token(self, token_id: str) -> Any:
        from parity.governance import tokens

        return tokens.revoke(self._store, token_id)

    @cached_property
    def access(self) -> Any:
        """The access policy over the repo's roles (``parity.governance.access.Access``)."""
        from parity.governance.access import Access

        return Access(self._store)

    # -- the audit log (parity.governance.audit) ------------------------------------------
    @cached_property
    def audit(self) -> Any:
        """The audit log (``record``, ``records``, ``verify``); a no-op recorder when off."""
        from parity.governance.audit import audit_log

        return audit_log(self._store)

    # -- data subjects (parity.governance.erase, .restrict) -------------------------------
    def erase(
        self,
        entity: str,
        keys: Sequence[Any],
        *,
        dry_run: bool = False,
        rewrite_sources: bool = False,
    ) -> Any:
        """Remove these entity keys' data from every place Parity keeps it; a receipt with
        counts per place."""
        from parity.governance import erase

        return erase.erase(
            self._store, entity, keys, dry_run=dry_run, rewrite_sources=rewrite_sources
        )

    def export(
        self, entity: str, keys: Sequence[Any], path: str | Path, *, format: str | None = None
    ) -> Any:
        """Everything Parity holds about these keys, written to ``path`` (JSON or Parquet)."""
        from parity.governance import erase

        return erase.export(self._store, entity, keys, path, format=format)

    def restrict(self, entity: str, keys: Sequence[Any], *, reason: str = "") -> int:
        """Restrict processing of these keys: served masked on every path from now on."""
        from parity.governance import restrict

        return restrict.restrict(self._store, entity, keys, reason=reason)

    def lift(self, entity: str, keys: Sequence[Any]) -> int:
        from parity.governance import restrict

        return restrict.lift(self._store, entity, keys)

    def restrictions(self, entity: str | None = None) -> list[Any]:
        from parity.governance import restrict

        return restrict.restrictions(self._store, entity)

    # -- retention, keys, policies ---------------------------------------------------------
    def run_retention(self, *, dry_run: bool = False) -> Any:
        """Delete offline-log and serving-log rows older than their ``retention``."""
        from parity.governance import retention

        return retention.run(self._store, dry_run=dry_run)

    def rotate_keys(self, *, progress: bool = False) -> Any:
        """Re-encrypt every encrypted value with the active key (``parity keys rotate``)."""
        from parity.governance import keys

        return keys.rotate(self._store, progress=progress)

    def violations(self, objects: Sequence[Definition] | None = None) -> list[Any]:
        """Apply-time policy violations (``governance:`` in parity.yaml), per object and field."""
        from parity.governance import policies

        return policies.violations(self._store, objects)
