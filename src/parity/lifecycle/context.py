"""Per-read context of the lifecycle checks: whether the caller asked for drafts, and the
deprecation notices a request collects for its answer's headers."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "ParityDeprecationWarning",
    "collect_notices",
    "drafts_requested",
    "including_drafts",
    "notice",
]


class ParityDeprecationWarning(FutureWarning):
    """A read touched a deprecated view, on-demand view or service (shown by default)."""


_DRAFTS: contextvars.ContextVar[bool] = contextvars.ContextVar("parity_drafts", default=False)
_NOTICES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "parity_lifecycle_notices", default=None
)


def drafts_requested() -> bool:
    return _DRAFTS.get()


@contextmanager
def including_drafts(wanted: bool = True) -> Iterator[None]:
    """Reads in the block are served drafts too (``include_drafts=True``)."""
    token = _DRAFTS.set(wanted)
    try:
        yield
    finally:
        _DRAFTS.reset(token)


def collect_notices() -> list[str]:
    """From now on (this task), deprecation notices are appended to the returned list."""
    found: list[str] = []
    _NOTICES.set(found)
    return found


def notice(text: str) -> bool:
    """Hand a notice to the collecting request; False when nobody collects."""
    found = _NOTICES.get()
    if found is None:
        return False
    if text not in found:
        found.append(text)
    return True
