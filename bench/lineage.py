"""Benchmark: column-level lineage over a large registry, built in memory.

A seeded generator (``numpy.random.default_rng(seed)``) makes a ``Catalog`` of 20 entities,
200 file sources (a third of their views rename columns with ``field_mapping``), 2,000
feature views of 10 features each (20,000 features; one view in ten aggregated: 10
aggregations over 5 source columns), 100 on-demand views (each reading 2 to 4 features of
random views and a request field), 200 feature services (8 random projections each, one in
four a whole view, plus an on-demand view) and 50 models. No registry, no files: the catalog
is ``Catalog.of(objects)``, what the store's ``CatalogCache`` holds.

Timed (median of ``--runs``, each in this process):

- **build**: ``build_graph(catalog)``, the graph ``graph_for`` caches per catalog revision;
- **first lineage**: the graph built and cached, and one query (what a command pays once);
- **lineage**: ``lineage(catalog, "<view>:<feature>", "both", depth=5)`` of the feature read
  by an on-demand view with the most downstream (services, models), on the cached graph.
  Goal: under 100 ms; and an entity's downstream at depth 5, for scale;
- **downstream objects**: ``downstream_objects(catalog, "source", ...)`` of one source (the
  impact analysis ``parity plan`` will run), on the cached graph.

    python -m bench.lineage --runs 7
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import TableReport, render, verdict

ENTITIES, SOURCES, VIEWS, FEATURES_PER_VIEW = 20, 200, 2_000, 10
ON_DEMAND, SERVICES, MODELS = 100, 200, 50
GOAL_MS = 100.0
DEPTH = 5


def catalog(seed: int = 42) -> Any:
    """The synthetic catalog (see the module), the same for the same seed."""
    from parity import (
        Aggregation,
        Entity,
        FeatureService,
        FeatureView,
        Field,
        FileSource,
        Float64,
        Int64,
        Model,
        OnDemandFeatureView,
        RequestSource,
    )
    from parity.definitions.on_demand import UdfLocation
    from parity.registry.catalog import Catalog

    rng = np.random.default_rng(seed)
    entities = [Entity(name=f"e{i}", join_keys=[f"e{i}_id"], dtype=Int64) for i in range(ENTITIES)]
    sources = []
    for i in range(SOURCES):
        mapping = {f"raw_{k}": f"f{k}" for k in range(FEATURES_PER_VIEW)} if i % 3 == 0 else {}
        sources.append(
            FileSource(
                name=f"s{i}", path=f"data/s{i}.parquet", timestamp_field="ts", field_mapping=mapping
            )
        )
    views = []
    for i in range(VIEWS):
        source = sources[int(rng.integers(SOURCES))]
        entity = entities[int(rng.integers(ENTITIES))]
        if i % 10 == 0:
            columns = [Field(name=f"f{k}", dtype=Float64) for k in range(5)]
            aggs = [
                Aggregation(function=fn, column=f"f{k}", window=w)
                for k in range(5)
                for fn, w in (("sum", "7d"), ("mean", "1d"))
            ]
            views.append(
                FeatureView(
                    name=f"v{i}",
                    entities=[entity],
                    source=source,
                    schema=columns,
                    aggregations=aggs,
                )
            )
            continue
        schema = [Field(name=f"f{k}", dtype=Float64) for k in range(FEATURES_PER_VIEW)]
        views.append(FeatureView(name=f"v{i}", entities=[entity], source=source, schema=schema))
    odfvs = []
    for i in range(ON_DEMAND):
        picks = rng.choice(VIEWS, size=int(rng.integers(2, 5)), replace=False)
        inputs = [
            {"view": views[int(p)].name, "features": [views[int(p)].feature_names[0]]}
            for p in picks
        ]
        odfvs.append(
            OnDemandFeatureView(
                name=f"od{i}",
                sources=inputs,
                request_sources=[
                    RequestSource(name=f"req{i % 10}", schema=[Field(name="x", dtype=Float64)])
                ],
                schema=[Field(name="out", dtype=Float64)],
                udf=UdfLocation(module="bench_udfs", qualname=f"od{i}", source_hash="0" * 64),
            )
        )
    services = []
    for i in range(SERVICES):
        picks = rng.choice(VIEWS, size=8, replace=False)
        items: list[Any] = []
        for j, p in enumerate(picks):
            view = views[int(p)]
            items.append(view if j % 4 == 0 else view[view.feature_names[:3]])
        items.append(odfvs[i % ON_DEMAND])
        services.append(FeatureService(name=f"svc{i}", features=items))
    models = [Model(f"m{i}", features=services[i * 4]) for i in range(MODELS)]
    return Catalog.of([*entities, *sources, *views, *odfvs, *services, *models], revision=1)


def _timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def _busiest_feature(cat: Any) -> str:
    """Of the features on-demand views read, the one with the most downstream nodes (read
    by services and models too), the first by name among equals."""
    from parity.lineage import graph_for, walk

    graph = graph_for(cat)
    refs = sorted(
        {f"{i.view}:{f}" for od in cat.on_demand_views() for i in od.inputs for f in i.features}
    )
    reach = {
        r: len(walk(graph, "feature:" + r.replace(":", "."), downstream=True, depth=None))
        for r in refs
    }
    return max(refs, key=lambda r: (reach[r], r))


def run(data_dir: Path | None = None, runs: int = 7, only: str | None = None) -> TableReport:
    """The lineage benchmark's report (``data_dir`` and ``only`` unused: it makes its data)."""
    from parity.lineage import build_graph, downstream_objects, graph_for, lineage, object_graph

    t = time.perf_counter()
    cat = catalog()
    made_s = time.perf_counter() - t
    build_times, graph = _timed(lambda: build_graph(cat), runs)
    cold = time.perf_counter()
    graph_for(cat)  # the cached graph every query below reads
    first = lineage(cat, "v1:f1", "both", DEPTH)
    cold_ms = (time.perf_counter() - cold) * 1000
    feature = _busiest_feature(cat)
    query_times, sub = _timed(lambda: lineage(cat, feature, "both", DEPTH), runs)
    wide_times, wide = _timed(lambda: lineage(cat, "e0", "downstream", DEPTH), runs)
    t = time.perf_counter()
    object_graph(graph_for(cat))
    objects_ms = (time.perf_counter() - t) * 1000
    impact_times, reached = _timed(lambda: downstream_objects(cat, "source", "s0"), runs)
    report = TableReport(
        f"Lineage over {VIEWS:,} views, {VIEWS * FEATURES_PER_VIEW:,} features, {SERVICES} "
        f"services, {MODELS} models (median of {runs})",
        headers=("", "median ms", "min ms", "size", "target", "met"),
        about=[
            f"catalog generated in {made_s:.2f} s; graph: {graph.number_of_nodes():,} nodes, "
            f"{graph.number_of_edges():,} edges; object graph built once in {objects_ms:,.0f} ms"
        ],
    )

    def row(label: str, times: list[float], size: str, goal: float | None = None) -> None:
        med = statistics.median(times) * 1000
        report.rows.append(
            (
                label,
                f"{med:,.2f}",
                f"{min(times) * 1000:,.2f}",
                size,
                "" if goal is None else f"< {goal:g}",
                "" if goal is None else verdict(med < goal),
            )
        )

    row("build_graph", build_times, f"{graph.number_of_nodes():,} nodes")
    row("first lineage('v1:f1'): build, cache, query", [cold_ms / 1000], f"{len(first):,} nodes")
    row(f"lineage({feature!r}, both, depth {DEPTH})", query_times, f"{len(sub):,} nodes", GOAL_MS)
    row(f"lineage('e0', downstream, depth {DEPTH})", wide_times, f"{len(wide):,} nodes")
    row("downstream_objects(source s0)", impact_times, f"{len(reached):,} objects")
    ups = [n for n, a in sub.nodes(data=True) if a["direction"] == "upstream"]
    downs = [n for n, a in sub.nodes(data=True) if a["direction"] == "downstream"]
    report.check = (
        bool(ups) and bool(downs) and sub.graph["root"] == f"feature:{feature.replace(':', '.')}"
    )
    report.check_lines.append(
        f"{len(ups)} upstream and {len(downs)} downstream nodes of {feature}; "
        f"{len(reached)} objects downstream of s0"
    )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    report = run(None, runs=args.runs)
    render(report)
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
