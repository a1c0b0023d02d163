"""The disk cache (parity.cache): what it keeps, when it is off, and that it is never wrong."""

import os
import pickle
from pathlib import Path

import pytest

from parity import cache


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV, str(folder))
    return folder


def test_a_saved_value_is_loaded_back_and_a_missing_one_is_none(cache_dir: Path) -> None:
    assert cache.load("ns", "k") is None
    cache.save("ns", "k", {"a": [1, 2]})
    assert cache.load("ns", "k") == {"a": [1, 2]}
    assert cache.load("ns", "other") is None
    assert cache.load("other_ns", "k") is None
    assert cache_dir.is_dir() and oct(cache_dir.stat().st_mode & 0o777) == oct(0o700)


@pytest.mark.parametrize("off", ["off", "0", "none", "OFF"])
def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch, off: str) -> None:
    monkeypatch.setenv(cache.ENV, off)
    assert cache.directory() is None
    cache.save("ns", "k", 1)
    assert cache.load("ns", "k") is None


def test_a_folder_others_may_write_to_is_never_read(tmp_path: Path, monkeypatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv(cache.ENV, str(shared))
    assert cache.directory() is None
    cache.save("ns", "k", 1)
    assert not any(shared.iterdir())


def test_an_unreadable_entry_is_dropped_and_counts_as_a_miss(cache_dir: Path) -> None:
    cache.save("ns", "k", [1])
    (entry,) = (cache_dir / "ns").glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    assert cache.load("ns", "k") is None
    assert not entry.exists()


def test_each_namespace_keeps_its_newest_entries(cache_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(cache, "KEEP", 3)
    for i in range(6):
        cache.save("ns", f"k{i}", i)
        path = cache._entry("ns", f"k{i}")
        assert path is not None
        os.utime(path, ns=(i * 10**9, i * 10**9))  # strictly ordered by age
    assert sorted(p.name for p in (cache_dir / "ns").glob("*.pickle")) == sorted(
        cache._entry("ns", f"k{i}").name for i in (3, 4, 5)
    )
    assert [cache.load("ns", f"k{i}") for i in range(6)] == [None, None, None, 3, 4, 5]


def test_entries_are_keyed_by_the_installed_code(cache_dir: Path, monkeypatch) -> None:
    cache.save("ns", "k", "old code's")
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "another version of Parity")
    assert cache.load("ns", "k") is None


def test_garbage_collection_is_held_off_while_bulk_loading_and_restored() -> None:
    import gc

    assert gc.isenabled()
    with cache.bulk_load():
        assert not gc.isenabled()
        with cache.bulk_load():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer load still runs
    assert gc.isenabled()
    with pytest.raises(ValueError), cache.bulk_load():
        raise ValueError
    assert gc.isenabled()


def test_a_value_pickles_as_written(cache_dir: Path) -> None:
    from parity import Entity

    entity = Entity(name="driver", join_keys=["driver_id"])
    entity.content_hash()
    cache.save("ns", "e", entity)
    back = cache.load("ns", "e")
    assert back == entity and back.content_hash() == entity.content_hash()
    assert pickle.loads(pickle.dumps(entity)) == entity


def test_a_short_lived_process_freezes_what_a_bulk_load_made() -> None:
    import gc

    made = []
    try:
        cache.freeze_after_bulk_loads()
        with cache.bulk_load():
            made = [{"i": i} for i in range(1000)]
        assert gc.get_freeze_count() >= len(made)  # out of collection's reach
        assert gc.isenabled()
    finally:
        cache.freeze_after_bulk_loads(False)
        gc.unfreeze()
    with cache.bulk_load():
        made = [{"i": i} for i in range(10)]
    assert gc.get_freeze_count() == 0 and len(made) == 10
