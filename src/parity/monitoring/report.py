"""``parity monitor report``: one self-contained HTML page of what monitoring knows.

Per view: histograms of its features in the baseline window against the current one, the
freshness lag over time (from the monitor's stored samples) against the SLA, null ratios,
drift scores against their thresholds, and the open alerts. Charts are drawn by matplotlib
as inline SVG, so the page needs nothing but itself (no script, no network).

The windows: ``current`` is the last ``window`` of event time up to the newest event of the
view's source, ``baseline`` the ``window`` before it, unless given as (start, end) pairs.
"""

from __future__ import annotations

import html
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parity.definitions import FeatureView, Field
from parity.errors import MonitoringError
from parity.monitoring.sources import EVENT_US, fields_of, input_join, read_rows, time_range
from parity.offline.base import SupportsSQL
from parity.registry.monitoring import AlertRecord, MonitorRecords

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["Windows", "write_report"]

MAX_FEATURES = 12
"""Features drawn per view (the first ones of its schema); the rest are listed."""
_BINS = 30


@dataclass(frozen=True)
class Windows:
    """The two event-time windows a view's report compares."""

    baseline: tuple[datetime, datetime]
    current: tuple[datetime, datetime]


def write_report(
    store: FeatureStore,
    out: str | Path,
    *,
    views: Sequence[str] | None = None,
    window: timedelta = timedelta(days=1),
    baseline: tuple[Any, Any] | None = None,
    current: tuple[Any, Any] | None = None,
) -> Path:
    """Write the report to ``out`` (an .html file); returns its path."""
    from parity.plugins import require

    require(("matplotlib",), "monitoring", "parity monitor report")
    if window <= timedelta(0):
        raise MonitoringError(f"monitor report: window must be positive, got {window}")
    catalog = store.catalog()
    chosen = [catalog.view(v) for v in views] if views is not None else catalog.views()
    if not chosen:
        raise MonitoringError("monitor report: the repo has no feature views to report on")
    kept = MonitorRecords(store.registry)
    alerts = kept.alerts(state="open")
    lags = _lag_history(kept)
    fresh = {r["view"]: r for r in store.freshness().to_pylist()}
    sections = [
        _view_section(store, fv, window, baseline, current, alerts, lags, fresh.get(fv.name))
        for fv in chosen
    ]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = "\n".join(sections)
    page = _PAGE.format(
        project=html.escape(store.project),
        now=now,
        alerts=_alerts_table(alerts),
        body=body,
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


# -- one view ------------------------------------------------------------------------------
def _view_section(
    store: FeatureStore,
    fv: FeatureView,
    window: timedelta,
    baseline: tuple[Any, Any] | None,
    current: tuple[Any, Any] | None,
    alerts: list[AlertRecord],
    lags: dict[str, list[tuple[datetime, float]]],
    fresh: dict[str, Any] | None,
) -> str:
    fields = fields_of(fv)
    parts = [f'<section class="view" id="view-{html.escape(fv.name)}">']
    parts.append(f"<h2>{html.escape(fv.name)}</h2>")
    parts.append(_freshness_line(fv, fresh))
    windows = _windows(store, fv, fields, window, baseline, current)
    if windows is None:
        parts.append('<p class="empty">The source has no rows yet.</p></section>')
        return "\n".join(parts)
    (b0, b1), (c0, c1) = windows.baseline, windows.current
    parts.append(
        f'<p class="windows">baseline {_t(b0)} &ndash; {_t(b1)} · current {_t(c0)} &ndash; {_t(c1)}</p>'
    )
    rows = read_rows(store, fv, fields, b0, c1)
    ev = rows.column(EVENT_US)
    b_mask = pc.less_equal(ev, _us(b1))
    c_mask = pc.greater(ev, _us(c0))
    base, cur = rows.filter(b_mask), rows.filter(c_mask)
    drawn = fields[:MAX_FEATURES]
    from parity.governance.shaping import masked_features

    masked = masked_features(store, fv.name, [f.name for f in drawn])
    charts = [
        _withheld(fv.name, f)
        if f.name in masked
        else _histogram(fv.name, f, base.column(f.name), cur.column(f.name))
        for f in drawn
    ]
    parts.append('<div class="grid">' + "".join(c for c in charts if c) + "</div>")
    if len(fields) > MAX_FEATURES:
        rest = ", ".join(f.name for f in fields[MAX_FEATURES:])
        parts.append(f"<p>Not drawn: {html.escape(rest)}.</p>")
    parts.append('<div class="grid">')
    parts.append(_null_ratios(fv.name, drawn, base, cur))
    parts.append(_lag_chart(fv, lags.get(fv.name, [])))
    parts.append(_drift_chart(store, fv, windows))
    parts.append("</div>")
    mine = [a for a in alerts if a.view == fv.name]
    parts.append("<h3>Open alerts</h3>" + _alerts_table(mine))
    parts.append("</section>")
    return "\n".join(parts)


def _windows(
    store: FeatureStore,
    fv: FeatureView,
    fields: list[Field],
    window: timedelta,
    baseline: tuple[Any, Any] | None,
    current: tuple[Any, Any] | None,
) -> Windows | None:
    if baseline is not None and current is not None:
        b = time_range(*baseline)
        c = time_range(*current)
        if None in b or None in c:
            raise MonitoringError("monitor report: give both ends of each window")
        return Windows((b[0], b[1]), (c[0], c[1]))  # type: ignore[arg-type]
    newest = _newest_event(store, fv, fields)
    if newest is None:
        return None
    return Windows((newest - 2 * window, newest - window), (newest - window, newest))


def _newest_event(store: FeatureStore, fv: FeatureView, fields: list[Field]) -> datetime | None:
    engine = store.offline
    sql_of = getattr(engine, "source_rows_sql", None)
    if isinstance(engine, SupportsSQL) and sql_of is not None:
        vj = input_join(store.catalog(), fv, fields)
        sql = sql_of(vj, None, None, columns=vj.features)
        top = engine.query(f"SELECT max({EVENT_US}) AS t FROM ({sql})").column(0)[0].as_py()
    else:
        top = pc.max(read_rows(store, fv, fields, None, None).column(EVENT_US)).as_py()
    if top is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(top))


# -- charts --------------------------------------------------------------------------------
def _figure(width: float = 4.2, height: float = 2.6) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=96)
    return plt, fig, ax


def _svg(plt: Any, fig: Any, kind: str, label: str) -> str:
    buf = io.StringIO()
    with warnings.catch_warnings():  # a category the font cannot draw is drawn as a box
        warnings.filterwarnings(
            "ignore", message="Glyph .* missing from font", category=UserWarning
        )
        fig.tight_layout()
        fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog: the SVG sits inside HTML
    return (
        f'<figure class="chart" data-chart="{kind}" data-label="{html.escape(label)}">'
        f"{svg}<figcaption>{html.escape(label)}</figcaption></figure>"
    )


def _withheld(view: str, field: Field) -> str:
    """In place of the value chart of a feature the reader is served masked (its values,
    or their distribution, are what masking hides; its null ratio is still drawn)."""
    label = html.escape(f"{view}.{field.name}: baseline vs current")
    return (
        f'<figure class="chart empty" data-chart="withheld" data-label="{label}">'
        f"<figcaption>{label}: withheld, the feature is masked for this reader"
        "</figcaption></figure>"
    )


def _histogram(view: str, field: Field, base: pa.ChunkedArray, cur: pa.ChunkedArray) -> str:
    kind = getattr(field.dtype, "kind", None)
    label = f"{view}.{field.name}: baseline vs current"
    if kind in ("int", "float"):
        b = _numbers(base)
        c = _numbers(cur)
        if b.size + c.size == 0:
            return ""
        both = np.concatenate([b, c])
        lo, hi = float(both.min()), float(both.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1, _BINS + 1)
        plt, fig, ax = _figure()
        for values, name, color in ((b, "baseline", "#4c72b0"), (c, "current", "#dd8452")):
            if values.size:
                ax.hist(values, bins=edges, density=True, alpha=0.55, label=name, color=color)
        ax.set_xlabel(field.name)
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
        return _svg(plt, fig, "histogram", label)
    if kind in ("string", "bool"):
        counts_b = _counts(base)
        counts_c = _counts(cur)
        cats = sorted(
            set(counts_b) | set(counts_c),
            key=lambda k: -(counts_b.get(k, 0) + counts_c.get(k, 0)),
        )[:15]
        if not cats:
            return ""
        nb, nc = max(sum(counts_b.values()), 1), max(sum(counts_c.values()), 1)
        x = np.arange(len(cats))
        plt, fig, ax = _figure()
        ax.bar(x - 0.2, [counts_b.get(k, 0) / nb for k in cats], 0.4, label="baseline")
        ax.bar(x + 0.2, [counts_c.get(k, 0) / nc for k in cats], 0.4, label="current")
        ax.set_xticks(x, [str(k)[:12] for k in cats], rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("share")
        ax.legend(fontsize=7)
        return _svg(plt, fig, "histogram", label)
    return ""


def _null_ratios(view: str, fields: list[Field], base: pa.Table, cur: pa.Table) -> str:
    names = [f.name for f in fields]

    def ratio(t: pa.Table, n: str) -> float:
        return t.column(n).null_count / t.num_rows if t.num_rows else 0.0

    x = np.arange(len(names))
    plt, fig, ax = _figure()
    ax.bar(x - 0.2, [ratio(base, n) for n in names], 0.4, label="baseline")
    ax.bar(x + 0.2, [ratio(cur, n) for n in names], 0.4, label="current")
    ax.set_xticks(x, [n[:14] for n in names], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("null ratio")
    ax.legend(fontsize=7)
    return _svg(plt, fig, "null-ratio", f"{view}: null ratio per feature")


def _lag_chart(fv: FeatureView, points: list[tuple[datetime, float]]) -> str:
    label = f"{fv.name}: freshness lag over time"
    if not points:
        return (
            f'<figure class="chart empty" data-chart="freshness" data-label="{label}">'
            "<p>No freshness samples yet: <code>parity monitor run</code> records one each "
            f"round.</p><figcaption>{html.escape(label)}</figcaption></figure>"
        )
    points = sorted(points)
    plt, fig, ax = _figure()
    ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label="lag")
    if fv.sla is not None and fv.sla.freshness is not None:
        ax.axhline(fv.sla.freshness.total_seconds(), color="#c44e52", ls="--", label="SLA")
    ax.set_ylabel("lag (s)")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return _svg(plt, fig, "freshness", label)


def _drift_chart(store: FeatureStore, fv: FeatureView, windows: Windows) -> str:
    label = f"{fv.name}: drift (PSI) baseline to current"
    try:
        result = store.drift(fv.name, windows.baseline, windows.current, save=False)
    except MonitoringError as exc:  # e.g. one window has no rows
        return (
            f'<figure class="chart empty" data-chart="drift" data-label="{label}">'
            f"<p>{html.escape(str(exc))}</p><figcaption>{html.escape(label)}</figcaption>"
            "</figure>"
        )
    rows = [r for r in result.to_pylist() if r["test"] == "psi"]
    if not rows:
        return ""
    plt, fig, ax = _figure()
    names = [r["feature"] for r in rows]
    colors = ["#c44e52" if r["drifted"] else "#55a868" for r in rows]
    ax.bar(np.arange(len(rows)), [r["statistic"] for r in rows], color=colors)
    thresholds = {r["threshold"] for r in rows if r["threshold"] is not None}
    for t in thresholds:
        ax.axhline(t, color="#333", ls="--", lw=0.8)
    ax.set_xticks(
        np.arange(len(rows)), [n[:14] for n in names], rotation=45, ha="right", fontsize=7
    )
    ax.set_ylabel("PSI")
    return _svg(plt, fig, "drift", label)


# -- data helpers --------------------------------------------------------------------------
def _numbers(values: pa.ChunkedArray) -> np.ndarray:
    arr = pc.drop_null(values).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return arr[np.isfinite(arr)]


def _counts(values: pa.ChunkedArray) -> dict[Any, int]:
    vc = pc.value_counts(pc.drop_null(values))
    return {
        v.as_py(): c.as_py() for v, c in zip(vc.field("values"), vc.field("counts"), strict=True)
    }


def _lag_history(kept: MonitorRecords) -> dict[str, list[tuple[datetime, float]]]:
    """Per view, (sample time, lag seconds) of the monitor's stored freshness samples."""
    out: dict[str, list[tuple[datetime, float]]] = {}
    for record in kept.results("freshness", limit=500):
        for row in kept.table(record.id).to_pylist():
            lag = row.get("lag_seconds")
            if lag is not None and row.get("view"):
                out.setdefault(row["view"], []).append((record.created_at, float(lag)))
    return out


def _freshness_line(fv: FeatureView, fresh: dict[str, Any] | None) -> str:
    if fresh is None or fresh.get("lag_seconds") is None:
        return '<p class="freshness">No event has reached the online store yet.</p>'
    lag = fresh["lag_seconds"]
    sla = fresh.get("sla_seconds")
    cls = "breached" if fresh.get("breached") else "ok"
    sla_text = f", SLA {sla:.0f} s, score {fresh.get('score') or 0:.2f}" if sla else ", no SLA"
    return f'<p class="freshness {cls}">Freshness lag {lag:.0f} s{sla_text}.</p>'


def _alerts_table(alerts: list[AlertRecord]) -> str:
    if not alerts:
        return '<p class="no-alerts">No open alerts.</p>'
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                a.rule,
                a.view,
                a.feature or "-",
                _num(a.observed),
                _num(a.threshold),
                _t(a.opened_at),
                a.message,
            )
        )
        + "</tr>"
        for a in alerts
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("rule", "view", "feature", "observed", "threshold", "since", "message")
    )
    return f'<table class="alerts"><tr>{head}</tr>{rows}</table>'


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def _t(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _us(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Parity monitoring: {project}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ margin-bottom: 0; }} .meta {{ color: #666; margin-top: .2em; }}
section.view {{ border-top: 1px solid #ddd; margin-top: 2em; padding-top: 1em; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure.chart {{ margin: 0; width: 420px; }} figure.chart svg {{ width: 100%; height: auto; }}
figcaption {{ font-size: .8em; color: #555; }}
.breached {{ color: #b00020; font-weight: bold; }} .ok {{ color: #2e7d32; }}
table.alerts {{ border-collapse: collapse; }}
table.alerts td, table.alerts th {{ border: 1px solid #ccc; padding: .3em .6em; }}
</style></head>
<body>
<h1>Parity monitoring: {project}</h1>
<p class="meta">Generated {now}</p>
<h2>Open alerts</h2>
{alerts}
{body}
</body></html>
"""
