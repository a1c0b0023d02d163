"""The online store contract: keep the newest record per (view, entity key), read many fast.

Every store keeps one rule on every write path (materialize, push, write_to_online_store):
a record replaces the stored one only if its (event time, created time) is greater or equal
(equal = the later write wins), the same order the historical join uses. Expiry is the
reader's job (``parity.online.reader``): a store may also drop expired records on its own
(Redis key expiry) but never returns a record for another key or view.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parity.definitions import FeatureView


@dataclass(frozen=True)
class OnlineView:
    """What a store needs to know of a feature view."""

    name: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    ttl: timedelta | None

    @classmethod
    def of(cls, view: FeatureView, join_keys: Sequence[str]) -> OnlineView:
        """The store's view of a feature view. An aggregated view's ttl is its horizon
        (longest window plus a hop): a record not written for that long holds nothing any
        read can use."""
        ttl = view.ttl
        if view.is_aggregated:
            longest = max(a.window for a in view.aggregations)
            ttl = longest + (view.hop or timedelta(0))
        return cls(
            name=view.name, join_keys=tuple(join_keys), features=tuple(view.feature_names), ttl=ttl
        )


@dataclass(frozen=True)
class RecordBatch:
    """Encoded rows for one view: parallel lists of entity keys, times and records."""

    keys: list[bytes]
    event_us: list[int]
    created_us: list[int | None]
    records: list[bytes]

    def __len__(self) -> int:
        return len(self.keys)


class OnlineStore(ABC):
    """What every online store does; optional abilities are the ``Supports*`` mixins below,
    checked with ``isinstance`` (a store lists the ones it has in its class line)."""

    @abstractmethod
    def setup(self, views: Sequence[OnlineView]) -> None:
        """Create whatever the views need (tables, scripts); safe to call again."""

    @abstractmethod
    def write(self, view: OnlineView, batch: RecordBatch) -> int:
        """Store each record unless a newer one is stored; returns how many were stored.

        All or nothing for the batch where the store allows it (SQLite: one transaction).
        Keys repeated in one batch resolve by the same rule.
        """

    @abstractmethod
    def read(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        """The stored records, per request and key in order (None = none stored).

        Every request is answered in one round trip to the server where there is one.
        """

    @abstractmethod
    def delete(self, view: OnlineView, keys: Sequence[bytes]) -> int:
        """Remove the records of these entity keys; returns how many existed."""

    @abstractmethod
    def drop_views(self, names: Sequence[str]) -> None:
        """Remove every record of these views (after they left the registry)."""

    @abstractmethod
    def teardown(self) -> None:
        """Remove everything this project keeps in the store."""

    def close(self) -> None:  # noqa: B027 - stores without resources need nothing
        """Release connections."""


Updater = Callable[[Sequence[bytes], list[bytes | None]], list[bytes | None]]
"""Some of the keys and their current records in, their new records out (None: delete)."""


class SupportsUpdate(ABC):
    """Read-modify-write of records, atomic per key: what aggregated views need.

    ``update`` reads the records of ``keys``, calls ``fn(keys, records)`` and stores what it
    returns; no other write to those keys lands in between (SQLite: one transaction; Redis:
    a compare-and-set per key, and ``fn`` runs again, on those keys only, for the keys
    another writer changed).
    ``fn`` must therefore be a pure function of the records it gets.
    """

    @abstractmethod
    def update(self, view: OnlineView, keys: Sequence[bytes], fn: Updater) -> int:
        """Apply ``fn``; returns how many records were written or deleted."""


class SupportsAsyncRead(ABC):
    """Reads an event loop can await instead of blocking on (the feature server's path).

    ``read_async`` returns exactly what ``read`` returns for the same requests.
    """

    @abstractmethod
    async def read_async(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        """``read``, with the round trip awaited."""


class SupportsKeyScan(ABC):
    """Listing the entity keys a view holds: how erase finds a person's records in a view
    keyed by several entities (``user`` and ``merchant``) from the ``user`` part alone, and
    how ``parity keys rotate`` reaches every stored value.

    A full pass over the view's keys, for rare operations (erase, export, key rotation),
    never a read path.
    """

    @abstractmethod
    def scan_keys(self, view: OnlineView) -> Iterator[bytes]:
        """Every entity key stored for ``view`` (each once, in no particular order)."""


class SupportsCompact(ABC):
    """Storage rewritten so replaced or removed records leave no copy in the store's files
    (what re-encrypting plaintext values and erasing data need to be complete on disk)."""

    @abstractmethod
    def compact(self) -> None:
        """Drop every stale copy (SQLite: a WAL checkpoint, then VACUUM)."""
