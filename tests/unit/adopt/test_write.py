"""The new repo is written all at once, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.adopt import FeastImportError
from parity.adopt import write as write_mod
from parity.adopt.convert import Converted
from parity.adopt.model import Problem
from parity.adopt.report import markdown

CONVERTED = Converted(
    config={"project": "p"},
    definitions={"entities": [{"name": "e", "join_keys": ["k"]}]},
    on_demand_module=None,
    problems=[Problem("source", "bq", "BigQuery tables: no"), Problem("x", "y", "z", False)],
)


def test_a_repo_is_written_and_no_temporary_folder_stays(tmp_path: Path):
    out = tmp_path / "out"
    files = write_mod.write_repo(CONVERTED, out, "/feast")
    assert files == [".gitignore", "IMPORT_REPORT.md", "features.yaml", "parity.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "data").is_dir()
    assert "project: p" in (out / "parity.yaml").read_text()


def test_a_failure_part_way_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    real = write_mod.files_of

    def with_a_bad_name(converted: Converted, source: str) -> dict[str, str]:
        return {**real(converted, source), "no/such/folder.txt": "x"}  # the last write fails

    monkeypatch.setattr(write_mod, "files_of", with_a_bad_name)
    with pytest.raises(FeastImportError, match="cannot write the repo"):
        write_mod.write_repo(CONVERTED, tmp_path / "out", "/feast")
    assert list(tmp_path.iterdir()) == []


def test_a_used_output_is_refused(tmp_path: Path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    (tmp_path / "file").write_text("a file")
    for name, message in (
        ("full", "the folder exists and is not empty"),
        ("file", "exists and is not a folder"),
        ("missing/out", "its parent folder .* does not exist"),
    ):
        with pytest.raises(FeastImportError, match=message):
            write_mod.write_repo(CONVERTED, tmp_path / name, "/feast")
    assert (tmp_path / "full" / "x").read_text() == "mine"


def test_the_report_lists_left_out_objects_first():
    text = markdown(CONVERTED.problems, "/feast", CONVERTED.counts)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == [
        "| kind | name | status | reason |",
        "| source | bq | not converted | BigQuery tables: no |",
        "| x | y | partly converted | z |",
    ]
    assert "Converted: 1 entities, 0 on demand views." in text
