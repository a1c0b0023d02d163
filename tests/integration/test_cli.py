"""The `parity` command on scaffolded repos: init, plan, apply, list, describe, history,
historical; errors end with `error: ...` and status 1, usage errors with status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from cli_utils import parity, table_rows
from parity.cli.scaffold import (
    ENTITIES_FILE,
    STATS_FILE,
    UNKNOWN_DRIVER,
    create_repo,
    data_window,
    driver_stats,
)
from parity.store import FeatureStore

PARITY = Path(sys.executable).parent / "parity"
VIEW = "driver_hourly_stats"
REFS = f"{VIEW}:conv_rate,{VIEW}:avg_daily_trips,driver_rating:driver_rating"
OLD_TTL, NEW_TTL = "ttl=timedelta(days=1)", "ttl=timedelta(hours=2)"


def history_versions(text: str) -> list[list[str]]:
    """The version lines of `parity history`: version, bump, action, author, date, time, ..."""
    return [line.split()[1:] for line in text.splitlines() if line.startswith("version ")]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new))


def revision(repo: Path) -> int:
    with FeatureStore(repo) as store:
        return store.registry.revision()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    parity("init", "shop", "--dir", path)
    return path


@pytest.fixture
def applied(repo: Path) -> Path:
    parity("apply", "--repo", repo, "--author", "alice")
    return repo


# -- init ---------------------------------------------------------------------------------------


def test_init_writes_a_repo_with_config_definitions_and_seeded_data(tmp_path: Path):
    before = data_window()
    result = parity("init", "shop", "--dir", tmp_path / "a")
    after = data_window()
    a = tmp_path / "a"
    assert str(a) in result.stdout
    config = yaml.safe_load((a / "parity.yaml").read_text())
    assert config == {
        "project": "shop",
        "registry": "data/registry.db",
        "offline_store": {"type": "duckdb"},
        "online_store": {"type": "sqlite", "path": "data/online.db"},
    }
    for name in ("features.py", "features.yaml", "README.md", ENTITIES_FILE):
        assert (a / name).is_file(), name
    assert "kind: feature_view" in (a / "features.yaml").read_text()
    assert "# shop" in (a / "README.md").read_text()
    stats = pq.read_table(a / STATS_FILE)
    assert 100 <= stats.num_rows <= 1000
    times = stats["event_timestamp"]
    start, end = pc.min(times).as_py(), pc.max(times).as_py()
    assert (start, end) in (before, after), "the data ends at the hour `parity init` ran"
    assert stats.equals(driver_stats(start))
    b = create_repo("shop", tmp_path / "b", now=end)
    assert (b.data_start, b.data_end) == (start, end)
    for name in (STATS_FILE, ENTITIES_FILE):
        assert pq.read_table(a / name).equals(pq.read_table(b.path / name)), f"{name} is seeded"


def test_init_defaults_to_a_folder_named_after_the_project(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parity("init", "fleet-ops")
    assert yaml.safe_load((tmp_path / "fleet-ops" / "parity.yaml").read_text())["project"] == (
        "fleet_ops"
    )


def test_init_refuses_a_non_empty_folder_and_writes_nothing(tmp_path: Path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = parity("init", "shop", "--dir", target, code=1)
    assert result.stderr.startswith("error: ")
    assert "not an empty folder" in result.stderr
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "mine"


def test_init_accepts_an_empty_folder_and_refuses_a_bad_name(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    parity("init", "shop", "--dir", tmp_path / "empty")
    assert (tmp_path / "empty" / "parity.yaml").is_file()
    result = parity("init", "9lives", "--dir", tmp_path / "x", code=1)
    assert "invalid project name '9lives'" in result.stderr
    assert not (tmp_path / "x").exists()


# -- plan and apply -----------------------------------------------------------------------------

CREATED = [
    "+ entity driver",
    "+ source driver_stats_source",
    f"+ feature_view {VIEW}",
    "+ feature_view driver_profile",
    "+ feature_view driver_rating",
    "+ feature_service driver_activity",
]


def test_plan_lists_what_apply_would_create_and_writes_nothing(repo: Path):
    result = parity("plan", "--repo", repo)
    assert [line for line in result.stdout.splitlines() if line.startswith("+")] == CREATED
    assert "Plan: 6 to create, 0 to change, 0 to delete." in result.stdout
    assert revision(repo) == 0


def test_apply_registers_everything_once(repo: Path):
    result = parity("apply", "--repo", repo, "--author", "alice")
    assert [line for line in result.stdout.splitlines() if line.startswith("+")] == CREATED
    assert "Created 6, updated 0, deleted 0; registry revision 1." in result.stdout
    with FeatureStore(repo) as store:
        assert sorted(v.name for v in store.list_feature_views()) == [
            VIEW,
            "driver_profile",
            "driver_rating",
        ]
        assert {r.author for r in store.history(VIEW)} == {"alice"}
    assert parity("apply", "--repo", repo).stdout.strip() == "No changes."
    assert parity("plan", "--repo", repo).stdout.startswith("No changes")
    assert revision(repo) == 1


def test_plan_shows_the_fields_changed_in_python_and_yaml_files(applied: Path):
    edit(applied / "features.py", OLD_TTL, NEW_TTL)
    edit(applied / "features.yaml", "ttl: 30d", "ttl: 14d")
    out = parity("plan", "--repo", applied).stdout
    assert out.splitlines()[:7] == [
        "~ feature_view driver_hourly_stats (major)",
        "    ttl: 1d -> 2h",
        "    reaches 1 downstream object(s):",
        "      -> feature service driver_activity: BREAKS (reads feature_view"
        " 'driver_hourly_stats', which breaks)",
        "~ feature_view driver_profile (major)",
        "    ttl: 30d -> 14d",
        "",
    ]
    assert "Plan: 0 to create, 2 to change, 0 to delete (4 unchanged)." in out
    assert "1 breaking change(s) reach a feature service or a model" in out
    assert revision(applied) == 1, "plan writes nothing"


def test_apply_deletes_what_left_the_repo(applied: Path):
    (applied / "features.yaml").unlink()
    edit(applied / "features.py", 'FeatureViewProjection(view="driver_rating"),', "")
    out = parity("apply", "--repo", applied).stdout
    assert "- feature_view driver_profile" in out
    assert "- feature_view driver_rating" in out
    assert "deleted 2" in out
    history = parity("history", "driver_profile", "--repo", applied).stdout
    assert [row[:3] for row in history_versions(history)] == [
        ["1.0.0", "new", "create"],
        ["1.0.0", "-", "delete"],
    ]


def test_apply_refuses_an_invalid_definition_and_leaves_the_registry(applied: Path):
    with FeatureStore(applied) as store:
        before = store.get_feature_view(VIEW).to_spec()
    edit(applied / "features.py", 'name="acc_rate"', 'name="acc_rte"')
    edit(applied / "features.py", OLD_TTL, NEW_TTL)  # a valid change, refused with the rest
    result = parity("apply", "--repo", applied, code=1)
    assert result.stderr.startswith("error: apply refused")
    assert f"feature view '{VIEW}': field 'acc_rte' is not a column" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert revision(applied) == 1
    with FeatureStore(applied) as store:
        assert store.get_feature_view(VIEW).to_spec() == before
        assert len(store.history(VIEW)) == 1
    verbose = parity("apply", "--repo", applied, "--verbose", code=1)
    assert "Traceback" in verbose.stderr and "ValidationError" in verbose.stderr


def test_an_invalid_yaml_field_names_the_file_object_and_field(applied: Path):
    edit(applied / "features.yaml", "{ name: city, dtype: String }", "{ name: city, dtype: Text }")
    result = parity("apply", "--repo", applied, code=1)
    assert "features.yaml#2" in result.stderr
    assert "feature_view 'driver_profile'" in result.stderr
    assert "dtype" in result.stderr and "'Text'" in result.stderr
    assert revision(applied) == 1


def test_a_missing_repo_is_a_clear_error(tmp_path: Path):
    gone = parity("plan", "--repo", tmp_path / "nowhere", code=1)
    assert gone.stderr.startswith("error: feature repo folder")
    assert "does not exist" in gone.stderr
    bare = parity("list", "--repo", tmp_path, code=1)
    assert bare.stderr.startswith("error: no parity.yaml in")
    assert "parity init" in bare.stderr
    assert "Traceback" not in gone.stderr + bare.stderr


# -- list, describe, history --------------------------------------------------------------------


def test_list_shows_one_table_per_kind(applied: Path):
    out = parity("list", "--repo", applied).stdout
    titles = [line.strip() for line in out.splitlines() if line.strip().endswith(")")]
    assert titles == [
        "Entities (1)",
        "Data sources (1)",
        "Feature views (3)",
        "Feature services (1)",
    ]
    rows = {r[0]: r for r in table_rows(out)}
    assert rows["driver"][1:3] == ["driver_id", "Int64"]
    assert rows["driver_stats_source"][1:3] == ["data/driver_stats.parquet", "event_timestamp"]
    assert rows[VIEW][1:5] == [
        "driver",
        "conv_rate, acc_rate, avg_daily_trips",
        "1d",
        "driver_stats_source",
    ]
    assert rows[VIEW][5:] == [
        "ml-platform@example.com",
        "How active and reliable a driver has been lately.",
    ]
    assert rows["driver_activity"][1] == (
        "driver_hourly_stats:conv_rate,avg_daily_trips driver_rating:*"
    )


def test_list_one_kind(applied: Path):
    views = table_rows(parity("list", "views", "--repo", applied).stdout)
    assert [r[0] for r in views] == [VIEW, "driver_profile", "driver_rating"]
    entities = table_rows(parity("list", "entities", "--repo", applied).stdout)
    assert [r[0] for r in entities] == ["driver"]
    assert "Invalid value" in parity("list", "monitors", "--repo", applied, code=2).stderr
    assert "No models registered." in parity("list", "models", "--repo", applied).stdout


def test_list_before_apply_says_there_is_no_registry_yet(repo: Path):
    err = " ".join(parity("list", "--repo", repo, code=1).stderr.split())
    assert "registry at" in err and "does not exist" in err and "parity apply" in err
    assert not (repo / "data/registry.db").exists()


def test_describe_shows_the_spec_as_yaml_and_the_version(applied: Path):
    out = parity("describe", VIEW, "--repo", applied).stdout
    lines = out.splitlines()
    assert lines[0] == f"feature_view {VIEW}"
    end = next(i for i, line in enumerate(lines) if line.startswith("version "))
    with FeatureStore(applied) as store:
        view = store.get_feature_view(VIEW)
        record = store.history(VIEW)[-1]
    assert yaml.safe_load("\n".join(lines[1:end])) == view.to_spec()
    assert lines[end].startswith("version 1.0.0, created by alice on ")
    assert record.content_hash[:12] in lines[end]


def test_describe_shows_the_last_change(applied: Path):
    edit(applied / "features.py", OLD_TTL, NEW_TTL)
    parity("apply", "--repo", applied, "--author", "bob", "--allow-breaking")
    out = parity("describe", VIEW, "--kind", "view", "--repo", applied).stdout
    assert "ttl: 2h" in out
    assert "version 2.0.0 (major), updated by bob on " in out
    assert "    ttl: 1d -> 2h" in out.splitlines()


def test_describe_a_name_used_by_several_kinds(applied: Path):
    (applied / "extra.yaml").write_text(
        "kind: entity\nname: driver_rating\njoin_keys: [rating_id]\n"
    )
    parity("apply", "--repo", applied)
    both = parity("describe", "driver_rating", "--repo", applied).stdout
    headings = [line for line in both.splitlines() if line.startswith(("entity ", "feature_"))]
    assert headings == ["entity driver_rating", "feature_view driver_rating"]
    one = parity("describe", "driver_rating", "--kind", "entity", "--repo", applied).stdout
    assert one.splitlines()[0] == "entity driver_rating"
    assert "feature_view driver_rating" not in one


def test_describe_an_unknown_name(applied: Path):
    result = parity("describe", "drivr", "--repo", applied, code=1)
    assert result.stderr.startswith("error: object 'drivr' not found")
    assert "did you mean 'driver'?" in result.stderr
    wrong_kind = parity("describe", "driver", "--kind", "service", "--repo", applied, code=1)
    assert "feature service 'driver' not found" in wrong_kind.stderr
    assert (
        "Invalid value" in parity("describe", "x", "-k", "nope", "--repo", applied, code=2).stderr
    )


def test_history_lists_versions_oldest_first(applied: Path):
    edit(applied / "features.py", OLD_TTL, NEW_TTL)
    parity("apply", "--repo", applied, "--author", "bob", "--allow-breaking")
    edit(applied / "features.py", NEW_TTL, "ttl=timedelta(hours=3)")
    edit(applied / "features.py", '"Share of offers accepted."', '"Offers taken."')
    parity("apply", "--repo", applied, "--author", "carol")
    out = parity("history", VIEW, "--repo", applied).stdout
    with FeatureStore(applied) as store:
        hashes = [r.content_hash[:12] for r in store.history(VIEW)]
    rows = history_versions(out)
    assert [r[:4] for r in rows] == [
        ["1.0.0", "new", "create", "alice"],
        ["2.0.0", "major", "update", "bob"],  # a shorter ttl
        ["2.1.0", "minor", "update", "carol"],  # a longer ttl (and a description: patch)
    ]
    assert [r[-1] for r in rows] == hashes
    changes = [line.strip() for line in out.splitlines() if line.startswith("    ")]
    assert changes == [
        "note: applied with --allow-breaking; breaks feature_service:driver_activity",
        "ttl: 1 day → 2 hours",
        "ttl: 2 hours → 3 hours",
        'schema[conv_rate].description: "Share of offers accepted." → "Offers taken."',
    ]
    assert all(r[6] == "UTC" for r in rows)


def test_history_of_an_unknown_name(applied: Path):
    result = parity("history", "nothing", "--repo", applied, code=1)
    assert result.stderr.startswith("error: ") and "'nothing' not found" in result.stderr


# -- historical ---------------------------------------------------------------------------------


def expected(repo: Path, features, **kwargs) -> pa.Table:
    with FeatureStore(repo) as store:
        return store.get_historical_features(repo / ENTITIES_FILE, features, **kwargs).to_arrow()


def test_historical_to_parquet_matches_the_python_api(applied: Path, tmp_path: Path):
    out = tmp_path / "train" / "features.parquet"
    result = parity(
        "historical", "--repo", applied, "--entities", applied / ENTITIES_FILE,
        "--features", REFS, "--out", out,
    )  # fmt: skip
    written = pq.read_table(out)
    want = expected(applied, REFS.split(","))
    assert written.equals(want)
    assert written.column_names == [
        "driver_id", "event_timestamp", "trip_completed",
        "conv_rate", "avg_daily_trips", "driver_rating",
    ]  # fmt: skip
    entities = pq.read_table(applied / ENTITIES_FILE)
    assert written.num_rows == entities.num_rows
    unknown = written.filter(pc.equal(written["driver_id"], UNKNOWN_DRIVER))
    assert unknown.num_rows == 1 and unknown["conv_rate"].null_count == 1
    assert written["conv_rate"].null_count == 2, "the unknown driver and the row before the data"
    assert f"Wrote {entities.num_rows} rows (3 features) to {out}" in result.stdout
    assert "2 row(s) had no value for any feature" in result.stdout


def test_historical_to_csv_with_a_service(applied: Path, tmp_path: Path):
    out = tmp_path / "train.csv"
    parity(
        "historical", "--repo", applied, "-e", applied / ENTITIES_FILE,
        "--service", "driver_activity", "-o", out, "--full-feature-names",
    )  # fmt: skip
    got = pd.read_csv(out)
    want = expected(applied, "driver_activity", full_feature_names=True).to_pandas()
    assert list(got.columns) == list(want.columns)
    assert list(got.columns)[-3:] == [
        "driver_hourly_stats__conv_rate",
        "driver_hourly_stats__avg_daily_trips",
        "driver_rating__driver_rating",
    ]
    assert (pd.to_datetime(got["event_timestamp"], utc=True) == want["event_timestamp"]).all()
    got = got.drop(columns="event_timestamp")
    want = want.drop(columns="event_timestamp")
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert got["driver_rating__driver_rating"].isna().sum() == 2


def test_historical_takes_repeated_features_and_a_timestamp_column(applied: Path, tmp_path: Path):
    entities = pq.read_table(applied / ENTITIES_FILE).rename_columns(["driver_id", "ts", "label"])
    pq.write_table(entities, tmp_path / "e.parquet")
    out = tmp_path / "out.parquet"
    parity(
        "historical", "--repo", applied, "-e", tmp_path / "e.parquet", "--timestamp-column", "ts",
        "-f", f"{VIEW}:conv_rate", "-f", "driver_profile:*", "-o", out,
    )  # fmt: skip
    written = pq.read_table(out)
    assert written.column_names == [
        "driver_id",
        "ts",
        "label",
        "conv_rate",
        "lifetime_trips",
        "city",
    ]
    want = expected(applied, [f"{VIEW}:conv_rate", "driver_profile:*"])
    assert written.column("city").equals(want.column("city"))
    assert written.column("conv_rate").equals(want.column("conv_rate"))


def test_features_and_service_are_exclusive_and_one_is_required(applied: Path, tmp_path: Path):
    out = tmp_path / "x.parquet"
    base = ["historical", "--repo", applied, "-e", applied / ENTITIES_FILE, "-o", out]
    both = parity(*base, "--features", REFS, "--service", "driver_activity", code=2)
    assert "not both" in both.stderr
    neither = parity(*base, code=2)
    assert "--features" in neither.stderr and "--service" in neither.stderr
    assert not out.exists()


def test_historical_errors_name_what_is_wrong(applied: Path, tmp_path: Path):
    out = tmp_path / "x.parquet"
    base = ["historical", "--repo", applied, "-o", out]
    bad_ref = parity(*base, "-e", applied / ENTITIES_FILE, "-f", f"{VIEW}:nope", code=1)
    assert f"feature view '{VIEW}' has no feature 'nope'" in bad_ref.stderr
    missing = parity(*base, "-e", tmp_path / "none.parquet", "--service", "driver_activity", code=1)
    assert "none.parquet" in missing.stderr and "does not exist" in missing.stderr
    assert not out.exists()


# -- the installed command ----------------------------------------------------------------------


def test_the_console_script_runs_and_reports_errors_in_red(tmp_path: Path):
    assert PARITY.is_file(), f"{PARITY} is not installed"
    version = subprocess.run([PARITY, "version"], capture_output=True, text=True, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("parity 0.1.0")
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env |= {"FORCE_COLOR": "1", "TERM": "xterm-256color"}
    failed = subprocess.run(
        [PARITY, "plan", "--repo", tmp_path / "nowhere"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert "\x1b[1;31merror: feature repo folder" in failed.stderr
    usage = subprocess.run([PARITY, "plan", "--nope"], capture_output=True, text=True)
    assert usage.returncode == 2


def test_version_names_the_repo_project(applied: Path):
    out = parity("version", "--repo", applied).stdout
    assert out.splitlines()[1] == "project shop, registry data/registry.db"


def test_the_console_script_ends_at_once_with_all_it_printed(repo: Path):
    """The command exits without freeing its objects one by one (cli.app._leave): what it
    printed is all there, in order, and exit handlers still ran."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('exit handler ran', file=sys.stderr))\n"
        "sys.argv = ['parity', 'plan', '--repo', sys.argv[1]]\n"
        "from parity.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(repo)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("Plan: ") for line in lines)
    assert lines[-1].endswith("`parity apply` creates it.")
    assert done.stderr.strip().endswith("exit handler ran")
