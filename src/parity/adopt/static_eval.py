"""Evaluate a Feast repo's Python without running it: literals, names, Feast calls.

Each repo file is parsed with ``ast``. Module-level assignments and decorated functions are
evaluated with a small interpreter that knows literals, containers, names bound earlier (in
the file or imported from another repo file), ``timedelta(...)``, Feast's types and value
types, ``view[["f1", "f2"]]`` and calls of Feast's classes, which become ``Call`` values.
Anything else (a call of a helper, arithmetic on names, a loop) becomes ``Opaque`` with the
code that made it, so the reader can say exactly what it could not read.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "Call",
    "FeastSymbol",
    "ModuleValues",
    "Opaque",
    "Projection",
    "StaticRepo",
    "function_name",
    "type_text",
    "value_type_name",
]


@dataclass(frozen=True)
class FeastSymbol:
    """A name imported from Feast (``Entity``, ``Float32``, ``ValueType``), by its own name."""

    name: str


@dataclass(eq=False)
class Call:
    """A call of a Feast class or decorator: ``FileSource(path=..., ...)``."""

    callee: str
    args: list[Any]
    kwargs: dict[str, Any]
    file: Path
    line: int
    function: str | None = None
    """For a decorated function: the function's name."""

    def get(self, key: str, default: Any = None) -> Any:
        return self.kwargs.get(key, default)


@dataclass(frozen=True)
class Opaque:
    """A value the static reader cannot know; ``code`` is the expression, as written."""

    code: str


@dataclass(frozen=True)
class Projection:
    """``view[["f1", "f2"]]``."""

    view: Any
    features: tuple[str, ...]


@dataclass
class ModuleValues:
    """One file's module-level names, and every Feast call made at its top level."""

    file: Path
    names: dict[str, Any] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)


_TYPE_NAMES = {
    "Invalid", "Bytes", "PdfBytes", "ImageBytes", "String", "Bool", "Int32", "Int64",
    "Float32", "Float64", "UnixTimestamp", "Map", "Json", "Uuid", "TimeUuid", "Decimal",
    "ScalarMap", "ZonedTimestamp",
}  # fmt: skip


class StaticRepo:
    """The repo's files, each evaluated once, imports between them followed."""

    def __init__(self, root: Path):
        self.root = root
        self.modules: dict[Path, ModuleValues] = {}
        self._loading: set[Path] = set()

    def load(self, path: Path) -> ModuleValues:
        path = path.resolve()
        if path in self.modules:
            return self.modules[path]
        values = ModuleValues(file=path)
        if path in self._loading:
            return values  # an import cycle: names bound so far are all there is
        self._loading.add(path)
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text, filename=str(path))
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            from parity.adopt.model import FeastImportError

            rel = path.relative_to(self.root) if path.is_relative_to(self.root) else path
            raise FeastImportError(f"{rel}: cannot be parsed: {exc}") from None
        _Evaluator(self, values, text).module(tree)
        self._loading.discard(path)
        self.modules[path] = values
        return values

    def module_file(self, module: str, level: int, here: Path) -> Path | None:
        """The repo file that ``import module`` names, or None when it is not a repo file."""
        base = here.parent if level else self.root
        for _ in range(max(level - 1, 0)):
            base = base.parent
        parts = [p for p in module.split(".") if p]
        # Feast imports repo files by paths from the repo folder (its working folder).
        for start in [base] if level else [self.root, here.parent]:
            candidate = start.joinpath(*parts)
            for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
                if parts and path.is_file():
                    return path.resolve()
        return None


class _Evaluator:
    def __init__(self, repo: StaticRepo, values: ModuleValues, text: str):
        self.repo = repo
        self.values = values
        self.text = text
        self.timedelta_names: set[str] = set()
        self.datetime_modules: set[str] = set()
        self.feast_modules: set[str] = set()

    # -- statements ----------------------------------------------------------------------

    def module(self, tree: ast.Module) -> None:
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.imports(node)
            elif isinstance(node, ast.Assign):
                value = self.eval(node.value)
                for target in node.targets:
                    self.bind(target, value)
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                self.bind(node.target, self.eval(node.value))
            elif isinstance(node, ast.FunctionDef):
                self.function(node)
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                self.eval(node.value)  # a bare Feast call; nothing binds it, Feast skips it too

    def bind(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.values.names[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            items = value if isinstance(value, list | tuple) else None
            for i, t in enumerate(target.elts):
                self.bind(t, items[i] if items and i < len(items) else Opaque(self.code(target)))

    def imports(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                if alias.name == "feast" or alias.name.startswith("feast."):
                    self.feast_modules.add(local if alias.asname else "feast")
                elif alias.name == "datetime":
                    self.datetime_modules.add(local)
            return
        module = node.module or ""
        if node.level == 0 and (module == "feast" or module.startswith("feast.")):
            for alias in node.names:
                self.values.names[alias.asname or alias.name] = FeastSymbol(alias.name)
            return
        if node.level == 0 and module == "datetime":
            for alias in node.names:
                if alias.name == "timedelta":
                    self.timedelta_names.add(alias.asname or alias.name)
            return
        path = self.repo.module_file(module, node.level, self.values.file)
        if path is None:
            return
        other = self.repo.load(path)
        for alias in node.names:
            if alias.name == "*":
                self.values.names.update(other.names)
            elif alias.name in other.names:
                self.values.names[alias.asname or alias.name] = other.names[alias.name]

    def function(self, node: ast.FunctionDef) -> None:
        made = None
        for deco in node.decorator_list:
            if isinstance(deco, ast.Call):
                callee = self.symbol(deco.func)
                if callee is not None:
                    made = self.call(deco, callee)
                    made.function = node.name
                    made.line = node.lineno
        self.values.names[node.name] = made if made is not None else _Function(node.name)

    # -- expressions ---------------------------------------------------------------------

    def code(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def symbol(self, node: ast.expr) -> str | None:
        """The Feast name an expression refers to (``Entity``, ``feast.Entity``), or None."""
        if isinstance(node, ast.Name):
            value = self.values.names.get(node.id)
            return value.name if isinstance(value, FeastSymbol) else None
        if isinstance(node, ast.Attribute):
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value  # type: ignore[assignment]
            if isinstance(root, ast.Name) and root.id in self.feast_modules:
                return node.attr
        return None

    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.eval(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            out = {}
            for k, v in zip(node.keys, node.values, strict=True):
                if k is None:
                    return Opaque(self.code(node))
                out[self.eval(k)] = self.eval(v)
            return out
        if isinstance(node, ast.Name):
            if node.id in self.values.names:
                return self.values.names[node.id]
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            return Opaque(node.id)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Call):
            return self.call_expr(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self.eval(node.operand)
            if isinstance(inner, int | float) and not isinstance(inner, bool):
                return -inner
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.Constant):
                    parts.append(str(v.value))
                elif isinstance(v, ast.FormattedValue):
                    inner = self.eval(v.value)
                    if not isinstance(inner, str | int | float) or v.format_spec:
                        return Opaque(self.code(node))
                    parts.append(str(inner))
            return "".join(parts)
        return Opaque(self.code(node))

    def attribute(self, node: ast.Attribute) -> Any:
        base = node.value
        # ValueType.INT64, feast.ValueType.INT64, feast.types.Float32
        if isinstance(base, ast.Name | ast.Attribute):
            owner = self.symbol(base) if isinstance(base, ast.Attribute) else None
            if owner is None and isinstance(base, ast.Name):
                value = self.values.names.get(base.id)
                owner = value.name if isinstance(value, FeastSymbol) else None
            if owner == "ValueType":
                return _ValueType(node.attr)
            if owner is None:
                name = self.symbol(node)
                if name is not None:
                    return FeastSymbol(name)
        return Opaque(self.code(node))

    def subscript(self, node: ast.Subscript) -> Any:
        view = self.eval(node.value)
        picked = self.eval(node.slice)
        names = isinstance(picked, list | tuple) and all(isinstance(p, str) for p in picked)
        if isinstance(view, Call) and names:
            return Projection(view, tuple(picked))
        return Opaque(self.code(node))

    def call_expr(self, node: ast.Call) -> Any:
        func = node.func
        if (isinstance(func, ast.Name) and func.id in self.timedelta_names) or (
            isinstance(func, ast.Attribute)
            and func.attr == "timedelta"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.datetime_modules
        ):
            return self.timedelta(node)
        callee = self.symbol(func)
        if callee is None:
            return Opaque(self.code(node))
        if callee in ("Array", "Set") and len(node.args) == 1:
            inner = self.eval(node.args[0])
            if isinstance(inner, FeastSymbol | _TypeText):
                return _TypeText(f"{callee}({_type_text(inner)})")
        if callee == "Struct":
            return _TypeText("Struct")
        return self.call(node, callee)

    def call(self, node: ast.Call, callee: str) -> Call:
        args = [self.eval(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                kwargs["**"] = Opaque(self.code(kw.value))
            else:
                kwargs[kw.arg] = self.eval(kw.value)
        made = Call(callee, args, kwargs, self.values.file, node.lineno)
        self.values.calls.append(made)
        return made

    def timedelta(self, node: ast.Call) -> Any:
        names = ["days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks"]
        kwargs: dict[str, float] = {}
        for i, a in enumerate(node.args):
            v = self.eval(a)
            if not isinstance(v, int | float) or i >= len(names):
                return Opaque(self.code(node))
            kwargs[names[i]] = v
        for kw in node.keywords:
            v = self.eval(kw.value)
            if kw.arg not in names or not isinstance(v, int | float):
                return Opaque(self.code(node))
            kwargs[kw.arg] = v
        return timedelta(**kwargs)


@dataclass(frozen=True)
class _ValueType:
    name: str


@dataclass(frozen=True)
class _TypeText:
    text: str


@dataclass(frozen=True)
class _Function:
    """A module-level function without a Feast decorator (a possible ``udf=``)."""

    name: str


def _type_text(value: Any) -> str:
    if isinstance(value, _TypeText):
        return value.text
    return str(value.name)


def type_text(value: Any) -> str | None:
    """The Feast type name of an evaluated ``dtype=``, or None when it is not a type."""
    if isinstance(value, _TypeText):
        return value.text
    if isinstance(value, FeastSymbol) and value.name in _TYPE_NAMES:
        return value.name
    return None


def value_type_name(value: Any) -> str | None:
    return value.name if isinstance(value, _ValueType) else None


def function_name(value: Any) -> str | None:
    if isinstance(value, _Function):
        return value.name
    if isinstance(value, Call) and value.function:
        return value.function
    return None
