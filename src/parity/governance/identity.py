"""Who a ``FeatureStore`` acts as outside a request (``FeatureStore(principal=...)``).

- an ``Actor``: as given;
- a Parity token (``parity_<id>.<secret>``) or a JWT: verified (``parity.governance.tokens``);
- a name: that principal with the roles ``auth.principals`` gives it in ``parity.yaml``
  (none: it may do nothing while auth is on);
- None: the token in ``PARITY_TOKEN`` when set (verified whatever it looks like: a value
  that is no valid token is an ``AuthenticationError``), else the OS user (``via="local"``).

With auth off the actor only names who did what in the audit log; nothing is checked.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from parity.governance.context import Actor, local_actor

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["TOKEN_ENV", "default_actor", "looks_like_token"]

TOKEN_ENV = "PARITY_TOKEN"
TOKEN_PREFIX = "parity_"


def looks_like_token(text: str) -> bool:
    """Whether ``text`` is a bearer credential (a Parity token or a JWT), not a name."""
    return (text.startswith(TOKEN_PREFIX) and "." in text) or text.count(".") == 2


def default_actor(store: FeatureStore, principal: str | Actor | None) -> Actor:
    """The actor for ``principal`` (see the module docstring)."""
    if isinstance(principal, Actor):
        return principal
    if principal is None:
        token = os.environ.get(TOKEN_ENV)
        if not token:
            return local_actor()
        from parity.governance.tokens import authenticate

        return authenticate(store, token.strip())
    if looks_like_token(principal):
        from parity.governance.tokens import authenticate

        return authenticate(store, principal)
    roles = store.config.auth.principals.get(principal, ())
    return Actor(principal, roles=tuple(roles), via="principal")
