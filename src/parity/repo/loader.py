"""Read every definition in a feature repo folder, remembering which file each came from.

A feature repo is a folder with ``parity.yaml`` (the config, not read here) and definition
files, ``*.py``, ``*.yaml`` and ``*.yml``, anywhere below it. Skipped: hidden files and
folders, ``data/``, ``venv/``, ``__pycache__/``, ``node_modules/``, and any folder holding its
own ``parity.yaml`` (another repo).

Python files are run, in path order, as modules with unique names (``_parity_repo_3_defs_x``)
so a repo file named ``features.py`` never meets another repo's, or an installed module. While
they run the repo folder leads ``sys.path``, so files import each other by their usual names
(``from entities import driver``); each file runs once however it is reached, and after the
load ``sys.path`` and ``sys.modules`` are as before. Every module-level ``Definition`` is
collected, once however many modules hold it, with the origin of the file that made it; so
are sources and entities passed as objects to a view. A failure while running a file is a
``DefinitionError`` naming the file, the line and the original error.

YAML files are read by ``yaml_form``. After every file is read, entity references in YAML
views are resolved against all the repo's entities (a join key names its entity).

::

    contents = load_repo("feature_repo")
    contents.objects          # entities, sources, views, services; each kind sorted by name
    contents.origin(view)     # "features.py" or "defs/driver.yaml#2"
    contents.duplicates()     # ["entity 'driver' is defined 2 times: a.py and b.yaml#1"]
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import itertools
import keyword
import os
import re
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from parity import cache
from parity.definitions import KINDS
from parity.definitions.base import Definition
from parity.definitions.entity import Entity
from parity.definitions.feature_view import FeatureView
from parity.definitions.on_demand import OnDemandFeatureView
from parity.definitions.source import DataSource
from parity.errors import DefinitionError, ParityError
from parity.repo.yaml_form import read_yaml_file, resolve_entity_refs

__all__ = [
    "CONFIG_FILE",
    "RepoContents",
    "RepoObject",
    "find_definition_files",
    "load_module",
    "load_repo",
]

CONFIG_FILE = "parity.yaml"
SKIPPED_FOLDERS = frozenset({"data", ".venv", "venv", "__pycache__", "node_modules"})
PYTHON_SUFFIXES = frozenset({".py"})
YAML_SUFFIXES = frozenset({".yaml", ".yml"})

_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}
# sys.path, sys.modules and sys.meta_path are process-wide: one load at a time.
_LOAD_LOCK = threading.RLock()
_LOAD_COUNT = itertools.count(1)


@dataclass(frozen=True)
class RepoObject:
    """One definition found in a repo and where: ``"features.py"`` or ``"defs/x.yaml#2"``."""

    definition: Definition
    origin: str


@dataclass(frozen=True)
class RepoContents:
    """Every definition read from a repo, each with its origin, in KINDS order then by name."""

    root: Path
    entries: tuple[RepoObject, ...]
    files: tuple[str, ...] = field(default=())
    """Definition files read, relative to ``root``, in the order they were read."""

    @property
    def objects(self) -> list[Definition]:
        return [e.definition for e in self.entries]

    def origin(self, obj: Definition) -> str:
        """Where ``obj`` was defined: a relative file path, with ``#n`` for a YAML document."""
        for e in self.entries:
            if e.definition is obj:
                return e.origin
        for e in self.entries:
            if e.definition == obj:
                return e.origin
        raise KeyError(f"{obj} was not read from the repo at {self.root}")

    def duplicates(self) -> list[str]:
        """One message per kind and name defined by more than one object, naming each origin."""
        groups: dict[tuple[str, str], list[RepoObject]] = {}
        for e in self.entries:
            groups.setdefault((e.definition.kind, e.definition.name), []).append(e)
        messages = []
        for (kind, name), group in groups.items():
            if len(group) < 2:
                continue
            places = [e.origin for e in group]
            where = ", ".join(places[:-1]) + " and " + places[-1]
            same = len({e.definition.content_hash() for e in group}) == 1
            note = "identical; keep one" if same else "they differ"
            messages.append(f"{kind} {name!r} is defined {len(group)} times: {where} ({note})")
        return messages


def load_repo(repo_path: str | Path) -> RepoContents:
    """Read every definition file under ``repo_path``; see the module docstring for the rules.

    Raises ``DefinitionError`` naming the file (and line, or YAML document) of the first file
    that cannot be read. Duplicate names are not an error here: see ``duplicates()``.
    """
    root = Path(repo_path).resolve()
    if not root.is_dir():
        raise DefinitionError(f"feature repo {str(repo_path)!r} is not a folder")
    with cache.bulk_load():
        return _load(root)


def _load(root: Path) -> RepoContents:
    files = find_definition_files(root)
    found: list[RepoObject] = []
    seen: set[int] = set()
    from_yaml: set[int] = set()

    def add(obj: Definition, origin: str) -> None:
        if id(obj) not in seen:
            seen.add(id(obj))
            found.append(RepoObject(obj, origin))

    python = [f for f in files if f.suffix in PYTHON_SUFFIXES]
    with _LOAD_LOCK, _RepoImporter(root) as importer:
        for path in python:
            importer.load(path)
        for module_path, module in importer.completed:
            if module_path not in python:
                continue  # a helper outside the scanned files; its objects count where imported
            origin = _relative(root, module_path)
            for value in list(vars(module).values()):
                if isinstance(value, Definition):
                    add(value, origin)

    for path in files:
        if path.suffix in YAML_SUFFIXES:
            rel = _relative(root, path)
            for item in read_yaml_file(path, rel):
                add(item.definition, f"{rel}#{item.document}")
                from_yaml.add(id(item.definition))

    # Objects handed to a view (an inline source, entity objects) come from the view's file.
    for entry in list(found):
        obj = entry.definition
        if isinstance(obj, OnDemandFeatureView):
            for view in obj.input_objects:
                add(view, entry.origin)
        if isinstance(obj, FeatureView):
            if isinstance(obj.source, DataSource):
                add(obj.source, entry.origin)
            for ent in obj.entities:
                if isinstance(ent, Entity):
                    add(ent, entry.origin)

    entities = [e.definition for e in found if isinstance(e.definition, Entity)]
    entity_names = {e.name for e in entities}
    resolved = []
    for entry in found:
        obj = entry.definition
        if (
            id(obj) in from_yaml
            and isinstance(obj, FeatureView)
            and not all(isinstance(r, str) and r in entity_names for r in obj.entities)
        ):  # a reference that is not an entity's name may be a join key
            try:
                obj = resolve_entity_refs(obj, entities)
            except DefinitionError as exc:
                raise DefinitionError(f"{entry.origin}: {exc}") from None
        if isinstance(obj, OnDemandFeatureView):  # its function is recorded by repo file
            obj = obj.located_in(root)
        resolved.append(RepoObject(obj, entry.origin))

    resolved.sort(key=_sort_key)
    return RepoContents(root, tuple(resolved), tuple(_relative(root, f) for f in files))


def load_module(root: str | Path, path: str | Path) -> ModuleType:
    """Run one repo file as ``load_repo`` does (the repo folder leads ``sys.path``) and return
    its module; ``sys.path`` and ``sys.modules`` are as before afterwards."""
    root = Path(root).resolve()
    path = Path(path).resolve()
    with _LOAD_LOCK, _RepoImporter(root) as importer:
        importer.load(path)
        return importer._by_path[path]


def find_definition_files(root: str | Path) -> list[Path]:
    """Definition files under ``root``, sorted by relative path, skipping what the rules skip."""
    root = Path(root).resolve()
    out: list[Path] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIPPED_FOLDERS
            and not (here / d / CONFIG_FILE).exists()
        )
        for name in sorted(names):
            if name.startswith("."):
                continue
            if here == root and name == CONFIG_FILE:
                continue
            path = here / name
            if path.suffix in PYTHON_SUFFIXES | YAML_SUFFIXES:
                out.append(path)
    return sorted(out, key=lambda p: p.relative_to(root).parts)


def _sort_key(entry: RepoObject) -> tuple[int, str, str, str]:
    d = entry.definition
    return (_KIND_ORDER.get(d.kind, len(_KIND_ORDER)), d.kind, d.name, entry.origin)


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


class _RepoImporter:
    """Runs repo files as modules and records the order in which each finished running.

    A module finishes after every repo module it imports, so the first finished module that
    holds an object is the one that made it: that is its origin.
    """

    def __init__(self, root: Path):
        self.root = root
        self.prefix = f"_parity_repo_{next(_LOAD_COUNT)}_"
        self.completed: list[tuple[Path, ModuleType]] = []
        self._by_path: dict[Path, ModuleType] = {}
        self._finder = _RepoFinder(self)

    # Other threads import while a repo loads (a server resolving an on-demand function
    # while a request imports a module on first use): sys.path and sys.meta_path are
    # replaced, never changed in place, since the import system walks them as lists and an
    # entry removed under its feet would skip a finder ("No module named ...").
    def __enter__(self) -> _RepoImporter:
        self._saved_path = list(sys.path)
        self._saved_modules = set(sys.modules)
        sys.path = [str(self.root), *self._saved_path]
        # Just before the standard path finder: builtin and frozen modules keep precedence.
        finders = list(sys.meta_path)
        at = next((i for i, f in enumerate(finders) if f is importlib.machinery.PathFinder), None)
        finders.insert(len(finders) if at is None else at, self._finder)
        sys.meta_path = finders
        importlib.invalidate_caches()  # files may be newer than the path finder's cache
        return self

    def __exit__(self, *exc: object) -> None:
        sys.path = self._saved_path
        sys.meta_path = [f for f in list(sys.meta_path) if f is not self._finder]
        for name in [n for n in list(sys.modules) if n not in self._saved_modules]:
            module = sys.modules.get(name)
            if module is not None and self.inside(module):
                sys.modules.pop(name, None)

    def inside(self, module: Any) -> bool:
        places = [getattr(module, "__file__", None), *list(getattr(module, "__path__", ()))]
        return any(p and _is_within(Path(p), self.root) for p in places)

    def finished(self, module: ModuleType) -> None:
        path = Path(module.__file__ or "").resolve()
        self._by_path.setdefault(path, module)
        self.completed.append((path, module))

    def load(self, path: Path) -> None:
        """Run one repo file, unless another repo file already imported it."""
        if path in self._by_path:
            return
        rel = path.relative_to(self.root)
        is_package = path.name == "__init__.py"
        unique = self.prefix + re.sub(r"\W", "_", rel.with_suffix("").as_posix())
        spec = importlib.util.spec_from_file_location(
            unique, path, submodule_search_locations=[str(path.parent)] if is_package else None
        )
        if spec is None or spec.loader is None:
            raise DefinitionError(f"{rel.as_posix()}: cannot be imported as a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        # Also under its usual name, so `import entities` in another file reuses this module.
        usual = _usual_name(rel)
        if usual and usual not in sys.modules:
            sys.modules[usual] = module
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            raise DefinitionError(self.describe(path, exc)) from exc
        self.adopt_others(but=module)
        self.finished(module)

    def adopt_others(self, but: ModuleType) -> None:
        """Record repo modules run by an import hook other than ours (pytest's, for one)."""
        for name in set(sys.modules) - self._saved_modules:
            module = sys.modules.get(name)
            file = getattr(module, "__file__", None)
            if module is None or module is but or not file:
                continue
            path = Path(file).resolve()
            if path not in self._by_path and _is_within(path, self.root):
                self.finished(module)

    def describe(self, path: Path, exc: BaseException) -> str:
        """``features.py, line 7: NameError: ...`` for an error raised while running a file."""
        loaded = _relative(self.root, path)
        where: tuple[str, int | None] | None = None
        if isinstance(exc, SyntaxError) and exc.filename:
            where = (exc.filename, exc.lineno)
        else:
            for frame in traceback.extract_tb(exc.__traceback__):
                if _is_within(Path(frame.filename), self.root):
                    where = (frame.filename, frame.lineno)
        if isinstance(exc, SyntaxError):
            what = f"{type(exc).__name__}: {exc.msg}"
        elif isinstance(exc, ParityError):
            what = str(exc)
        else:
            what = f"{type(exc).__name__}: {exc}"
        if where is None:
            return f"{loaded}: {what}"
        file = Path(where[0]).resolve()
        line = f", line {where[1]}" if where[1] else ""
        if file == path:
            return f"{loaded}{line}: {what}"
        shown = _relative(self.root, file) if _is_within(file, self.root) else str(file)
        return f"{loaded}: in {shown}{line}: {what}"


class _RepoFinder:
    """Finds repo files imported by their usual names and records when they finish running."""

    def __init__(self, importer: _RepoImporter):
        self.importer = importer

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not spec.has_location or not spec.origin:
            return None
        if not _is_within(Path(spec.origin), self.importer.root):
            return None
        spec.loader = _RecordingLoader(spec.loader, self.importer)  # type: ignore[assignment]
        return spec


class _RecordingLoader:
    """Wraps a file loader; tells the importer when a module has finished running."""

    def __init__(self, inner: Any, importer: _RepoImporter):
        self._inner = inner
        self._importer = importer

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._inner.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        self._importer.finished(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader...
        return getattr(self._inner, name)


def _usual_name(rel: Path) -> str | None:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
        return None
    return ".".join(parts)


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    return True
