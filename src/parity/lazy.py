"""Modules imported on first use, for costly imports a process may never need.

A ``parity plan`` is a fresh process that reads source schemas from the disk cache
(``parity.cache``) and never runs a query, so the engine it builds should not pay for
importing DuckDB; the first attribute looked up on the stand-in imports the module::

    if TYPE_CHECKING:
        import duckdb
    else:
        duckdb = LazyModule("duckdb", globals(), "duckdb")

Given the module's namespace and the name it is bound to there, the first use rebinds
that name to the real module, so later uses cost what a plain global does.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["LazyModule"]


class LazyModule:
    """Stands in for the module ``name`` until an attribute is first asked for."""

    def __init__(self, name: str, namespace: dict[str, Any] | None = None, bound: str = ""):
        self._name = name
        self._module: ModuleType | None = None
        self._namespace = namespace
        self._bound = bound

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
            if self._namespace is not None and self._namespace.get(self._bound) is self:
                self._namespace[self._bound] = module
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r}, {state}>"
