"""``parity materialize``, ``materialize-incremental`` and ``teardown`` on a scaffolded repo."""

from __future__ import annotations

from datetime import UTC, datetime

from typer.testing import CliRunner

from parity.cli import app
from parity.cli.scaffold import create_repo
from parity.store import FeatureStore

runner = CliRunner(env={"COLUMNS": "200"})
LATER = datetime(2024, 1, 3, 23, 30, tzinfo=UTC)  # just after the sample data ends


def run(*args, code=0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def test_materialize_then_read_then_teardown(tmp_path):
    repo = tmp_path / "shop"
    create_repo("shop", repo, now=LATER)  # `parity init` on 2024-01-03 at 23:30
    run("apply", "--repo", repo)
    out = run("materialize", "2023-12-31", "2024-01-04", "--repo", repo)
    assert "driver_hourly_stats" in out and "Entity keys" in out
    with FeatureStore(repo, clock=lambda: LATER) as store:
        resp = store.get_online_features(
            ["driver_hourly_stats:conv_rate"], entities={"driver_id": [1001, 9]}
        )
        assert resp.statuses["conv_rate"] == ["present", "missing"]
        assert {m.view for m in store.registry.materializations()} >= {"driver_hourly_stats"}
    out = run("materialize-incremental", "2024-01-05", "--views", "driver_rating", "--repo", repo)
    assert "driver_rating" in out and "driver_profile" not in out
    run("teardown", "--yes", "--repo", repo)
    with FeatureStore(repo, clock=lambda: LATER) as store:
        resp = store.get_online_features(
            ["driver_hourly_stats:conv_rate"], entities={"driver_id": [1001]}
        )
        assert resp.statuses["conv_rate"] == ["missing"]
        assert store.registry.materializations() == []


def test_bad_times_and_views_are_refused(tmp_path):
    repo = tmp_path / "shop"
    run("init", "shop", "--dir", repo)
    run("apply", "--repo", repo)
    assert "not a time" in run("materialize", "yesterday", "now", "--repo", repo, code=1)
    assert "nope" in run(
        "materialize", "2024-01-01", "now", "--views", "nope", "--repo", repo, code=1
    )
    assert "before start" in run("materialize", "2024-02-01", "2024-01-01", "--repo", repo, code=1)
