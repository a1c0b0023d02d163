"""Benchmark: discovery over a large registry, built in memory (search, usage counting).

A seeded generator (``numpy.random.default_rng(seed)``) makes a ``Catalog`` like the lineage
benchmark's (20 entities, 200 file sources, 2,000 feature views of 10 features each: 20,000
features; 100 on-demand views, 200 feature services, 50 models), with text to search: every
object and feature has a description of 6 to 14 words drawn from a 2,000-word vocabulary (a
few hundred real words, the rest made up), views a team tag and one of 12 owners, and
feature names of two vocabulary words (``conversion_rate_3``). No registry, no files: the
catalog is ``Catalog.of(objects)``, what the store's ``CatalogCache`` holds.

Timed (median of ``--runs``, each in this process):

- **build**: ``SearchIndex(catalog)``, the FTS5 index ``index_for`` caches per catalog
  revision (what the first search of a revision pays);
- **first search**: the index built and cached, and one query;
- **search**: ``search(catalog, ...)`` on the cached index, for a two-word query
  (``conversion rate``), a one-letter prefix matching most objects (``c``), a name, a query
  with a tag filter, and one matching nothing. Goal: each under 100 ms;
- **usage per read**: what the usage hook adds to an online read (the hook calls
  ``OnlineReads`` makes once a read is answered, as they are: the shape call every store
  makes for masking, and ``after_online_read``), against the masking hook alone, and what a
  no-op ``after_online_read`` observer would add instead; the hook alone; the write of one
  interval's counts (200 plans read, 10 features each: 2,200 rows) to an in-memory SQLite
  registry.

    python -m bench.discovery --runs 7
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
OWNERS = 12
VOCABULARY = 2_000
GOAL_MS = 100.0
_REAL_WORDS = """
conversion rate driver trip trips daily weekly average count sum total amount order
orders customer customers merchant payment payments fraud risk score session sessions
click clicks view views page pages cart basket item items product products price prices
discount revenue refund refunds delivery deliveries distance duration time latency city
country region device browser app mobile web login logins account accounts age tenure
rating ratings review reviews star stars acceptance cancellation cancellations share
ratio mean median maximum minimum last first recent hourly monthly yearly window rolling
lifetime active inactive new returning churn retention engagement search searches query
queries impression impressions ad ads campaign campaigns spend budget bid bids auction
inventory stock supply demand surge peak offpeak weekend weekday holiday season weather
temperature rain traffic speed route routes pickup dropoff wait waiting idle online
offline shift shifts earnings tip tips bonus incentive promo promotion coupon coupons
"""
REAL_WORDS = _REAL_WORDS.split()


def _vocabulary(rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    made = set(REAL_WORDS)
    words = list(REAL_WORDS)
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(letters, size=int(rng.integers(4, 10))))
        if word not in made:
            made.add(word)
            words.append(word)
    return words


def catalog(seed: int = 42) -> Any:
    """The synthetic catalog (see the module), the same for the same seed."""
    from parity import (
        Entity,
        FeatureService,
        FeatureView,
        Field,
        FileSource,
        Float64,
        Int64,
        Model,
        OnDemandFeatureView,
    )
    from parity.definitions.on_demand import UdfLocation
    from parity.registry.catalog import Catalog

    rng = np.random.default_rng(seed)
    vocab = _vocabulary(rng)
    # Zipf-like: the first words (the real ones) come up far more often than the made-up ones
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()

    def words(lo: int, hi: int) -> str:
        picks = rng.choice(len(vocab), size=int(rng.integers(lo, hi + 1)), p=weights)
        return " ".join(vocab[int(i)] for i in picks)

    owners = [f"team-{vocab[i]}@example.com" for i in range(OWNERS)]
    teams = ["ranking", "risk", "growth", "payments", "logistics", "ads"]
    entities = [
        Entity(name=f"e{i}", join_keys=[f"e{i}_id"], dtype=Int64, description=words(4, 8))
        for i in range(ENTITIES)
    ]
    sources = [
        FileSource(
            name=f"s{i}",
            path=f"data/s{i}.parquet",
            timestamp_field="ts",
            description=words(6, 14),
            owner=owners[i % OWNERS],
        )
        for i in range(SOURCES)
    ]
    views = []
    for i in range(VIEWS):
        schema = []
        for k in range(FEATURES_PER_VIEW):
            a, b = (vocab[int(j)] for j in rng.choice(len(vocab), size=2, p=weights))
            schema.append(Field(name=f"{a}_{b}_{k}", dtype=Float64, description=words(6, 14)))
        views.append(
            FeatureView(
                name=f"{vocab[int(rng.choice(len(vocab), p=weights))]}_stats_{i}",
                entities=[entities[int(rng.integers(ENTITIES))]],
                source=sources[int(rng.integers(SOURCES))],
                schema=schema,
                description=words(6, 14),
                owner=owners[int(rng.integers(OWNERS))],
                tags={"team": teams[i % len(teams)]},
            )
        )
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
                schema=[Field(name="out", dtype=Float64, description=words(6, 14))],
                udf=UdfLocation(module="bench_udfs", qualname=f"od{i}", source_hash="0" * 64),
                description=words(6, 14),
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
        services.append(
            FeatureService(
                name=f"svc{i}",
                features=items,
                description=words(6, 14),
                owner=owners[i % OWNERS],
            )
        )
    models = [
        Model(f"m{i}", features=services[i * 4], description=words(6, 14)) for i in range(MODELS)
    ]
    return Catalog.of([*entities, *sources, *views, *odfvs, *services, *models], revision=1)


def _timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def _per_call(fn: Callable[[], Any], calls: int, runs: int) -> list[float]:
    """Seconds per call of ``fn``, one figure per run of ``calls`` calls."""
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - t) / calls)
    return out


def _usage_costs(cat: Any, runs: int) -> dict[str, list[float]]:
    """Seconds per read of what an online read does with its hooks once answered (the shape
    call ``OnlineReads._finish`` makes for masking, then ``_report``), without and with the
    usage hook, and with a no-op ``after_online_read`` hook instead (what observing there
    would cost); of the hook alone; and of one interval's write."""
    from parity.discovery.usage import UsageHooks
    from parity.hooks import Hooks, HookSet
    from parity.query.plan import plan_features
    from parity.registry import Registry

    class Masking(Hooks):  # stands for the masking hook every store has
        def shape_online_response(self, **_: Any) -> None:
            return None

    class AfterRead(Hooks):  # an observer of after_online_read that does nothing
        def after_online_read(self, **_: Any) -> None:
            pass

    registry = Registry("sqlite://", "bench_discovery")
    clock = iter(range(10**12)).__next__
    hook = UsageHooks(lambda: registry, lambda: "bench", clock, flush_seconds=3600)
    views = cat.views()
    plan = plan_features([f"{views[0].name}:{views[0].feature_names[0]}"], cat)
    cols = {"e0_id": [1]}
    response = object()

    def answered(hooks: HookSet) -> Callable[[], None]:
        began = time.perf_counter()

        def finish() -> None:  # OnlineReads._finish's shape call and _report, as they are
            if hooks.wants("shape_online_response"):
                hooks.shape(
                    "shape_online_response",
                    "response",
                    response,
                    project="bench",
                    plan=plan,
                    entities=cols,
                )
            if hooks.wants("after_online_read"):
                hooks.after(
                    "after_online_read",
                    project="bench",
                    plan=plan,
                    rows=len(next(iter(cols.values()), [])),
                    response=response,
                    entities=cols,
                    now_us=1,
                    seconds=time.perf_counter() - began,
                    error=None,
                )

        return finish

    calls = 50_000
    costs = {
        "without": _per_call(answered(HookSet([Masking()])), calls, runs),
        "with": _per_call(answered(HookSet([Masking(), hook])), calls, runs),
        "after": _per_call(answered(HookSet([Masking(), AfterRead()])), calls, runs),
        "body": _per_call(
            lambda: hook.shape_online_response(
                project="bench", plan=plan, entities=cols, response=response
            ),
            calls,
            runs,
        ),
    }
    plans = [plan_features([f"{v.name}:{f}" for f in v.feature_names], cat) for v in views[:200]]
    writes = []
    for _ in range(runs):
        for p in plans:
            hook.shape_online_response(project="bench", plan=p, entities=cols, response=None)
        t = time.perf_counter()
        hook.flush()
        writes.append(time.perf_counter() - t)
    hook.close()
    registry.close()
    costs["write"] = writes
    return costs


def run(data_dir: Path | None = None, runs: int = 7, only: str | None = None) -> TableReport:
    """The discovery benchmark's report (``data_dir`` and ``only`` unused: it makes its data)."""
    from parity.discovery.search import SearchIndex, index_for, search

    t = time.perf_counter()
    cat = catalog()
    made_s = time.perf_counter() - t
    build_times, index = _timed(lambda: SearchIndex(cat), runs)
    index.close()
    cold = time.perf_counter()
    first = search(cat, "conversion rate")
    cold_ms = (time.perf_counter() - cold) * 1000
    index = index_for(cat)
    name = cat.views()[1234].name
    queries: list[tuple[str, dict[str, Any]]] = [
        ("conversion rate", {}),
        ("c", {}),
        (name, {}),
        ("driver trips", {"tags": {"team": "ranking"}}),
        ("zzzzqqq", {}),
    ]
    report = TableReport(
        f"Discovery over {VIEWS:,} views, {VIEWS * FEATURES_PER_VIEW:,} features, {SERVICES} "
        f"services, {MODELS} models (median of {runs})",
        headers=("", "median ms", "min ms", "size", "target", "met"),
        about=[
            f"catalog generated in {made_s:.2f} s; index: {len(index.objects):,} objects, "
            f"{VIEWS * FEATURES_PER_VIEW + ON_DEMAND:,}+ feature rows"
        ],
    )

    def row(label: str, times: list[float], size: str, goal: float | None = None) -> None:
        med = statistics.median(times) * 1000
        report.rows.append(
            (
                label,
                f"{med:,.3f}",
                f"{min(times) * 1000:,.3f}",
                size,
                "" if goal is None else f"< {goal:g}",
                "" if goal is None else verdict(med < goal),
            )
        )

    row("SearchIndex(catalog): the build", build_times, f"{len(index.objects):,} objects")
    row("first search: build, cache, query", [cold_ms / 1000], f"{len(first)} hits")
    hits: dict[str, Any] = {}
    for query, options in queries:
        times, found = _timed(lambda q=query, o=options: search(cat, q, **o), runs)
        hits[query] = found
        label = f"search({query!r}{', tags=team:ranking' if options else ''})"
        row(label, times, f"{len(found)} hits", GOAL_MS)
    usage = _usage_costs(cat, runs)
    added_us = (statistics.median(usage["with"]) - statistics.median(usage["without"])) * 1e6
    row("after a read: masking only (µs)", [x * 1e3 for x in usage["without"]], "1 read")
    row("after a read: masking + UsageHooks (µs)", [x * 1e3 for x in usage["with"]], "1 read")
    row(
        "after a read: masking + a no-op after-read hook (µs)",
        [x * 1e3 for x in usage["after"]],
        "1 read",
    )
    row("UsageHooks.shape_online_response alone (µs)", [x * 1e3 for x in usage["body"]], "1 read")
    row("usage write: 200 plans x 10 features", usage["write"], "2,200 rows")
    after_us = (statistics.median(usage["after"]) - statistics.median(usage["without"])) * 1e6
    report.notes.append(
        f"the usage hook adds {added_us:.2f} µs to each online read (rows marked µs are "
        "microseconds per read, not milliseconds); a hook observing after_online_read would "
        f"add {after_us:.2f} µs doing nothing at all"
    )
    report.check = (
        bool(hits["conversion rate"])
        and hits[name][0].name == name
        and not hits["zzzzqqq"]
        and all(h.tags.get("team") == "ranking" for h in hits["driver trips"])
    )
    report.check_lines.append(
        f"'conversion rate': {len(hits['conversion rate'])} hits, the top one "
        f"{hits['conversion rate'][0].kind} {hits['conversion rate'][0].name}; "
        f"{name!r} found first by its name; a made-up word finds nothing"
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
