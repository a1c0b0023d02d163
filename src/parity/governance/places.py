"""The places Parity keeps an entity's data in, each able to count, erase and export a
subject's rows there: what ``parity erase`` and ``parity export`` walk.

Built in, in this order: ``online`` (every online view keyed by the entity), ``offline_log``
(the Parquet files of pushes, ``parity.offline.log``), ``serving_log`` (what the feature
server served, ``parity.monitoring.serving_log``), ``training_snapshot`` (the snapshots'
files, rewritten as new content-addressed files, ``parity.snapshots.place``) and
``batch_source`` (the source files Parity reads but does not own: counted and listed,
rewritten only when asked). Another part that keeps data of its own registers its place::

    from parity.governance.places import ErasePlace, register_place

    class FeatureCachePlace(ErasePlace):
        name = "feature_cache"
        def erase(self, store, subject, *, dry_run, rewrite_sources): ...
        def export(self, store, subject): ...

    register_place(FeatureCachePlace())

The built-in places are in ``parity.governance.stored_places`` (online, serving log),
``parity.governance.source_files`` (offline log, batch sources) and
``parity.snapshots.place`` (training snapshots).

A place changes nothing when ``dry_run`` is true (it only counts) and reports one
``PlaceCount`` per thing it looked at (a view, a source, a folder), also when it found none.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from parity.governance.subjects import Subject

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = [
    "ERASED",
    "NOT_OWNED",
    "WOULD_ERASE",
    "ErasePlace",
    "Found",
    "PlaceCount",
    "places",
    "register_place",
    "status",
]

ERASED = "erased"
WOULD_ERASE = "would erase (dry run)"
NOT_OWNED = "not erased: owned outside Parity"


@dataclass(frozen=True)
class PlaceCount:
    """What one place held of the subject: ``rows`` (records online) in ``target`` (a view,
    a source, a folder or file), and what was done with them (``status``)."""

    place: str
    target: str
    rows: int
    status: str
    files: int = 0
    """Files rewritten (or that would be, or that hold rows left in place)."""
    note: str = ""


@dataclass(frozen=True)
class Found:
    """The subject's rows in one place's target, for an export."""

    place: str
    target: str
    table: pa.Table


class ErasePlace(ABC):
    """A place holding entity data; see the module docstring."""

    name: ClassVar[str]

    @abstractmethod
    def erase(
        self, store: FeatureStore, subject: Subject, *, dry_run: bool, rewrite_sources: bool
    ) -> list[PlaceCount]:
        """Remove (or with ``dry_run`` only count) the subject's rows here."""

    @abstractmethod
    def export(self, store: FeatureStore, subject: Subject) -> list[Found]:
        """The subject's rows here, as Arrow tables."""


_REGISTERED: dict[str, ErasePlace] = {}


def register_place(place: ErasePlace) -> ErasePlace:
    """Add ``place`` to those every erase and export walks, after the built-in ones (one of
    a built-in place's name replaces it, in its position); returns it."""
    _REGISTERED[place.name] = place
    return place


def places(builtin: list[ErasePlace]) -> list[ErasePlace]:
    """``builtin`` (one of them replaced by a registered place of its name), then the other
    registered places in their order."""
    names = {p.name for p in builtin}
    return [_REGISTERED.get(p.name, p) for p in builtin] + [
        p for n, p in _REGISTERED.items() if n not in names
    ]


def status(dry_run: bool) -> str:
    return WOULD_ERASE if dry_run else ERASED
