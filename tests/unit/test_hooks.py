"""Observer hooks: every apply, read, retrieval, write and registry refresh is seen, with
keyword arguments; a ``before_*`` hook that raises refuses the operation and nothing happens;
an ``after_*`` hook that raises is logged and changes nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from parity import FeatureStore
from parity.hooks import HOOK_NAMES, Hooks, HookSet
from repo_utils import write_parquet, write_repo

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DEFS = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64, PushSource

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
src = FileSource(name="src", path="data/driver.parquet")
push = PushSource(name="push", batch_source=src)
stats = FeatureView(name="stats", entities=[driver], source=push,
                    schema=[Field(name="conv", dtype=Float64)], ttl=timedelta(days=3650))
"""


class Recorder(Hooks):
    """Every call of every hook, with its arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattribute__(self, name: str) -> Any:
        if name in HOOK_NAMES:
            return lambda **kw: object.__getattribute__(self, "calls").append((name, kw))
        return object.__getattribute__(self, name)

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def last(self, name: str) -> dict[str, Any]:
        return [kw for n, kw in self.calls if n == name][-1]


# __getattribute__ answers for every hook, but HookSet indexes by overridden methods:
for _name in HOOK_NAMES:
    setattr(Recorder, _name, lambda self, **kw: None)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write_repo(tmp_path / "repo", {"features.py": DEFS})
    write_parquet(
        root / "data/driver.parquet",
        {"driver_id": [1, 2], "event_timestamp": [T0, T0], "conv": [0.5, 0.25]},
    )
    return root


def test_every_operation_is_observed_with_keyword_arguments(repo: Path) -> None:
    rec = Recorder()
    store = FeatureStore(repo, hooks=[rec])
    store.apply()
    assert rec.names()[0] == "before_apply"
    done = rec.last("after_apply")
    assert done["project"] == "test" and done["error"] is None and done["plan"].changes
    assert "after_registry_refresh" in rec.names()

    rec.calls.clear()
    store.materialize(T0 - timedelta(days=1), T0)
    before, after = rec.last("before_write"), rec.last("after_write")
    assert before["kind"] == "materialize" and before["views"] == ("stats",)
    assert after["rows"] == 2 and after["stored"] == 2 and after["error"] is None

    rec.calls.clear()
    resp = store.get_online_features(["stats:conv"], entities={"driver_id": [1, 2, 3]})
    assert rec.names() == ["before_online_read", "shape_online_response", "after_online_read"]
    read = rec.last("after_online_read")
    assert read["rows"] == 3 and read["response"] is resp and read["plan"].views == ("stats",)
    assert read["plan"].feature_refs == ("stats:conv",) and read["seconds"] >= 0

    rec.calls.clear()
    frame = pd.DataFrame({"driver_id": [1], "event_timestamp": [T0 + timedelta(hours=1)]})
    job = store.get_historical_features(frame, ["stats:conv"])
    assert (
        rec.names() == ["before_historical"] and rec.last("before_historical")["entity_rows"] == 1
    )
    assert job.to_pandas()["conv"].tolist() == [0.5]
    assert "shape_historical" in rec.names()
    assert rec.last("after_historical")["rows"] == 1

    rec.calls.clear()
    rows = {"driver_id": [3], "event_timestamp": [T0], "conv": [0.75]}
    store.push("push", rows, to="online_and_offline")
    pushed = rec.last("before_write")
    assert pushed["kind"] == "push" and pushed["target"] == "push" and pushed["rows"] == 1
    assert pushed["data"].column("conv").to_pylist() == [0.75]
    assert rec.last("after_write")["stored"] == 1

    rec.calls.clear()
    store.write_to_online_store("stats", rows)
    assert rec.last("before_write")["kind"] == "write"
    store.delete_entities("stats", [3])
    assert rec.last("after_write")["kind"] == "delete" and rec.last("after_write")["stored"] == 1
    store.close()


class Refuse(Hooks):
    def before_write(self, *, kind: str, **_: Any) -> None:
        raise PermissionError(f"no {kind} for you")

    def before_online_read(self, **_: Any) -> None:
        raise PermissionError("no reads")


def test_a_before_hook_that_raises_refuses_and_nothing_is_written(repo: Path) -> None:
    store = FeatureStore(repo)
    store.apply()
    guard = store.hooks.add(Refuse())
    rows = {"driver_id": [7], "event_timestamp": [T0], "conv": [0.1]}
    with pytest.raises(PermissionError, match="no push for you"):
        store.push("push", rows, to="online_and_offline")
    with pytest.raises(PermissionError, match="no reads"):
        store.get_online_features(["stats:conv"], entities={"driver_id": [7]})
    store.hooks.remove(guard)
    assert store.get_online_features(["stats:conv"], entities={"driver_id": [7]}).to_dict()[
        "conv"
    ] == [None]
    assert not (repo / "data/offline_log/push").exists()  # the offline log was not touched
    store.close()


class Broken(Hooks):
    def after_online_read(self, **_: Any) -> None:
        raise RuntimeError("observer bug")


def test_an_after_hook_that_raises_is_logged_not_raised(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FeatureStore(repo, hooks=[Broken()])
    store.apply()
    store.materialize(T0 - timedelta(days=1), T0)
    with caplog.at_level(logging.ERROR, logger="parity.hooks"):
        resp = store.get_online_features(["stats:conv"], entities={"driver_id": [1]})
    assert resp.to_dict()["conv"] == [0.5]
    assert "Broken.after_online_read failed" in caplog.text
    store.close()


def test_errors_reach_after_hooks(repo: Path) -> None:
    rec = Recorder()
    store = FeatureStore(repo, hooks=[rec])
    store.apply()
    with pytest.raises(Exception, match="lack join key"):
        store.get_online_features(["stats:conv"], entities={"other": [1]})
    assert "after_online_read" not in rec.names()  # refused while planning: nothing read
    bad = {"driver_id": [None], "event_timestamp": [T0], "conv": [0.1]}
    with pytest.raises(Exception, match="join key 'driver_id' is null"):
        store.push("push", bad)
    assert "before_write" not in rec.names()  # refused before anything could be written
    store.close()


def test_hookset_calls_only_what_a_hook_overrides() -> None:
    class One(Hooks):
        def after_write(self, **_: Any) -> None:
            pass

    hooks = HookSet([One()])
    assert hooks.wants("after_write") and not hooks.wants("after_online_read")
    with pytest.raises(TypeError, match=r"parity\.hooks\.Hooks"):
        hooks.add(object())  # type: ignore[arg-type]


class Shape(Hooks):
    """Replaces what reads return, as masking does."""

    def shape_online_response(self, *, response: Any, **_: Any) -> Any:
        response.values["conv"] = [None if v is None else -v for v in response.values["conv"]]
        return response

    def shape_historical(self, *, table: Any, **_: Any) -> Any:
        import pyarrow.compute as pc

        i = table.schema.get_field_index("conv")
        return table.set_column(i, "conv", pc.negate(table.column("conv")))


class MustRecord(Hooks):
    must_succeed = True

    def after_online_read(self, **_: Any) -> None:
        raise RuntimeError("the audit log is down")


class MayFail(Hooks):
    def after_online_read(self, **_: Any) -> None:
        raise RuntimeError("only logged")


def test_shape_hooks_replace_what_reads_return_and_must_succeed_hooks_fail_them(
    repo: Path,
) -> None:
    store = FeatureStore(repo, hooks=[Shape()])
    store.apply()
    store.materialize(T0 - timedelta(days=1), T0)
    resp = store.get_online_features(["stats:conv"], entities={"driver_id": [1, 2]})
    assert resp.values["conv"] == [-0.5, -0.25]
    frame = pd.DataFrame({"driver_id": [2], "event_timestamp": [T0 + timedelta(hours=1)]})
    assert store.get_historical_features(frame, ["stats:conv"]).to_pandas()["conv"].tolist() == [
        -0.25
    ]
    store.hooks.add(MayFail())
    assert store.get_online_features(["stats:conv"], entities={"driver_id": [1]}).values
    store.hooks.add(MustRecord())
    with pytest.raises(RuntimeError, match="audit log is down"):
        store.get_online_features(["stats:conv"], entities={"driver_id": [1]})
    store.close()
