"""Reading the whole catalog: objects the caller holds are reused only when rebuilding them
would give an equal object, the disk cache of rebuilt catalogs is exact, and a plan of
unchanged objects reads no spec it does not need. On every registry backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_registry import driver, driver_stats, ranking, repo, stats_source

from parity import cache
from parity.definitions import FeatureView, FileSource
from parity.registry import Registry
from parity.registry import plan as plan_module
from parity.registry import registry as registry_module
from parity.registry.registry import rebuild


def rebuilt(registry: Registry) -> list:
    """The catalog as rebuilt from the stored specs alone."""
    return list(registry.snapshot().objects)


def test_known_objects_equal_to_the_registered_ones_are_taken_as_they_are(registry):
    objs = repo()
    registry.apply(objs)
    snap = registry.snapshot(known=objs)
    assert list(snap.objects) == rebuilt(registry)
    by_name = {o.name: o for o in snap.objects}
    for obj in objs:
        assert by_name[obj.name] is obj  # taken, not rebuilt
        assert rebuild(obj.kind, obj.to_spec()) == obj  # and equal to what a rebuild gives


def test_a_known_object_that_differs_from_the_registered_one_is_not_taken(registry):
    registry.apply(repo())
    newer = driver_stats(ttl="5h")
    snap = registry.snapshot(known=[newer])
    view = next(o for o in snap.objects if o.name == "driver_stats")
    assert view is not newer and view.ttl is not None and view.ttl.total_seconds() == 7200


def test_an_object_holding_another_definition_is_rebuilt(registry):
    source = stats_source()
    holding = FeatureView(
        name="driver_stats", entities=[driver()], source=source, schema=driver_stats().schema,
        ttl="2h",
    )  # fmt: skip
    registry.apply([driver(), source, holding, ranking()])
    snap = registry.snapshot(known=[holding])
    view = next(o for o in snap.objects if o.name == "driver_stats")
    assert view is not holding and view.source == "driver_stats_src"
    assert view.content_hash() == holding.content_hash()


def test_the_disk_cache_of_rebuilt_catalogs_is_exact(registry, tmp_path: Path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(registry_module, "CACHED_CATALOG_OBJECTS", 1)
    monkeypatch.setattr(registry_module, "_FEW_REBUILT", 0)
    registry.apply(repo())
    first = rebuilt(registry)  # rebuilt and kept
    assert list((tmp_path / "cache" / "catalog").glob("*.pickle"))
    again = rebuilt(registry)  # from the cache
    assert again == first and [o.content_hash() for o in again] == [o.content_hash() for o in first]
    registry.apply([*repo(), FileSource(name="other_src", path="data/other.parquet")])
    after = rebuilt(registry)  # another set of hashes: not the kept catalog
    assert "other_src" in {o.name for o in after} and len(after) == len(first) + 1


def test_a_plan_of_unchanged_objects_reads_no_spec(registry, monkeypatch):
    objs = repo()
    registry.apply(objs)
    read: list[str] = []
    original = plan_module.json.loads

    def counting(text, *a, **kw):
        read.append(text)
        return original(text, *a, **kw)

    monkeypatch.setattr(plan_module.json, "loads", counting)
    planned = registry.plan(repo(ttl="3h"))  # one update, three unchanged
    assert {c.name: c.action for c in planned.changes}["driver_stats"] == "update"
    assert len(read) <= 1  # the changed view's stored spec only (a dict on some drivers)
    unchanged = [c for c in planned.changes if c.action == "unchanged"]
    assert unchanged and all(c.old == c.new and c.new["name"] == c.name for c in unchanged)


@pytest.mark.parametrize("action", ["create", "update", "delete", "unchanged"])
def test_changes_are_immutable_values(action) -> None:
    from parity.registry.plan import Change, Stored

    spec = {"name": "a"}
    lazy = Change("entity", "a", action, Stored(lambda: dict(spec), "h"), spec)
    eager = Change("entity", "a", action, dict(spec), dict(spec))
    assert lazy == eager and hash(lazy) == hash(eager) and lazy.old == spec
    with pytest.raises(AttributeError):
        lazy.action = "create"  # type: ignore[misc]
