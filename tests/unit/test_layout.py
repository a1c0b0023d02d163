"""The architecture holds: no import circle in ``src/parity``, the core never imports the
faces, ``store.py`` and ``config.py`` name no backend, the facade stays thin, and
``import parity`` / ``parity --help`` load nothing they do not use."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "parity"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py") if "migrations" not in p.parts}


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str) -> set[str]:
    """Every parity module ``name`` imports (module level or inside functions), resolved to
    the module itself (``from parity.x import y`` is ``parity.x.y`` when that is a module)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1]
                    + ([base] if base else [])
                )
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        out.update(t for t in targets if t in MODULES and t != name)
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def test_no_import_circle_anywhere() -> None:
    try:
        graphlib.TopologicalSorter(GRAPH).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")


FACES = ("parity.server", "parity.cli")


def test_the_core_never_imports_the_faces_and_the_server_not_the_cli() -> None:
    for name, deps in GRAPH.items():
        if name.startswith(FACES):
            continue
        assert not [d for d in deps if d.startswith(FACES)], name
    for name, deps in GRAPH.items():
        if name.startswith("parity.server"):
            assert not [d for d in deps if d.startswith("parity.cli")], name


def test_definitions_are_pure_models() -> None:
    for name, deps in GRAPH.items():
        if name.startswith("parity.definitions"):
            allowed = ("parity.definitions", "parity.errors", "parity.types")
            assert all(d.startswith(allowed) for d in deps), (name, deps)


def _code_words(tree: ast.AST) -> list[str]:
    """Names, attributes, imports and string values of a module's code, docstrings left out."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                words.append(node.value)
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, ast.alias):
            words.append(node.name)
        elif isinstance(node, ast.ImportFrom):
            words.append(node.module or "")
    return words


@pytest.mark.parametrize("module", ["store.py", "config.py"])
def test_no_backend_is_named_in_the_facade_or_the_config(module: str) -> None:
    words = " ".join(_code_words(ast.parse((SRC / module).read_text()))).lower()
    for backend in ("sqlite", "redis", "duckdb", "spark", "postgres"):
        assert backend not in words, f"{module} names {backend}"


def test_the_facade_is_thin() -> None:
    tree = ast.parse((SRC / "store.py").read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "FeatureStore"]
    for fn in cls.body:
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        body = fn.body[1:] if ast.get_docstring(fn) else fn.body
        lines = sum(n.end_lineno - n.lineno + 1 for n in body)  # type: ignore[operator]
        assert lines <= 15, f"FeatureStore.{fn.name} has {lines} lines"
    source = (SRC / "store.py").read_text()
    for word in ("ThreadPool", "Lock(", "OrderedDict", "lru_cache", "_plans"):
        assert word not in source, word


HEAVY = (
    "pyarrow",
    "pandas",
    "numpy",
    "polars",
    "duckdb",
    "redis",
    "hiredis",
    "sqlalchemy",
    "psycopg",
    "uvicorn",
    "orjson",
    "prometheus_client",
    "msgpack",
    "pydantic",
    "yaml",
    "parity.store",
    "parity.server",
    "parity.online",
    "parity.offline",
    "parity.registry",
    "parity.query",
    "parity.ingest",
    "parity.definitions",
    "parity.config",
)


def _loaded(args: list[str]) -> set[str]:
    """The modules a fresh interpreter imports running ``args`` (``-X importtime``)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, check=True
    )
    return {
        line.split("|")[-1].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize(
    "args", [["-c", "import parity"], ["-m", "parity.cli", "--help"]], ids=["import", "help"]
)
def test_startup_loads_no_store_engine_server_or_dataframe_library(args: list[str]) -> None:
    loaded = _loaded(args)
    assert "parity" in loaded
    heavy = sorted(
        m
        for m in loaded
        if m.startswith(HEAVY) and m.split(".")[0] in {h.split(".")[0] for h in HEAVY}
    )
    heavy = [m for m in heavy if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert not heavy, f"{' '.join(args)} imports {heavy}"
