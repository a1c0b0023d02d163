"""A Feast repo on disk: its folder, ``feature_store.yaml``, its Python files, its functions.

Shared by both readers, so they find the same files and carry over the same function text.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from parity.adopt.model import FeastFunction, FeastImportError

__all__ = ["FEAST_CONFIG", "extract_function", "find_repo", "read_config", "repo_files"]

FEAST_CONFIG = "feature_store.yaml"
_IGNORED = (".git", ".venv", "**/.ipynb_checkpoints", "**/.pytest_cache", "**/__pycache__")


def find_repo(path: str | Path) -> Path:
    """The Feast repo folder at ``path`` (a folder holding ``feature_store.yaml``, or that file
    itself); ``FeastImportError`` saying what is there instead."""
    given = Path(path)
    if given.is_file() and given.name == FEAST_CONFIG:
        return given.parent.resolve()
    if not given.exists():
        raise FeastImportError(f"{given}: no such folder")
    if not given.is_dir():
        raise FeastImportError(f"{given}: not a Feast repo (give the folder with {FEAST_CONFIG})")
    if (given / FEAST_CONFIG).is_file():
        return given.resolve()
    below = sorted(p.parent for p in given.glob(f"*/{FEAST_CONFIG}"))
    hint = f"; found one in {below[0]}: give that folder" if below else ""
    raise FeastImportError(f"{given}: not a Feast repo: there is no {FEAST_CONFIG} in it{hint}")


def read_config(root: Path) -> dict[str, Any]:
    """``feature_store.yaml`` as a mapping, with a ``project``."""
    file = root / FEAST_CONFIG
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise FeastImportError(f"{file}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        raise FeastImportError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise FeastImportError(f"{file}: expected a mapping of keys, got {type(data).__name__}")
    if not isinstance(data.get("project"), str) or not data["project"]:
        raise FeastImportError(f"{file}: project: required (the Feast project's name)")
    return data


def repo_files(root: Path) -> list[Path]:
    """The Python files Feast reads: every ``*.py`` below ``root`` except ``__init__.py`` and
    what ``.feastignore`` (and Feast's own list) leaves out, sorted."""
    patterns = list(_IGNORED) + _feastignore(root)
    ignored: set[Path] = set()
    for pattern in patterns:
        for matched in root.glob(pattern):
            if matched.is_file():
                ignored.add(matched.resolve())
            else:
                ignored |= {p.resolve() for p in matched.glob("**/*.py") if p.is_file()}
    files = {p.resolve() for p in root.glob("**/*.py") if p.is_file() and p.name != "__init__.py"}
    return sorted(files - ignored)


def _feastignore(root: Path) -> list[str]:
    file = root / ".feastignore"
    if not file.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in file.read_text().splitlines())
    return [line for line in lines if line]


def extract_function(file: Path, name: str, root: Path) -> FeastFunction:
    """The module-level ``def name`` of ``file`` as written (decorators left out) and the
    file's module-level imports other than Feast's; ``source=None`` when it is not there."""
    rel = file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)
    try:
        text = file.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError):
        return FeastFunction(name=name, source=None, file=rel)
    lines = text.splitlines()
    source = None
    helpers: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            end = node.end_lineno or node.lineno
            source = "\n".join(lines[node.lineno - 1 : end])
            helpers = _helpers(node, tree)
    return FeastFunction(
        name=name,
        source=source,
        imports=module_imports(tree, lines),
        file=rel,
        helpers=helpers,
    )


def _helpers(fn: ast.FunctionDef, tree: ast.Module) -> list[str]:
    """Names the function reads that its module defines (functions, classes, constants)."""
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                defined |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    body = [n for stmt in fn.body for n in ast.walk(stmt)]  # not the decorators
    local = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
    local |= {n.id for n in body if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    used = {n.id for n in body if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return sorted((used & defined) - local - {fn.name})


def module_imports(tree: ast.Module, lines: list[str]) -> list[str]:
    """The module-level import statements, as written, except those importing Feast."""
    out = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
            if node.level:
                continue  # a repo-relative import; the Parity repo does not have that module
        else:
            continue
        if any(n == "feast" or n.startswith("feast.") for n in names):
            continue
        out.append("\n".join(lines[node.lineno - 1 : node.end_lineno or node.lineno]))
    return out
