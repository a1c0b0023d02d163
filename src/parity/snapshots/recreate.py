"""Recreating a snapshot: the same join run again, with the definitions it was made with.

``recreate(store, "train_v1")``:

1. reads the snapshot's file (it must verify: its entity columns are the rows joined again)
   and rebuilds, from the registry's history, the version of every object the manifest
   records (``parity.snapshots.pinned.definitions_at``): not the live definitions;
2. fingerprints the source files those definitions read now and compares them with the
   recorded ones (files added, removed, changed); a source none of whose recorded files is
   left is an error naming them, and so is an on-demand function whose code changed (its
   recorded hash no longer matches), since the join cannot be run as it was;
3. runs the join and compares the result's digest with the snapshot's.

Access checks and masking are the live registry's, as for any read now: a snapshot of a view
deleted since cannot be recreated until it is registered again (the error says so). It
writes nothing. ``Recreation.identical`` says whether the rows are the same; when they are
not, ``differences`` names the columns and ``changes`` the source files that moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from parity.definitions import DataSource
from parity.errors import (
    DataSourceNotFoundError,
    DefinitionError,
    ObjectNotFoundError,
    SnapshotError,
)
from parity.snapshots import manifest as mf
from parity.snapshots.digest import table_digest
from parity.snapshots.fingerprint import FileChange, compare, fingerprint_sources
from parity.snapshots.pinned import definitions_at, retrieve
from parity.snapshots.verify import read_stored

if TYPE_CHECKING:
    from parity.registry.catalog import Catalog
    from parity.store import FeatureStore

__all__ = ["Recreation", "recreate"]


@dataclass(frozen=True)
class Recreation:
    """A snapshot's join run again: whether it gave the same rows, and what moved."""

    name: str
    revision: int
    expected: str
    found: str
    rows: int
    differences: tuple[str, ...]
    """What differs in the result (rows, columns); empty when identical."""
    changes: tuple[FileChange, ...]
    """The source files added, removed or changed since the snapshot was made."""

    @property
    def identical(self) -> bool:
        return self.expected == self.found


def recreate(store: FeatureStore, name: str) -> Recreation:
    """See the module docstring; ``SnapshotError`` naming what prevents it."""
    snap = mf.shown(store, name)
    stored, problems = read_stored(store, snap)
    if stored is None or problems:
        raise SnapshotError(
            f"snapshot {name!r} cannot be recreated: {'; '.join(problems)} (its file holds "
            "the entity rows the join runs on)"
        )
    found = table_digest(stored)
    if found.sha256 != snap.digest:
        raise SnapshotError(
            f"snapshot {name!r} cannot be recreated: its file {snap.path} changed "
            f"({'; '.join(found.differences(snap.content))}); `parity snapshot verify {name}`"
        )
    catalog = definitions_at(store, snap.objects, snap.revision)
    current = fingerprint_sources(store, _sources(catalog))
    changes = compare(snap.sources, current)
    _refuse_missing(snap, changes)
    _check_functions(snap, catalog, store)
    request = snap.manifest["request"]
    try:
        result = retrieve(
            store,
            catalog,
            stored.select(list(snap.entity_columns)),
            request["features"],
            full_feature_names=bool(request["full_feature_names"]),
            timestamp_column=str(request["timestamp_column"]),
        )
    except DataSourceNotFoundError as exc:
        raise SnapshotError(f"snapshot {name!r} cannot be recreated: {exc}") from None
    except ObjectNotFoundError as exc:
        # the join runs on the snapshot's definitions, but access checks and masking apply
        # the live registry's rules, which know nothing of an object deleted since
        raise SnapshotError(
            f"snapshot {name!r} cannot be recreated: {exc} (reads are checked and masked by "
            "the live registry's rules; an object deleted since the snapshot was made must "
            "be registered again)"
        ) from None
    digest = table_digest(result)
    return Recreation(
        snap.name,
        snap.revision,
        snap.digest,
        digest.sha256,
        result.num_rows,
        tuple(digest.differences(snap.content)),
        tuple(changes),
    )


def _sources(catalog: Catalog) -> list[DataSource]:
    return [catalog.source_of(v) for v in catalog.views()]


def _refuse_missing(snap: mf.Snapshot, changes: list[FileChange]) -> None:
    """A source every recorded file of which is gone cannot be read as it was: refused,
    naming the files."""
    removed = {(c.source, c.path) for c in changes if c.change == "removed"}
    gone = [
        f.path
        for s in snap.sources
        if s.files and all((s.source, f.path) in removed for f in s.files)
        for f in s.files
    ]
    if gone:
        raise SnapshotError(
            f"snapshot {snap.name!r} cannot be recreated: the source files it was made from "
            f"were deleted: {', '.join(gone)}"
        )


def _check_functions(snap: mf.Snapshot, catalog: Catalog, store: FeatureStore) -> None:
    """Each on-demand view's function found with the code hash recorded, or an error."""
    from parity.repo.functions import resolve_function

    for view in catalog.on_demand_views():
        try:
            resolve_function(view, store.repo_path)
        except DefinitionError as exc:
            raise SnapshotError(
                f"snapshot {snap.name!r} cannot be recreated: {exc} (the snapshot was made "
                f"with code hash {view.udf.source_hash[:12]}; `parity describe "
                f"{view.name}@VERSION` shows the code each version was applied with)"
            ) from None
