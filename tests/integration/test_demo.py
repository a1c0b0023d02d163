"""`make demo`: examples/demo.py runs end to end, and fails when a result is off."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("parity_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_demo_runs_end_to_end_and_keeps_its_repo_with_keep(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, str(DEMO), "--keep"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # where --keep makes its folder
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, f"stdout:\n{out}\nstderr:\n{done.stderr}"
    for number in range(1, 10):
        assert f"Step {number} of 9: " in out
    assert "360 rows of driver statistics: 5 drivers" in out
    assert "Plan: 6 to create, 0 to change, 0 to delete." in out
    assert "23 entity rows in, 23 rows back; 3 had no match (expected 3)." in out
    assert "ttl: 1d -> 2h" in out
    assert "15 values present for 5 drivers, 'missing' for the unknown driver 9999" in out
    assert "3 features profiled over 360 rows; 3 rules pass; driver_rating lags" in out
    kept = re.search(r"The repo is kept at (\S+)\. Try:", out)
    assert kept, out
    repo = Path(kept.group(1))
    assert repo.parent.parent == tmp_path
    assert (repo / "training.parquet").is_file()
    assert "ttl=timedelta(hours=2)" in (repo / "features.py").read_text()
    assert f"source {Path(sys.executable).parent / 'activate'}" in out
    assert f"cd {repo}" in out


def test_the_demo_fails_when_the_row_counts_are_off_and_removes_its_repo(
    tmp_path: Path, capsys, monkeypatch
):
    demo = load_demo()
    real = demo.entity_rows

    def one_miss_too_many(start):
        rows, misses = real(start)
        return rows, misses + 1

    monkeypatch.setattr(demo, "entity_rows", one_miss_too_many)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert demo.main([]) == 1
    assert "Demo failed: 4 rows have no match" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == [], "without --keep the demo's folder is removed"


def test_the_demo_fails_on_a_folder_in_use(tmp_path: Path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert load_demo().main(["--dir", str(tmp_path)]) == 1
    assert "not an empty folder" in capsys.readouterr().out
