"""Training snapshots as a place of erase and export (``parity.governance.places``).

A snapshot holds a subject's rows when its entity frame has the entity's join keys as
columns (every snapshot of features keyed by the entity does). ``erase`` removes those rows:
the file is rewritten, without them, as a new content-addressed file (``<new
digest>.parquet``, written atomically), and every snapshot that held the old file gets the
new digest, row count, column digests and profile, plus a note in ``erasures`` (when, the
entity, how many keys and rows, the digest before; never the key values). ``verify`` then
checks the new digest, and ``recreate`` joins the remaining rows. The old file is removed
once no snapshot holds it. A dry run counts and changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from parity.governance.places import ErasePlace, Found, PlaceCount, status
from parity.governance.subjects import Subject
from parity.snapshots import manifest as mf
from parity.snapshots.digest import table_digest
from parity.snapshots.files import drop_unreferenced, store_file
from parity.snapshots.fingerprint import shown_path
from parity.snapshots.verify import read_stored

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["PLACE", "SnapshotPlace"]

PLACE = "training_snapshot"


class SnapshotPlace(ErasePlace):
    """The rows of every training snapshot whose entity frame holds the entity's keys."""

    name = PLACE

    def erase(
        self, store: FeatureStore, subject: Subject, *, dry_run: bool, rewrite_sources: bool
    ) -> list[PlaceCount]:
        out = []
        by_digest: dict[str, list[mf.Snapshot]] = {}
        for snap in _holding(store, subject):
            by_digest.setdefault(snap.digest, []).append(snap)
        for snaps in by_digest.values():
            table, problems = read_stored(store, snaps[0])
            if table is None:
                out += [
                    PlaceCount(self.name, s.name, 0, "not found", note=problems[0]) for s in snaps
                ]
                continue
            mask = subject.rows_of(table, subject.join_keys)
            hits = 0 if mask is None else int(pc.sum(mask).as_py() or 0)
            note = f"file {snaps[0].path}"
            if hits and not dry_run:
                assert mask is not None
                path = _rewrite(store, subject, snaps, table.filter(pc.invert(mask)), hits)
                note = f"rewritten as {path}"
            out += [
                PlaceCount(self.name, s.name, hits, status(dry_run), int(hits > 0), note)
                for s in snaps
            ]
        return sorted(out, key=lambda c: c.target)

    def export(self, store: FeatureStore, subject: Subject) -> list[Found]:
        out = []
        for snap in _holding(store, subject):
            table, _ = read_stored(store, snap)
            if table is None:
                continue
            mask = subject.rows_of(table, subject.join_keys)
            if mask is not None:
                rows = table.filter(mask).replace_schema_metadata(None)
                out.append(Found(self.name, snap.name, rows))
        return out


def _holding(store: FeatureStore, subject: Subject) -> list[mf.Snapshot]:
    """The snapshots whose entity frame has every join key of the subject's entity."""
    keys = set(subject.join_keys)
    return [s for s in mf.list_all(store) if keys <= set(s.entity_columns)]


def _rewrite(
    store: FeatureStore, subject: Subject, snaps: list[mf.Snapshot], kept: pa.Table, hits: int
) -> str:
    """The new file, then the manifests (one transaction), then the old file removed; the
    new file's path."""
    digest = table_digest(kept)
    path = shown_path(store, store_file(store, kept, digest.sha256))
    at = datetime.fromtimestamp(store.clock.now_us() / 1e6, UTC).isoformat()
    updated = []
    for snap in snaps:
        note = {
            "at": at,
            "entity": subject.entity.name,
            "keys": len(subject.keys),
            "rows": hits,
            "previous_digest": snap.digest,
        }
        changed = mf.with_manifest(
            snap,
            columns=[c.to_json() for c in digest.columns],
            profile=_profile(kept, snap),
            erasures=[*snap.erasures, note],
        )
        updated.append(replace(changed, digest=digest.sha256, path=path, rows=kept.num_rows))
    mf.update(store, updated)
    drop_unreferenced(store, snaps[0].path, snaps[0].digest)
    return path


def _profile(kept: pa.Table, snap: mf.Snapshot) -> list[dict[str, Any]]:
    """The profile of the rows left, over the features (and types) profiled before."""
    from parity.monitoring.profile_arrow import profile_table
    from parity.types import parse

    features = [(p["feature"], parse(p["dtype"])) for p in snap.profile]
    return mf.jsonable(profile_table(kept, features).to_pylist())  # type: ignore[no-any-return]
