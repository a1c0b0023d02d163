"""``parity drift`` on a scaffolded repo: the table, --json, exit 3 on drift, baselines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from typer.testing import CliRunner

from parity.cli import app
from parity.cli.scaffold import create_repo
from parity.registry.monitoring import MonitorRecords
from parity.store import FeatureStore

runner = CliRunner(env={"COLUMNS": "200"})
LATER = datetime(2024, 1, 3, 23, 30, tzinfo=UTC)  # just after the sample data ends


def run(*args, code=0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def test_drift_table_json_exit_codes_and_baselines(tmp_path):
    repo = tmp_path / "shop"
    create_repo("shop", repo, now=LATER)
    run("apply", "--repo", repo)
    same = run(
        "drift", "driver_profile", "--baseline", "..2024-01-02", "--current", "..2024-01-02",
        "--repo", repo,
    )  # fmt: skip
    assert "0 of 2 feature(s) drifted" in same and "lifetime_trips" in same and "chi2" in same

    out = run(
        "drift", "driver_profile", "-b", "..2024-01-02", "-c", "2024-01-02..", "--json",
        "--repo", repo, code=3,
    )  # fmt: skip
    payload = json.loads(out)
    assert payload["summary"]["drifted"] == ["lifetime_trips"]  # trips only grow
    assert {r["test"] for r in payload["rows"] if r["feature"] == "city"} == {"chi2", "psi", "js"}
    with FeatureStore(repo) as store:
        assert (
            MonitorRecords(store.registry).results("drift", "driver_profile")[0].id
            == (payload["id"])
        )

    saved = run(
        "drift", "driver_profile", "--save-baseline", "first", "--start", "2023-01-01",
        "--end", "2024-01-02", "--repo", repo,
    )  # fmt: skip
    assert "saved baseline 'first'" in saved
    table = run(
        "drift", "driver_profile", "-b", "first", "-c", "2024-01-02..", "-f", "lifetime_trips",
        "--no-save", "--repo", repo, code=3,
    )  # fmt: skip
    assert "DRIFTED" in table and "city" not in table and "kept as" not in table
    again = run(
        "drift", "driver_profile", "--save-baseline", "first", "--start", "2023-01-01",
        "--end", "2024-01-02", "--repo", repo, code=1,
    )  # fmt: skip
    assert "exists" in again


def test_bad_input_is_an_error_naming_it(tmp_path):
    repo = tmp_path / "shop"
    create_repo("shop", repo, now=LATER)
    run("apply", "--repo", repo)
    assert "'nope'" in run("drift", "nope", "-b", "..", "--repo", repo, code=1)
    assert "'zz'" in run("drift", "driver_profile", "-b", "..", "-f", "zz", "--repo", repo, code=1)
    assert "no rows" in run(
        "drift", "driver_profile", "-b", "2020-01-01..2020-02-01", "--repo", repo, code=1
    )
    assert "no baseline named 'gone'" in run(
        "drift", "driver_profile", "-b", "gone", "--repo", repo, code=1
    )
    assert "--baseline" in run("drift", "driver_profile", "--repo", repo, code=1)
    assert "needs --start and --end" in run(
        "drift", "driver_profile", "--save-baseline", "x", "--repo", repo, code=1
    )
