"""Per-entity erase and export (the data subject's rights to erasure and to access).

``erase(store, "user", [1, 2])`` follows lineage from the entity to every feature view keyed
by it (alone or with other entities) and from those to their sources, then removes the keys'
rows from every place Parity keeps them (``parity.governance.places``: the online store, the
offline log, the serving log, and any place a later part registers), through the write
hooks (``kind="erase"``, ``to="online_and_offline"``: access checks, which ask for
``admin`` on every view, and the audit log see it; a dry run and an export are checked the
same way). Batch source files are
Parity's to read, not to change: the receipt lists them as "not erased: owned outside
Parity" with the rows they hold, unless ``rewrite_sources=True`` (then they are rewritten
atomically). ``dry_run=True`` counts and changes nothing. The receipt is recorded in the
audit log as counts only (never the key values).

``export(store, "user", [1], "user-1.json")`` writes everything those places hold about the
keys to one JSON or Parquet file (``format``: from the file's suffix when not given).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from parity.errors import AccessError, GovernanceError
from parity.governance import places as _places
from parity.governance.places import ERASED, NOT_OWNED, ErasePlace, Found, PlaceCount
from parity.governance.source_files import BatchSourcePlace, OfflineLogPlace
from parity.governance.stored_places import OnlinePlace, ServingLogPlace
from parity.governance.subjects import Subject, require_admin, subject

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["EraseReceipt", "ExportResult", "erase", "export", "places"]

FORMATS = ("json", "parquet")


@dataclass(frozen=True)
class EraseReceipt:
    """What an erase found and did, per place and target (a view, a source, a folder)."""

    entity: str
    keys: tuple[Any, ...]
    views: tuple[str, ...]
    """Every feature view keyed by the entity (the lineage followed)."""
    counts: tuple[PlaceCount, ...]
    dry_run: bool
    at: datetime

    def rows(self, place: str | None = None, *, erased: bool | None = None) -> int:
        """The rows (records online) found, in ``place`` or everywhere; ``erased``: only
        those removed (True) or only those left (False)."""
        return sum(
            c.rows
            for c in self.counts
            if (place is None or c.place == place)
            and (erased is None or (c.status == ERASED) == erased)
        )

    @property
    def not_erased(self) -> tuple[PlaceCount, ...]:
        """The places holding rows of these keys that Parity left (owned outside it)."""
        return tuple(c for c in self.counts if c.status == NOT_OWNED and c.rows)

    def by_place(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.counts:
            out[c.place] = out.get(c.place, 0) + c.rows
        return out


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and how many rows each place gave."""

    entity: str
    keys: tuple[Any, ...]
    path: Path
    format: str
    counts: tuple[PlaceCount, ...]

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.counts)


def erase(
    store: FeatureStore,
    entity: str,
    keys: Sequence[Any],
    *,
    dry_run: bool = False,
    rewrite_sources: bool = False,
) -> EraseReceipt:
    """Remove these keys' data everywhere Parity keeps it; see the module docstring.
    ``GovernanceError`` (naming the entity and key) for a bad key, and nothing changed."""
    catalog = store.catalog(fresh=True)
    subj = subject(catalog, entity, keys)
    counts: list[PlaceCount] = []
    resources = [f"entity:{entity}", *(f"feature_view:{v}" for v in subj.view_names)]

    def run() -> tuple[int, int, None]:
        for place in places():
            counts.extend(
                place.erase(store, subj, dry_run=dry_run, rewrite_sources=rewrite_sources)
            )
        return len(subj.keys), sum(c.rows for c in counts if c.status == ERASED), None

    try:
        if dry_run:  # changes nothing: no write hooks, the same access check
            require_admin(store, [v.view for v in subj.views])
            run()
        else:
            store._writes(fresh=True).observed(
                "erase", entity, subj.view_names, len(subj.keys), None, run, to="online_and_offline"
            )
    except Exception as exc:
        store.governance.audit.record(
            action="erase_receipt",
            resources=resources,
            counts=_audit_counts(subj, counts),
            outcome="denied" if isinstance(exc, AccessError) else "error",
            detail=f"{'dry run; ' if dry_run else ''}{type(exc).__name__}",
        )
        raise
    receipt = EraseReceipt(
        entity=entity,
        keys=_given(subj),
        views=subj.view_names,
        counts=tuple(counts),
        dry_run=dry_run,
        at=datetime.fromtimestamp(store.clock.now_us() / 1e6, UTC),
    )
    left = sum(c.rows for c in receipt.not_erased)
    store.governance.audit.record(
        action="erase_receipt",
        resources=resources,
        counts=_audit_counts(subj, counts),
        outcome="ok",
        detail=("dry run" if dry_run else "erased")
        + (f"; {left} row(s) left in sources owned outside Parity" if left else ""),
    )
    return receipt


def places() -> list[ErasePlace]:
    """Every place an erase and an export walk, in order: the online store, the offline log,
    the serving log, the training snapshots (``parity.snapshots.place``), the batch sources,
    then the places other parts registered (``parity.governance.places.register_place``)."""
    from parity.snapshots.place import SnapshotPlace

    builtin: list[ErasePlace] = [OnlinePlace(), OfflineLogPlace(), ServingLogPlace()]
    return _places.places([*builtin, SnapshotPlace(), BatchSourcePlace()])


def _given(subj: Subject) -> tuple[Any, ...]:
    """The subject's keys as a caller gives them: values, or dicts for a composite entity."""
    if len(subj.join_keys) == 1:
        return tuple(k[0] for k in subj.keys)
    return tuple(subj.key_dicts())


def _audit_counts(subj: Subject, counts: list[PlaceCount]) -> dict[str, int]:
    out = {"keys": len(subj.keys)}
    for c in counts:
        key = f"{c.place}_rows"
        out[key] = out.get(key, 0) + c.rows
    return out


# -- export -------------------------------------------------------------------------------


def export(
    store: FeatureStore,
    entity: str,
    keys: Sequence[Any],
    path: str | Path,
    *,
    format: str | None = None,
) -> ExportResult:
    """Everything Parity holds about these keys to ``path`` (written atomically): JSON (one
    document: the entity, the keys, then per place and target its rows) or Parquet (one
    table: ``__place``, ``__target``, then each target's columns as
    ``place.target.column``)."""
    out = Path(path)
    fmt = (format or out.suffix.lstrip(".") or "json").lower()
    if fmt not in FORMATS:
        raise GovernanceError(f"export format {fmt!r}: use json or parquet")
    catalog = store.catalog(fresh=True)
    subj = subject(catalog, entity, keys)
    require_admin(store, [v.view for v in subj.views])
    found: list[Found] = []
    for place in places():
        found.extend(place.export(store, subj))
    counts = tuple(PlaceCount(f.place, f.target, f.table.num_rows, "exported") for f in found)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp"
    if fmt == "json":
        tmp.write_text(json.dumps(_document(subj, found, store), indent=2, default=_json_value))
    else:
        pq.write_table(_wide(found), tmp)
    tmp.replace(out)
    store.governance.audit.record(
        action="export",
        resources=[f"entity:{entity}", *(f"feature_view:{v}" for v in subj.view_names)],
        counts={"keys": len(subj.keys), "rows": sum(c.rows for c in counts)},
        outcome="ok",
        detail=fmt,
    )
    return ExportResult(entity, _given(subj), out, fmt, counts)


def _document(subj: Subject, found: list[Found], store: FeatureStore) -> dict[str, Any]:
    return {
        "project": store.project,
        "entity": subj.entity.name,
        "join_keys": list(subj.join_keys),
        "keys": subj.key_dicts(),
        "exported_at": datetime.fromtimestamp(store.clock.now_us() / 1e6, UTC).isoformat(),
        "places": [
            {"place": f.place, "target": f.target, "rows": f.table.to_pylist()} for f in found
        ],
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return str(value)


def _wide(found: list[Found]) -> pa.Table:
    parts = []
    for f in found:
        if f.table.num_rows == 0:
            continue
        cols: dict[str, Any] = {
            "__place": pa.array([f.place] * f.table.num_rows),
            "__target": pa.array([f.target] * f.table.num_rows),
        }
        for name in f.table.column_names:
            cols[f"{f.place}.{f.target}.{name}"] = f.table.column(name)
        parts.append(pa.table(cols))
    if not parts:
        return pa.table(
            {"__place": pa.array([], pa.string()), "__target": pa.array([], pa.string())}
        )
    return pa.concat_tables(parts, promote_options="permissive")
