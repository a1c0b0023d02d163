"""The registry contract: every database in ``backends.REGISTRY_BACKENDS`` behaves the same.

Real databases only. The concurrency tests start processes with ``spawn`` and check what
must hold whatever the interleaving: versions 1..N without gaps or duplicates, the live spec
equal to the latest version's, one revision per apply that changed something.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from parity.definitions import Entity, FeatureService, FeatureView, Field, FileSource
from parity.errors import (
    ConcurrentApplyError,
    ObjectNotFoundError,
    RegistryError,
    ValidationError,
)
from parity.registry import FieldChange, Plan, Registry, VersionRecord
from parity.registry.diff import ABSENT
from parity.registry.migrate import current_revision, head_revision
from parity.registry.models import ALEMBIC_VERSION_TABLE, metadata

RegistryTarget = Any  # the conftest fixture's value: backend, url, schema, open()


def new_project() -> str:
    return f"proj_{uuid.uuid4().hex[:12]}"


# -- definitions ----------------------------------------------------------------------------


def driver(**kw: Any) -> Entity:
    return Entity("driver", join_keys=["driver_id"], dtype="Int64", **kw)


def stats_source(path: str = "data/driver_stats.parquet", **kw: Any) -> FileSource:
    return FileSource(name="driver_stats_src", path=path, **kw)


def driver_stats(ttl: str = "2h", dtype: str = "Float32", extra: bool = False, **kw: Any):
    fields = [Field(name="conv_rate", dtype=dtype), Field(name="trips", dtype="Int64")]
    if extra:
        fields.append(Field(name="acc_rate", dtype="Float64"))
    return FeatureView(
        name="driver_stats", entities=["driver"], source="driver_stats_src", schema=fields,
        ttl=ttl, **kw,
    )  # fmt: skip


def ranking(**kw: Any) -> FeatureService:
    return FeatureService(name="ranking", features=["driver_stats:conv_rate"], **kw)


def repo(**view_kw: Any) -> list[Any]:
    return [driver(), stats_source(), driver_stats(**view_kw), ranking()]


def actions(plan: Plan) -> dict[tuple[str, str], str]:
    return {(c.kind, c.name): c.action for c in plan.changes}


# -- plan and apply -------------------------------------------------------------------------


def test_plan_on_an_empty_registry_creates_everything_and_writes_nothing(registry: Registry):
    plan = registry.plan(repo())
    assert [(c.kind, c.name, c.action) for c in plan.changes] == [
        ("entity", "driver", "create"),
        ("source", "driver_stats_src", "create"),
        ("feature_view", "driver_stats", "create"),
        ("feature_service", "ranking", "create"),
    ]
    assert plan.has_changes
    assert plan.summary() == "4 to create, 0 to change, 0 to delete"
    assert plan.base_revision == 0 and plan.revision is None
    assert "+ feature_view driver_stats" in plan.render()
    assert registry.list() == [] and registry.revision() == 0


def test_apply_stores_objects_and_their_first_version(registry: Registry):
    before = datetime.now(UTC)
    plan = registry.apply(repo(), author="ana")
    assert plan.summary() == "4 to create, 0 to change, 0 to delete"
    assert (plan.base_revision, plan.revision) == (0, 1)
    assert registry.revision() == 1
    assert [(o.kind, o.name) for o in registry.list()] == [
        ("entity", "driver"),
        ("source", "driver_stats_src"),
        ("feature_view", "driver_stats"),
        ("feature_service", "ranking"),
    ]
    assert registry.get("feature_view", "driver_stats") == driver_stats()
    assert registry.list("entity") == [driver()]

    [record] = registry.history("driver_stats")
    assert isinstance(record, VersionRecord)
    assert (record.kind, record.number, record.action, record.author) == (
        "feature_view", 1, "create", "ana",
    )  # fmt: skip
    assert record.spec == driver_stats().to_spec()
    assert record.content_hash == driver_stats().content_hash()
    assert record.diff == () and record.revision == 1
    assert record.definition == driver_stats()
    assert record.applied_at.tzinfo is not None
    assert before - timedelta(seconds=1) <= record.applied_at <= datetime.now(UTC)


def test_applying_the_same_objects_again_changes_nothing(registry: Registry):
    registry.apply(repo())
    plan = registry.apply(repo())
    assert not plan.has_changes
    assert set(actions(plan).values()) == {"unchanged"}
    assert plan.render().startswith("No changes")
    assert (plan.base_revision, plan.revision) == (1, 1)
    assert registry.revision() == 1
    assert [r.number for r in registry.history("driver_stats")] == [1]


def test_update_records_a_field_level_diff(registry: Registry):
    registry.apply(repo(), author="ana")
    plan = registry.apply(repo(ttl="4h", dtype="Float64", extra=True), author="bo")
    assert actions(plan)[("feature_view", "driver_stats")] == "update"
    assert actions(plan)[("entity", "driver")] == "unchanged"
    assert plan.summary() == "0 to create, 1 to change, 0 to delete"
    [change] = plan.of("update")
    paths = {fc.path: fc for fc in change.diff}
    assert paths["ttl"] == FieldChange("ttl", "2h", "4h")
    assert paths["schema[conv_rate].dtype"] == FieldChange(
        "schema[conv_rate].dtype", "Float32", "Float64"
    )
    assert paths["schema[acc_rate]"].old is ABSENT
    text = plan.render()
    assert "~ feature_view driver_stats" in text
    assert "    ttl: 2h -> 4h" in text
    assert "    schema[conv_rate].dtype: Float32 -> Float64" in text

    v1, v2 = registry.history("driver_stats", "feature_view")
    assert (v1.number, v2.number) == (1, 2)
    assert (v2.action, v2.author, v2.revision) == ("update", "bo", 2)
    assert v2.diff == change.diff
    assert v2.spec == registry.get("feature_view", "driver_stats").to_spec()


def test_objects_left_out_are_kept_unless_delete_missing(registry: Registry):
    registry.apply(repo())
    plan = registry.apply([driver(), stats_source(), driver_stats()])
    assert not plan.has_changes
    assert registry.get("feature_service", "ranking") == ranking()

    plan = registry.apply([driver(), stats_source(), driver_stats()], delete_missing=True)
    assert actions(plan)[("feature_service", "ranking")] == "delete"
    assert plan.summary() == "0 to create, 0 to change, 1 to delete"
    assert "- feature_service ranking" in plan.render()
    assert registry.list("feature_service") == []
    last = registry.history("ranking")[-1]
    assert (last.action, last.number, last.revision) == ("delete", 2, 2)
    assert last.spec == ranking().to_spec()


def test_recreating_after_delete_continues_the_version_numbers(registry: Registry):
    registry.apply(repo())
    registry.apply([driver()], delete_missing=True)
    with pytest.raises(ObjectNotFoundError, match="deleted in revision 2"):
        registry.get("feature_view", "driver_stats")
    registry.apply(repo(ttl="8h"))
    history = registry.history("driver_stats")
    assert [(r.number, r.action, r.revision) for r in history] == [
        (1, "create", 1),
        (2, "delete", 2),
        (3, "create", 3),
    ]
    assert registry.get("feature_view", "driver_stats") == driver_stats(ttl="8h")


def test_author_defaults_to_parity_user(registry: Registry, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PARITY_USER", "ci-bot")
    registry.apply([driver()])
    assert registry.history("driver")[0].author == "ci-bot"
    monkeypatch.delenv("PARITY_USER")
    registry.apply([driver(description="x")])
    assert registry.history("driver")[1].author  # the login name


def test_defining_one_object_twice_differently_is_refused(registry: Registry):
    with pytest.raises(ValidationError, match="defined twice"):
        registry.apply([driver(), driver(description="other")])
    assert registry.revision() == 0
    registry.apply([driver(), driver()])  # the same object twice is harmless


def test_expected_revision_refuses_a_stale_plan(registry: Registry):
    plan = registry.plan([driver()])
    registry.apply([stats_source()])  # someone else, in between
    with pytest.raises(ConcurrentApplyError, match="plan again"):
        registry.apply([driver()], expected_revision=plan.base_revision)
    assert registry.list("entity") == []
    applied = registry.apply([driver()], expected_revision=1)
    assert applied.revision == 2


def test_a_failed_apply_writes_nothing(registry: Registry, registry_target: RegistryTarget):
    registry.apply([stats_source()])
    # A trigger makes the last write of the next apply fail, after its other writes ran.
    with (
        _failing_insert(registry_target, registry.project, name="driver"),
        pytest.raises(RegistryError, match="could not apply") as info,
    ):
        registry.apply([stats_source(path="moved.parquet"), driver()])
    assert "boom" in str(info.value) and info.value.__cause__ is not None
    assert registry.revision() == 1
    assert registry.get("source", "driver_stats_src") == stats_source()
    assert [r.number for r in registry.history("driver_stats_src")] == [1]
    assert registry.list("entity") == []
    with pytest.raises(ObjectNotFoundError):
        registry.history("driver")
    assert registry.apply([driver()]).revision == 2  # and the registry still works


@contextlib.contextmanager
def _failing_insert(target: RegistryTarget, project: str, name: str) -> Iterator[None]:
    """While open, inserting live object ``name`` of ``project`` raises 'boom'."""
    engine = _engine(target)
    trigger = f"fail_{project}"
    if target.backend == "sqlite":
        create = [
            f"CREATE TRIGGER {trigger} BEFORE INSERT ON parity_objects "
            f"WHEN NEW.project = '{project}' AND NEW.name = '{name}' "
            "BEGIN SELECT RAISE(ABORT, 'boom'); END"
        ]
        drop = [f"DROP TRIGGER {trigger}"]
    else:
        table = f'"{target.schema}".parity_objects'
        create = [
            f'CREATE FUNCTION "{target.schema}".{trigger}() RETURNS trigger AS $$ BEGIN '
            f"IF NEW.project = '{project}' AND NEW.name = '{name}' THEN "
            "RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            f"CREATE TRIGGER {trigger} BEFORE INSERT ON {table} "
            f'FOR EACH ROW EXECUTE FUNCTION "{target.schema}".{trigger}()',
        ]
        drop = [
            f"DROP TRIGGER {trigger} ON {table}",
            f'DROP FUNCTION "{target.schema}".{trigger}()',
        ]
    with engine.begin() as conn:
        for sql in create:
            conn.exec_driver_sql(sql)
    try:
        yield
    finally:
        with engine.begin() as conn:
            for sql in drop:
                conn.exec_driver_sql(sql)
        engine.dispose()


# -- reading --------------------------------------------------------------------------------


def test_get_find_and_not_found_hints(registry: Registry):
    registry.apply([*repo(), Entity("driver_stats", join_keys=["id"])])
    found = registry.find("driver_stats")
    assert [(o.kind, o.name) for o in found] == [
        ("entity", "driver_stats"),
        ("feature_view", "driver_stats"),
    ]
    assert registry.find("nothing") == []

    with pytest.raises(ObjectNotFoundError, match="did you mean 'driver_stats'") as info:
        registry.get("feature_view", "driver_stat")
    assert isinstance(info.value, KeyError)
    assert info.value.http_status == 404
    assert registry.project in str(info.value)

    with pytest.raises(ObjectNotFoundError, match="exists as entity, feature_view"):
        registry.get("feature_service", "driver_stats")
    with pytest.raises(ObjectNotFoundError, match="known feature_services: ranking"):
        registry.get("feature_service", "zzz")
    with pytest.raises(ObjectNotFoundError, match="'nope' not found"):
        registry.history("nope")
    with pytest.raises(ValueError, match="unknown definition kind"):
        registry.list("views")


def test_history_of_a_name_across_kinds_is_oldest_first(registry: Registry):
    registry.apply([driver()])
    registry.apply([driver(), Entity("x"), FeatureService(name="x", features=["driver_stats"])])
    registry.apply([Entity("x", description="changed")])
    history = registry.history("x")
    assert [(r.kind, r.number, r.revision) for r in history] == [
        ("entity", 1, 2),
        ("feature_service", 1, 2),
        ("entity", 2, 3),
    ]
    assert [r.number for r in registry.history("x", kind="feature_service")] == [1]


def test_projects_are_isolated(registry_target: RegistryTarget):
    with registry_target.open() as a, registry_target.open() as b:
        a.apply(repo())
        assert b.list() == [] and b.revision() == 0
        b.apply([driver(description="b's")])
        assert a.get("entity", "driver") == driver()
        assert (a.revision(), b.revision()) == (1, 1)


def test_snapshot_has_the_live_objects_and_their_revision(registry: Registry):
    assert registry.snapshot().revision == 0
    registry.apply(repo())
    registry.apply([driver()], delete_missing=True)
    snap = registry.snapshot()
    assert snap.revision == 2 == registry.revision()
    assert snap.objects == (driver(),)
    assert snap.get("entity", "driver") == driver()
    with pytest.raises(ObjectNotFoundError):
        snap.get("feature_view", "driver_stats")


# -- migrations -----------------------------------------------------------------------------


def test_migrations_run_on_open_and_are_idempotent(fresh_registry_target: RegistryTarget):
    first = fresh_registry_target.open(project="p")
    first.apply([driver()])
    first.close()
    with fresh_registry_target.open(project="p") as again:  # opening twice migrates nothing
        assert again.get("entity", "driver") == driver()
        assert again.revision() == 1
    schema = fresh_registry_target.schema
    engine = sa.create_engine(fresh_registry_target.url)
    with engine.connect() as conn:
        assert current_revision(conn, schema) == head_revision()
        # The tables the migrations built are the tables the code declares.
        declared = sa.MetaData()
        for table in metadata.tables.values():
            table.to_metadata(declared, schema=schema)

        def ours(name: str | None, type_: str, parents: dict) -> bool:
            if type_ == "schema":
                return name == schema
            return name != ALEMBIC_VERSION_TABLE

        opts = {"include_schemas": schema is not None, "include_name": ours, "compare_type": True}
        assert compare_metadata(MigrationContext.configure(conn, opts=opts), declared) == []
    engine.dispose()


def test_an_unreachable_database_is_a_registry_error(registry_backend: str, tmp_path):
    if registry_backend == "sqlite":
        (tmp_path / "file").write_text("not a folder")
        url = f"sqlite:///{tmp_path}/file/registry.db"
    else:
        url = "postgresql+psycopg://postgres:secret@127.0.0.1:1/test"
    with pytest.raises(RegistryError, match="registry at ") as info:
        Registry(url, "p", timeout=2)
    assert "secret" not in str(info.value)


# -- concurrency ----------------------------------------------------------------------------

WORKERS = 4
APPLIES = 5


def _apply_many(url: str, schema: str | None, project: str, worker: int) -> list[Any]:
    """One worker's applies; every apply gives ``driver`` a new description."""
    out = []
    with Registry(url, project, schema=schema) as reg:
        for k in range(APPLIES):
            objs = [
                driver(description=f"worker {worker} apply {k}"),
                stats_source(),  # the same in every apply: created once
                driver_stats(ttl=f"{k + 1}h"),  # the workers collide on these
            ]
            plan = reg.apply(objs, author=f"w{worker}")
            out.append((plan.base_revision, plan.revision, actions(plan)))
    return out


def _open_and_apply(url: str, schema: str | None, project: str, worker: int) -> int:
    with Registry(url, project, schema=schema) as reg:
        reg.apply([Entity(f"e{worker}")])
        return reg.revision()


def _child(fn: Callable[..., Any], args: tuple, barrier: Any, queue: Any) -> None:
    try:
        barrier.wait(timeout=60)
        queue.put((args[-1], "ok", fn(*args)))
    except BaseException:
        queue.put((args[-1], "error", traceback.format_exc()))


def _in_processes(fn: Callable[..., Any], arg_sets: list[tuple]) -> list[Any]:
    """Run ``fn(*args)`` for each arg set in its own spawned process, all released at once."""
    ctx = mp.get_context("spawn")
    barrier, reports = ctx.Barrier(len(arg_sets)), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(fn, a, barrier, reports)) for a in arg_sets]
    for p in procs:
        p.start()
    results: dict[Any, Any] = {}
    deadline = time.monotonic() + 180
    while len(results) < len(procs) and time.monotonic() < deadline:
        try:
            key, status, value = reports.get(timeout=1)
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and reports.empty():
                break
            continue
        assert status == "ok", f"worker {key} failed:\n{value}"
        results[key] = value
    for p in procs:
        p.join(timeout=30)
    assert len(results) == len(procs), f"only {len(results)} of {len(procs)} workers reported"
    return [results[a[-1]] for a in arg_sets]


@pytest.mark.slow
def test_concurrent_applies_from_processes_serialize(registry_target: RegistryTarget):
    project = new_project()
    Registry(registry_target.url, project, schema=registry_target.schema).close()
    args = [(registry_target.url, registry_target.schema, project, w) for w in range(WORKERS)]
    plans = [p for worker in _in_processes(_apply_many, args) for p in worker]
    _check_serialized(registry_target.open(project), plans)


def test_concurrent_applies_from_threads_serialize(registry: Registry):
    plans: list[Any] = []
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for k in range(APPLIES):
                objs = [driver(description=f"t{worker}-{k}"), driver_stats(ttl=f"{k + 1}h")]
                plan = registry.apply(objs)
                plans.append((plan.base_revision, plan.revision, actions(plan)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    _check_serialized(registry, plans)


def _check_serialized(reg: Registry, plans: list[tuple[int, int, dict]]) -> None:
    """What must hold after concurrent applies, whatever order they ran in."""
    changing = [p for p in plans if p[1] != p[0]]
    # Each changing apply moved the revision by one from the state it read under the lock.
    assert all(after == before + 1 for before, after, _ in changing)
    assert sorted(after for _, after, _ in changing) == list(range(1, len(changing) + 1))
    assert reg.revision() == len(changing)
    for kind, name in {key for _, _, acts in plans for key in acts}:
        history = reg.history(name, kind)
        wrote = sum(acts.get((kind, name)) in ("create", "update") for _, _, acts in plans)
        assert [r.number for r in history] == list(range(1, wrote + 1)), (kind, name)
        assert [r.revision for r in history] == sorted({r.revision for r in history})
        assert reg.get(kind, name).to_spec() == history[-1].spec
        assert Counter(r.action for r in history)["create"] == 1
    reg.close()


@pytest.mark.slow
def test_processes_opening_a_new_database_at_once(fresh_registry_target: RegistryTarget):
    t = fresh_registry_target
    project = new_project()
    revisions = _in_processes(_open_and_apply, [(t.url, t.schema, project, w) for w in range(4)])
    assert sorted(revisions)[-1] == 4
    with t.open(project) as reg:
        assert reg.revision() == 4
        assert sorted(o.name for o in reg.list("entity")) == ["e0", "e1", "e2", "e3"]


def _engine(target: RegistryTarget) -> sa.Engine:
    engine = sa.create_engine(target.url)
    if target.schema:
        engine = engine.execution_options(schema_translate_map={None: target.schema})
    return engine
