"""Creating a training snapshot: the historical retrieval, stored content-addressed with a
manifest that makes it reproducible.

``create(store, "train_v1", entity_df, ["driver_hourly_stats:conv_rate"])``:

1. reads the registry's definitions afresh (revision R) and plans the request on them;
2. reads the entity frame and takes its digest; rows of restricted entity keys
   (``parity restrict``) are left out unless the caller has ``admin`` on the entity (with
   auth off nobody has: they are always left out), and their count is recorded;
3. fingerprints every source file the join reads (``parity.snapshots.fingerprint``), runs
   the join with revision R's definitions (``parity.snapshots.pinned``), and fingerprints
   the files again: a file that changed meanwhile refuses the snapshot (nothing stored);
4. writes the result as ``<digest>.parquet`` in ``snapshots.path`` (atomically: a
   temporary file, fsync, rename; ``parity.snapshots.files``), the digest being
   ``parity.snapshots.digest``'s;
5. records the manifest (``parity.snapshots.manifest``): R, the version of every object
   used, the source fingerprints, the on-demand functions' code hashes, the entity frame's
   digest and a profile of every feature (``parity.monitoring.profile_arrow``).

The entity frame's digest runs beside the join, and the file's write, the result's digest
and its profile beside each other (two threads: each releases the GIL for most of its
work), which keeps a snapshot within a tenth of the time of the same retrieval written to
Parquet (``bench/snapshots.py``).

A name is unique per project: an existing one is refused unless ``replace=True`` (the old
file is removed when no other snapshot holds it).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from parity.errors import SnapshotError
from parity.snapshots import files
from parity.snapshots import manifest as mf
from parity.snapshots.digest import table_digest
from parity.snapshots.fingerprint import compare, fingerprint_sources, shown_path
from parity.snapshots.pinned import retrieve, used_objects, versions_at

if TYPE_CHECKING:
    from parity.query.plan import FeaturePlan
    from parity.registry.catalog import Catalog
    from parity.store import FeatureStore

__all__ = ["create", "profile_of", "without_restricted"]


def create(
    store: FeatureStore,
    name: str,
    entity_df: Any,
    features: Any,
    *,
    description: str = "",
    full_feature_names: bool = False,
    timestamp_column: str = "event_timestamp",
    replace: bool = False,
) -> mf.Snapshot:
    """Make the snapshot ``name`` (see the module docstring) and return its manifest."""
    from parity.offline.entity_frame import read_entity_frame
    from parity.query.historical import sql_runner
    from parity.query.plan import plan_features

    mf.check_name(name)
    if not replace and mf.find(store, name) is not None:
        raise mf.exists(store, name)
    catalog = store.catalog(fresh=True)
    plan = plan_features(features, catalog, full_feature_names=full_feature_names)
    entities = read_entity_frame(entity_df, sql_runner(store.offline))
    kept, excluded = without_restricted(store, catalog, plan, entities)
    sources = [j.source for j in plan.joins]
    # What is not the join itself runs beside it or beside the file's write (the module).
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="parity-snapshot") as pool:
        given_digest = pool.submit(table_digest, entities)
        before = fingerprint_sources(store, sources)
        result = retrieve(
            store,
            catalog,
            kept,
            features,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
        )
        pending = pool.submit(files.write_pending, store, result)
        profiled = pool.submit(profile_of, result, plan)
        try:
            digest = table_digest(result)
            moved = compare(before, fingerprint_sources(store, sources))
            if moved:
                raise SnapshotError(
                    f"snapshot {name!r}: source files changed while it was made, nothing "
                    "stored: " + "; ".join(c.render() for c in moved)
                )
            profile, given = profiled.result(), given_digest.result()
            path = files.publish(pending.result(), digest.sha256)
        except BaseException:
            if pending.exception() is None:
                files.discard(pending.result())
            raise
    snap = mf.Snapshot(
        name=name,
        digest=digest.sha256,
        path=shown_path(store, path),
        rows=result.num_rows,
        description=description,
        created_at=_now(store),
        created_by=store.actor.principal,
        revision=catalog.revision,
        features=plan.feature_refs,
        manifest=mf.new_manifest(
            columns=[c.to_json() for c in digest.columns],
            request={
                "features": _request(features),
                "full_feature_names": full_feature_names,
                "timestamp_column": timestamp_column,
            },
            entities={
                "sha256": given.sha256,
                "rows": entities.num_rows,
                "columns": list(entities.column_names),
                "excluded_restricted": excluded,
            },
            objects=[
                v.to_json()
                for v in versions_at(store, catalog.revision, used_objects(catalog, plan))
            ],
            sources=[s.to_json() for s in before],
            functions=[
                {
                    "view": s.view.name,
                    "function": s.view.udf.describe(),
                    "code_hash": s.view.udf.source_hash,
                }
                for s in plan.steps
            ],
            profile=profile,
            erasures=[],
        ),
    )
    try:
        old = mf.save(store, snap, replace_existing=replace)
    except BaseException:
        files.drop_unreferenced(store, snap.path, snap.digest)
        raise
    if old is not None and old.digest != snap.digest:
        files.drop_unreferenced(store, old.path, old.digest)
    store.governance.audit.record(
        action="snapshot_create",
        resources=[f"snapshot:{name}", *(f"feature_view:{v}" for v in plan.views)],
        counts={
            "rows": snap.rows,
            "excluded_restricted": excluded,
            "replaced": int(old is not None),
        },
    )
    return snap


def without_restricted(
    store: FeatureStore, catalog: Catalog, plan: FeaturePlan, entities: pa.Table
) -> tuple[pa.Table, int]:
    """``entities`` without the rows of restricted keys of the entities the plan's views are
    keyed by, unless the actor has ``admin`` on that entity; and how many rows went."""
    import pyarrow.compute as pc

    from parity.governance.access import Resource
    from parity.governance.restrict import restricted_keys
    from parity.governance.subjects import subject

    access = store.governance.access
    names = dict.fromkeys(e for r in plan.fetch for e in r.view.entity_names)
    drop: Any = None
    for name in names:
        keys = restricted_keys(store, name)
        if not keys:
            continue
        entity = catalog.entity(name)
        if access.enabled and access.allows(
            store.actor, "admin", Resource("entity", name, entity.tags)
        ):
            continue
        join_keys = list(entity.join_keys)
        given = [k if len(join_keys) == 1 else dict(zip(join_keys, k, strict=True)) for k in keys]
        mask = subject(catalog, name, given).rows_of(entities, join_keys)
        if mask is not None:
            drop = mask if drop is None else pc.or_(drop, mask)
    if drop is None:
        return entities, 0
    excluded = int(pc.sum(drop).as_py() or 0)
    return (entities.filter(pc.invert(drop)) if excluded else entities), excluded


def profile_of(result: pa.Table, plan: FeaturePlan) -> list[dict[str, Any]]:
    """Monitoring's statistics of every feature of the result (``PROFILE_SCHEMA`` rows)."""
    from parity.monitoring.profile_arrow import profile_table

    features = [(o.name, o.dtype) for o in plan.outputs]
    return mf.jsonable(profile_table(result, features).to_pylist())  # type: ignore[no-any-return]


def _request(features: Any) -> str | list[str]:
    """The features as the manifest keeps them: a service by its name, else the refs."""
    from parity.definitions import FeatureService

    if isinstance(features, FeatureService):
        return features.name
    return features if isinstance(features, str) else [str(f) for f in features]


def _now(store: FeatureStore) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(store.clock.now_us() / 1e6, UTC)
