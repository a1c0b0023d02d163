"""YAML files read through the caches (``read_yaml_file``) give exactly what parsing the
whole text gives: the same objects, document numbers and errors, whatever changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from parity.errors import DefinitionError
from parity.repo import yaml_form
from parity.repo.yaml_form import parse_yaml, read_yaml_file

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every file takes the per-document path; each read starts without the process memo."""
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(yaml_form, "CACHED_BYTES", 0)

    def read(path: Path) -> list:
        yaml_form._PARSED.clear()
        return read_yaml_file(path, "defs/x.yaml")

    return read


def entity_doc(name: str, keys: list[str]) -> str:
    return yaml.safe_dump({"kind": "entity", "name": name, "join_keys": keys}, sort_keys=False)


@st.composite
def documents(draw: st.DrawFn) -> list[str]:
    """Documents as a person writes them: entities, with comments and empty documents."""
    docs = []
    for _ in range(draw(st.integers(1, 8))):
        shape = draw(st.sampled_from(["entity", "entity", "entity", "comment", "empty"]))
        if shape == "entity":
            keys = draw(st.lists(names, min_size=1, max_size=2, unique=True))
            docs.append(entity_doc(draw(names), keys))
        elif shape == "comment":
            docs.append("# just a note\n")
        else:
            docs.append("")
    return docs


def join(docs: list[str], lead: str) -> str:
    return lead + "".join(f"---\n{d}" for d in docs)


def same(found: list, expected: list) -> bool:
    return [(o.definition, o.document) for o in found] == [
        (o.definition, o.document) for o in expected
    ]


@settings(max_examples=60)
@given(
    before=documents(),
    after=documents(),
    lead=st.sampled_from(["", "# a header comment\n", "\n"]),
    few=st.integers(0, 4),
)
def test_any_edit_reads_as_the_whole_text_parses(
    tmp_path_factory, before, after, lead, few
) -> None:
    """``few``: how many changed documents are parsed one by one (more: the whole file is
    parsed and its documents kept), so both ways are taken."""
    folder = tmp_path_factory.mktemp("yaml")
    mp = pytest.MonkeyPatch()
    mp.setenv("PARITY_CACHE_DIR", str(folder / "cache"))
    mp.setattr(yaml_form, "CACHED_BYTES", 0)
    mp.setattr(yaml_form, "_FEW_MISSING", few)
    try:
        path = folder / "x.yaml"
        for docs in (before, after, before):  # cold, an edit, and back
            text = join(docs, lead)
            path.write_text(text)
            yaml_form._PARSED.clear()
            assert same(read_yaml_file(path, "defs/x.yaml"), parse_yaml(text, "defs/x.yaml"))
    finally:
        mp.undo()


def test_one_edited_document_of_many_is_the_only_one_parsed(fresh, tmp_path, monkeypatch):
    path = tmp_path / "views.yaml"
    docs = [entity_doc(f"e{i}", [f"k{i}"]) for i in range(40)]
    path.write_text(join(docs, ""))
    assert [o.definition.name for o in fresh(path)] == [f"e{i}" for i in range(40)]
    docs[17] = entity_doc("renamed", ["k17"])
    path.write_text(join(docs, ""))
    parsed: list[str] = []
    real = yaml_form._parse_documents

    def counting(text, display, start=1):
        parsed.append(text)
        return real(text, display, start)

    monkeypatch.setattr(yaml_form, "_parse_documents", counting)
    found = fresh(path)
    assert [o.definition.name for o in found][17] == "renamed"
    assert [o.document for o in found] == list(range(1, 41))
    assert parsed == [f"---\n{docs[17]}"]  # one document parsed, the rest from the cache


def test_an_error_in_an_edited_document_is_the_whole_files_error(fresh, tmp_path):
    path = tmp_path / "x.yaml"
    docs = [entity_doc(f"e{i}", [f"k{i}"]) for i in range(10)]
    path.write_text(join(docs, ""))
    fresh(path)
    for broken in ("kind: entity\nname: [unclosed\n", "kind: entity\nname: a\nname: b\n"):
        docs[6] = broken
        text = join(docs, "")
        path.write_text(text)
        with pytest.raises(DefinitionError) as cached:
            fresh(path)
        with pytest.raises(DefinitionError) as whole:
            parse_yaml(text, "defs/x.yaml")
        assert str(cached.value) == str(whole.value)
        assert "line" in str(cached.value)  # a line of the file, not of the document


def test_files_with_directives_or_document_ends_are_parsed_whole(fresh, tmp_path):
    path = tmp_path / "x.yaml"
    for text in (
        "%YAML 1.1\n---\n" + entity_doc("a", ["k"]),
        entity_doc("a", ["k"]) + "...\n---\n" + entity_doc("b", ["j"]),
    ):
        path.write_text(text)
        assert same(fresh(path), parse_yaml(text, "defs/x.yaml"))
