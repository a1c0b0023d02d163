"""`make demo`: examples/demo.py runs end to end, and fails when a result is off."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
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
def test_the_demo_runs_end_to_end(tmp_path: Path):
    repo = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, str(DEMO), "--dir", str(repo)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "23 entity rows in, 23 rows back; 3 had no match (expected 3)." in done.stdout
    assert "ttl: 1d -> 2h" in done.stdout
    assert done.stdout.rstrip().endswith(f"Demo passed. The repo was {repo}.")
    assert (repo / "training.parquet").is_file()
    assert "ttl=timedelta(hours=2)" in (repo / "features.py").read_text()


def test_the_demo_fails_when_the_row_counts_are_off(tmp_path: Path, capsys):
    demo = load_demo()
    rows, misses = demo.entity_rows()
    demo.entity_rows = lambda: (rows, misses + 1)
    assert demo.demo(tmp_path / "demo") == 1
    assert "Demo failed: 4 rows have no match" in capsys.readouterr().out


def test_the_demo_fails_on_a_folder_in_use(tmp_path: Path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert load_demo().demo(tmp_path) == 1
    assert "not an empty folder" in capsys.readouterr().out
