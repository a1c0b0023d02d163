"""Drift: whether a view's features are distributed now as they were in a baseline.

::

    store.drift("driver_hourly_stats", baseline=("2024-01-01", "2024-01-31"),
                current=("2024-02-01", "2024-02-07"))
    store.drift("driver_hourly_stats", baseline="launch", current="online")

``baseline`` is a (start, end) range of source rows, ``"START..END"`` (either end may be
left out), or the name of a saved baseline (``parity.monitoring.baselines``). ``current``
is a range, or ``"online"``: the online store's values for every entity key the view's
source holds (an aggregated view's online values are aggregates, not its inputs, so it
needs a range).

One row per feature and test (``drift_stats`` defines each test exactly): numbers get
``ks``, ``psi``, ``js`` and ``wasserstein``; strings and bools ``chi2``, ``psi`` and ``js``.
Nulls, NaN and infinities are left out; ``baseline_rows``/``current_rows`` count the values
compared. A feature with no values on a side gets no rows and is listed under
``summary["skipped"]``, as are features of other types when ``features`` was not given
(naming one is a MonitoringError). Thresholds: the field's ``drift`` policy, else the
view's, else ``DriftPolicy()`` (a policy replaces the one above it whole). ``ks`` and
``chi2`` drift when the p-value is below the threshold, the others when the statistic is
above it; a None threshold reports without judging. ``save=True`` keeps the result in the
registry (kind ``drift``, scope ``offline`` or ``online`` for the current side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parity.definitions import DriftPolicy, FeatureView, Field
from parity.errors import MonitoringError
from parity.monitoring import drift_stats
from parity.monitoring.baselines import _now, _span, load_baseline
from parity.monitoring.result import MonitorResult
from parity.monitoring.sources import fields_of, keep, read_rows, time_range

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["SCHEMA", "DriftResult", "drift", "parse_side", "policy_of"]

SCHEMA = pa.schema(
    [
        ("feature", pa.string()),
        ("test", pa.string()),
        ("statistic", pa.float64()),
        ("p_value", pa.float64()),
        ("threshold", pa.float64()),
        ("drifted", pa.bool_()),
        ("baseline_rows", pa.int64()),
        ("current_rows", pa.int64()),
    ]
)
NUMERIC = ("int", "float")
CATEGORICAL = ("string", "bool")
# test -> (the policy's threshold, drifted when the p-value is below it (else: statistic above))
_RULES = {
    "ks": ("ks_pvalue", True),
    "chi2": ("chi2_pvalue", True),
    "psi": ("psi", False),
    "js": ("js", False),
    "wasserstein": ("wasserstein", False),
}

Side = tuple[Any, Any] | str


@dataclass(frozen=True)
class DriftResult(MonitorResult):
    """A drift result; ``drifted`` lists the features any test judged drifted."""

    @property
    def drifted(self) -> list[str]:
        return list(self.summary.get("drifted", []))


def policy_of(view: FeatureView, field: Field) -> DriftPolicy:
    """The policy that judges ``field``: its own, else the view's, else the defaults."""
    return field.drift or view.drift or DriftPolicy()


def parse_side(value: Side, what: str) -> Side:
    """``"START..END"`` as a (start, end) pair (an empty end: None); other text (a baseline
    name, ``"online"``) and pairs as they are."""
    if isinstance(value, str) and ".." in value:
        lo, _, hi = value.partition("..")
        return (lo.strip() or None, hi.strip() or None)
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise MonitoringError(f"{what}: a range is (start, end), got {value!r}")
        return (value[0], value[1])
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise MonitoringError(
        f"{what}: give a (start, end) range, 'START..END', "
        + ("'online'" if what == "current" else "or a saved baseline's name")
        + f"; got {value!r}"
    )


def drift(
    store: FeatureStore,
    view: str,
    baseline: Side,
    current: Side = "online",
    *,
    features: Sequence[str] | None = None,
    save: bool = True,
) -> DriftResult:
    """Compare the view's features in ``baseline`` and ``current`` (see the module notes)."""
    definition = store.get_feature_view(view)
    fields = fields_of(definition, features)
    skipped: dict[str, str] = {}
    usable = []
    for f in fields:
        kind = getattr(f.dtype, "kind", None)
        if kind in NUMERIC or kind in CATEGORICAL:
            usable.append(f)
        elif features is not None:
            raise MonitoringError(
                f"feature view {view!r}: drift applies to numbers, strings and bools, and "
                f"feature {f.name!r} is {f.dtype}"
            )
        else:
            skipped[f.name] = f"type {f.dtype} has no drift tests"
    if not usable:
        raise MonitoringError(f"feature view {view!r} has no numeric, string or bool features")
    base_side = parse_side(baseline, "baseline")
    cur_side = parse_side(current, "current")
    base, base_info = _baseline(store, definition, usable, base_side)
    cur, cur_info, scope, start, end = _current(store, definition, usable, cur_side)

    rows: list[dict[str, Any]] = []
    drifted: list[str] = []
    for f in usable:
        policy = policy_of(definition, f)
        figures, nb, nc = _figures(f, base.column(f.name), cur.column(f.name), policy)
        if not figures:
            side = "baseline" if nb == 0 else "current"
            skipped[f.name] = f"no values in the {side}"
            continue
        any_drift = False
        for fig in figures:
            attr, below = _RULES[fig.test]
            threshold = getattr(policy, attr)
            observed = fig.p_value if below else fig.statistic
            hit = (
                threshold is not None
                and observed is not None
                and not np.isnan(observed)
                and (observed < threshold if below else observed > threshold)
            )
            any_drift = any_drift or hit
            rows.append(
                {
                    "feature": f.name,
                    "test": fig.test,
                    "statistic": fig.statistic,
                    "p_value": fig.p_value,
                    "threshold": threshold,
                    "drifted": hit,
                    "baseline_rows": nb,
                    "current_rows": nc,
                }
            )
        if any_drift:
            drifted.append(f.name)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    summary: dict[str, Any] = {
        "drifted": drifted,
        "features": len(usable) - sum(1 for f in usable if f.name in skipped),
        "tests": len(rows),
        "baseline": base_info,
        "current": cur_info,
        "skipped": skipped,
    }
    rid = keep(store, "drift", view, table, summary, start, end, scope=scope, save=save)
    return DriftResult(
        kind="drift",
        table=table,
        view=view,
        start=start,
        end=end,
        scope=scope,
        id=rid,
        summary=summary,
    )


# -- reading the two sides --------------------------------------------------------------------


def _baseline(
    store: FeatureStore, view: FeatureView, fields: list[Field], side: Side
) -> tuple[pa.Table, dict[str, Any]]:
    if isinstance(side, tuple):
        lo, hi = time_range(side[0], side[1], now=_now(store))
        table = read_rows(store, view, fields, lo, hi)
        if table.num_rows == 0:
            raise MonitoringError(
                f"the baseline of feature view {view.name!r} has no rows in {_span(lo, hi)}"
            )
        return table, {"start": _iso(lo), "end": _iso(hi), "rows": table.num_rows}
    if side == "online":
        raise MonitoringError("baseline: 'online' is only a current side; give a range or a name")
    manifest, table = load_baseline(store, side)
    if manifest.view != view.name:
        raise MonitoringError(
            f"baseline {side!r} holds feature view {manifest.view!r}, not {view.name!r}"
        )
    missing = [f.name for f in fields if f.name not in table.column_names]
    if missing:
        raise MonitoringError(
            f"baseline {side!r} has no feature(s) {missing} (it kept {list(manifest.features)})"
        )
    if table.num_rows == 0:
        raise MonitoringError(f"baseline {side!r} has no rows")
    info = {"name": side, "start": _iso(manifest.start), "end": _iso(manifest.end)}
    return table, {**info, "rows": table.num_rows}


def _current(
    store: FeatureStore, view: FeatureView, fields: list[Field], side: Side
) -> tuple[pa.Table, dict[str, Any], str, datetime | None, datetime | None]:
    if isinstance(side, tuple):
        lo, hi = time_range(side[0], side[1], now=_now(store))
        table = read_rows(store, view, fields, lo, hi)
        if table.num_rows == 0:
            raise MonitoringError(
                f"the current side of feature view {view.name!r} has no rows in {_span(lo, hi)}"
            )
        return (
            table,
            {"start": _iso(lo), "end": _iso(hi), "rows": table.num_rows},
            "offline",
            lo,
            hi,
        )
    if side != "online":
        raise MonitoringError(
            f"current: {side!r} is neither 'online' nor a range START..END (baselines by name "
            "are for the baseline side)"
        )
    table = _online_values(store, view, fields)
    return table, {"online": True, "rows": table.num_rows}, "online", None, None


def _online_values(store: FeatureStore, view: FeatureView, fields: list[Field]) -> pa.Table:
    """The online values of ``fields`` for each entity key in the view's source; a value
    not present (missing, expired) is null."""
    if view.is_aggregated:
        raise MonitoringError(
            f"feature view {view.name!r} is aggregated: its online values are aggregates, not "
            "the inputs drift compares; give current as a range START..END"
        )
    # The online store cannot list its keys: ask for every key the source has ever held.
    keys = read_rows(store, view, [], None, None)
    join_keys = [c for c in keys.column_names if c != "__event_us"]
    keys = keys.select(join_keys).group_by(join_keys).aggregate([])
    if keys.num_rows == 0:
        raise MonitoringError(f"feature view {view.name!r}: its source has no entity keys")
    from parity.discovery.usage import uncounted

    with uncounted():  # monitoring's read, not a consumer's
        response = store.get_online_features(
            [f"{view.name}:{f.name}" for f in fields],
            entities={k: keys.column(k).to_pylist() for k in join_keys},
        )
    got = response.to_arrow(include_metadata=True)
    columns = {}
    for f in fields:
        present = pc.equal(got.column(f"{f.name}__status"), "present")
        columns[f.name] = pc.if_else(
            present, got.column(f.name), pa.scalar(None, got.schema.field(f.name).type)
        )
    table = pa.table(columns)
    if not any(table.column(f.name).null_count < table.num_rows for f in fields):
        raise MonitoringError(
            f"feature view {view.name!r} has no values online for the {keys.num_rows} entity "
            "keys of its source (materialize it first?)"
        )
    return table


# -- per feature -------------------------------------------------------------------------------


def _figures(
    field: Field, base: pa.ChunkedArray, cur: pa.ChunkedArray, policy: DriftPolicy
) -> tuple[list[drift_stats.Figure], int, int]:
    """The field's tests and the number of values on each side ([] when a side has none)."""
    if getattr(field.dtype, "kind", None) in NUMERIC:
        a, b = _numbers(base), _numbers(cur)
        if a.size == 0 or b.size == 0:
            return [], a.size, b.size
        figures, _ = drift_stats.numeric(a, b, bins=policy.bins, epsilon=policy.epsilon)
        return figures, a.size, b.size
    bc, cc = _category_counts(base, cur)
    nb, nc = int(bc.sum()), int(cc.sum())
    if nb == 0 or nc == 0:
        return [], nb, nc
    return drift_stats.categorical(bc, cc, epsilon=policy.epsilon), nb, nc


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """The finite values of a numeric column as float64."""
    values = pc.drop_null(column).to_numpy().astype(np.float64, copy=False)
    return values[np.isfinite(values)]


def _category_counts(base: pa.ChunkedArray, cur: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each category seen on either side (the union), baseline and current."""
    vb = pc.value_counts(pc.drop_null(base))
    vc = pc.value_counts(pc.drop_null(cur))
    kb, kc = vb.field("values"), vc.field("values")
    cats = pc.unique(pa.concat_arrays([kb, kc]))
    return _spread(kb, vb.field("counts"), cats), _spread(kc, vc.field("counts"), cats)


def _spread(keys: pa.Array, counts: pa.Array, cats: pa.Array) -> np.ndarray:
    if len(keys) == 0:
        return np.zeros(len(cats), dtype=np.int64)
    idx = pc.index_in(keys, value_set=cats).to_numpy()
    out = np.bincount(idx, weights=counts.to_numpy(), minlength=len(cats))
    return out.astype(np.int64)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()
