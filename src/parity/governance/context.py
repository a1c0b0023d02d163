"""Who an operation runs for: the *actor* (a principal, its roles, a declared purpose).

The feature server sets the actor of each request from its token; a ``FeatureStore`` made
with ``principal=`` (or ``PARITY_TOKEN`` in the environment) acts as that principal
otherwise. Hooks read it with ``current()``, so access checks, masking and the audit log
need no argument threaded through the layers::

    with acting_as(Actor("alice", roles=("analyst",), purpose="fraud")):
        store.get_online_features(...)

The actor lives in a ``contextvars.ContextVar``: each asyncio task and each thread sees its
own, and work handed to an executor keeps it only when submitted through ``carry``.
"""

from __future__ import annotations

import contextvars
import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

__all__ = ["Actor", "acting_as", "carry", "current", "local_actor"]

T = TypeVar("T")

Via = Literal["token", "jwt", "principal", "local"]


@dataclass(frozen=True)
class Actor:
    """A principal with its roles. ``via`` says how it was established: a Parity token, a
    JWT, ``FeatureStore(principal=...)``, or ``local`` (auth off: the OS user, unchecked).
    ``token_id`` is the public id of the token used (never its secret); ``purpose`` the
    purpose the caller declared for its reads."""

    principal: str
    roles: tuple[str, ...] = ()
    via: Via = "principal"
    token_id: str | None = None
    purpose: str | None = None

    def with_purpose(self, purpose: str | None) -> Actor:
        return (
            self if purpose is None or purpose == self.purpose else replace(self, purpose=purpose)
        )


_ACTOR: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("parity_actor", default=None)


def current() -> Actor | None:
    """The actor set for this task or thread, None when none is."""
    return _ACTOR.get()


@contextmanager
def acting_as(actor: Actor | None) -> Iterator[Actor | None]:
    """Run the block as ``actor`` (None: as nobody in particular, the store's default)."""
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)


def carry(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the caller's context (its actor), for handing to another thread."""
    ctx = contextvars.copy_context()

    def run(*args: Any, **kwargs: Any) -> T:
        return ctx.run(fn, *args, **kwargs)

    return run


def local_actor() -> Actor:
    """The OS user, as audit records name whoever runs Parity with auth off."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name (some containers): still a name to record
        user = "unknown"
    return Actor(user, via="local")
