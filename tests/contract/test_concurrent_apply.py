"""Concurrent applies of disjoint objects all succeed, on every registry backend.

``FeatureStore.apply`` validates against the registry's revision and registers only if the
registry is still there; when another apply landed in between, it plans and validates again
against the new revision (with backoff and jitter, bounded in time), so applies that touch
different objects never fail for each other. One that conflicts for a real reason fails
validation with that reason.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from parity import (
    ConcurrentApplyError,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    ValidationError,
)
from parity.registry import apply as apply_module
from repo_utils import write_parquet, write_repo

THREADS = 16
PROCESSES = 6


def make_repo(registry_target: Any, root: Path) -> Path:
    from conftest import new_project  # the contract suite's helper

    reg = registry_target.url
    if registry_target.schema:
        reg = f"{{ url: '{reg}', schema: {registry_target.schema} }}"
    root = write_repo(root, {}, project=new_project(), registry=reg)
    (root / "parity.yaml").write_text(
        (root / "parity.yaml").read_text()
        + "online_store: { type: sqlite, path: data/online.db }\n"
    )
    write_parquet(
        root / "data/rows.parquet",
        {
            "id": pa.array([1, 2], pa.int64()),
            "event_timestamp": pa.array([0, 1], pa.timestamp("us", tz="UTC")),
            "x": pa.array([0.5, 1.5], pa.float64()),
        },
    )
    return root


def objects_of(worker: int) -> list[Any]:
    """A worker's own entity, source and view: no other worker touches them."""
    entity = Entity(name=f"e{worker}", join_keys=[f"id{worker}"], dtype=Int64)
    source = FileSource(
        name=f"s{worker}", path="data/rows.parquet", field_mapping={"id": f"id{worker}"}
    )
    view = FeatureView(
        name=f"v{worker}",
        entities=[entity],
        source=source,
        schema=[Field(name="x", dtype=Float64)],
    )
    return [entity, source, view]


def check_all_landed(root: Path, workers: int, plans: list[Any]) -> None:
    with FeatureStore(root) as fs:
        reg = fs.registry
        assert reg.revision() == workers
        assert sorted(v.name for v in fs.list_feature_views()) == sorted(
            f"v{w}" for w in range(workers)
        )
        assert len(fs.list_entities()) == workers == len(fs.list_data_sources())
        # one revision per apply, each moving the registry by exactly one
        assert sorted(p[1] for p in plans) == list(range(1, workers + 1))
        for w in range(workers):
            history = reg.history(f"v{w}", "feature_view")
            assert [(r.number, r.action) for r in history] == [(1, "create")]


def run_threads(work: Callable[[int], Any], n: int) -> list[Any]:
    results: dict[int, Any] = {}
    errors: list[str] = []
    barrier = threading.Barrier(n)

    def body(w: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[w] = work(w)
        except BaseException:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=body, args=(w,)) for w in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, f"{len(errors)} of {n} applies failed; the first:\n{errors[0]}"
    assert len(results) == n
    return [results[w] for w in range(n)]


def test_sixteen_threads_with_their_own_stores_all_succeed(registry_target, tmp_path):
    root = make_repo(registry_target, tmp_path / "repo")

    def work(w: int) -> tuple[int, int]:
        with FeatureStore(root) as fs:
            plan = fs.apply(objects_of(w))
            return plan.base_revision, plan.revision

    check_all_landed(root, THREADS, run_threads(work, THREADS))


def test_sixteen_threads_sharing_one_store_all_succeed(registry_target, tmp_path):
    root = make_repo(registry_target, tmp_path / "repo")
    with FeatureStore(root) as fs:

        def work(w: int) -> tuple[int, int]:
            plan = fs.apply(objects_of(w))
            return plan.base_revision, plan.revision

        plans = run_threads(work, THREADS)
    check_all_landed(root, THREADS, plans)


def _apply_in_child(root: str, worker: int, barrier: Any, reports: Any) -> None:
    try:
        with FeatureStore(root) as fs:
            fs.catalog()  # connected and warm before the start
            barrier.wait(timeout=120)
            plan = fs.apply(objects_of(worker))
        reports.put((worker, "ok", (plan.base_revision, plan.revision)))
    except BaseException:
        reports.put((worker, "error", traceback.format_exc()))


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_applying_disjoint_objects_all_succeed(postgres_url, postgres_schema, tmp_path):
    """Separate processes on PostgreSQL (where a registry is shared by machines): only
    the retry keeps them apart. On SQLite, processes taking turns on the lock is covered by
    test_registry.py and the retry by the tests below."""
    from conftest import RegistryTarget

    target = RegistryTarget("postgresql", postgres_url, postgres_schema)
    root = make_repo(target, tmp_path / "repo")
    ctx = mp.get_context("spawn")
    barrier, reports = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=_apply_in_child, args=(str(root), w, barrier, reports))
        for w in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    deadline = time.monotonic() + 300
    while len(results) < PROCESSES and time.monotonic() < deadline:
        try:
            worker, status, value = reports.get(timeout=1)
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and reports.empty():
                break
            continue
        assert status == "ok", f"worker {worker} failed:\n{value}"
        results[worker] = value
    for p in procs:
        p.join(timeout=60)
    assert len(results) == PROCESSES, f"only {len(results)} of {PROCESSES} workers reported"
    check_all_landed(root, PROCESSES, list(results.values()))


def test_a_real_conflict_found_on_retry_fails_validation_not_the_retry(
    registry_target, tmp_path, monkeypatch
):
    """Between validation and the write another apply deletes the entity and source the
    view reads: the retry validates against that and names the real problem."""
    root = make_repo(registry_target, tmp_path / "repo")
    with FeatureStore(root) as fs, FeatureStore(root) as other:
        fs.apply(objects_of(0)[:2])
        view = FeatureView(
            name="v0", entities=["e0"], source="s0", schema=[Field(name="x", dtype=Float64)]
        )
        real_prepare = apply_module._prepare
        interloped: list[Any] = []

        def prepare_then_interlope(ctx: Any, *args: Any) -> Any:
            prep = real_prepare(ctx, *args)
            if ctx.registry is fs.registry and not interloped:
                interloped.append(other.apply([], delete_missing=True))
            return prep

        monkeypatch.setattr(apply_module, "_prepare", prepare_then_interlope)
        with pytest.raises(ValidationError, match="unknown entity 'e0'"):
            fs.apply([view])
        assert interloped and fs.registry.revision() == 2
        assert fs.list_feature_views() == []


class FakeTime:
    """``monotonic`` and ``sleep`` for the apply module: time passes only by its sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_time_bound_ends_with_an_error_saying_what_to_do(
    registry_target, tmp_path, monkeypatch
):
    """With a registry that moves on before every write, the apply retries with growing,
    jittered waits and gives up at its bound (in time, on a fake clock) saying what to do."""
    root = make_repo(registry_target, tmp_path / "repo")
    fake = FakeTime()
    monkeypatch.setattr(apply_module, "time", fake)
    monkeypatch.setattr(apply_module, "RETRY_SECONDS", 4.0)
    with FeatureStore(root) as fs, FeatureStore(root) as other:
        fs.apply(objects_of(0))
        real_prepare = apply_module._prepare
        moved = [0]

        def prepare_then_move(ctx: Any, *args: Any) -> Any:
            prep = real_prepare(ctx, *args)
            if ctx.registry is fs.registry:
                moved[0] += 1
                other.apply([Entity(name=f"mover{moved[0]}")])
            return prep

        monkeypatch.setattr(apply_module, "_prepare", prepare_then_move)
        with pytest.raises(ConcurrentApplyError) as info:
            fs.apply(objects_of(1))
        text = str(info.value)
        assert f"{moved[0]} attempt(s)" in text and "apply again" in text.lower(), text
        assert "RETRY_SECONDS" in text
        assert moved[0] == len(fake.slept) + 1 >= 2  # a wait between attempts, none after
        assert sum(fake.slept) == pytest.approx(4.0)  # waited up to the bound, not past it
        first, longest = apply_module.BACKOFF_SECONDS
        assert all(0 <= w <= min(longest, first * 2**i) for i, w in enumerate(fake.slept))
        assert [v.name for v in fs.list_feature_views()] == ["v0"]
