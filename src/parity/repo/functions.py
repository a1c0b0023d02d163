"""On-demand views' functions, found again from where the registry says they live.

The registry keeps a function's module and qualified name (and, for a repo file, the file
relative to the repo) and the SHA-256 of its normalised source, never a pickle. A process
that serves or trains with the view gets the function back here: the one this process built
the view from, one already seen at that location with that hash, or else by importing the
module (running the repo file) and checking the hash. A function whose source changed since
``parity apply`` is refused, naming the view and the location.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from parity.definitions.on_demand import (
    OnDemandFeatureView,
    UserFunction,
    function_hash,
    known_function,
    remember_function,
)
from parity.errors import DefinitionError
from parity.repo.loader import load_module

__all__ = ["resolve_function"]


def resolve_function(
    view: OnDemandFeatureView, repo_root: str | Path | None = None
) -> UserFunction:
    """The view's transformation; ``DefinitionError`` naming the view and the location when it
    cannot be found, or when its source changed since it was applied."""
    if view.given_function is not None:
        return view.given_function
    root = None if repo_root is None else Path(repo_root)
    loc = view.udf
    label = f"on-demand feature view {view.name!r}"
    where = loc.describe()
    path = None
    if loc.file is not None:
        if root is None:
            raise DefinitionError(
                f"{label}: its function is in the repo file {where}; give the repo folder"
            )
        path = (root / loc.file).resolve()
        known = known_function(loc, path)
        if known is not None:
            return known
        holder = _run_repo_file(root, path, label, where)
    else:
        known = known_function(loc)
        if known is not None:
            return known
        holder = _import(loc.module, label, where)
    obj: Any = holder
    for part in loc.qualname.split("."):
        if part == "<locals>" or not hasattr(obj, part):
            hint = " (a function defined inside another cannot be imported)" * (part == "<locals>")
            raise DefinitionError(f"{label}: cannot find its function {where}{hint}")
        obj = getattr(obj, part)
    fn = obj.given_function if isinstance(obj, OnDemandFeatureView) else obj
    if not callable(fn):
        raise DefinitionError(f"{label}: {where} is not a function")
    try:
        now = function_hash(fn)
    except (OSError, TypeError, SyntaxError) as exc:
        raise DefinitionError(f"{label}: cannot read the source of {where}: {exc}") from None
    if now != loc.source_hash:
        raise DefinitionError(
            f"{label}: the function {where} changed since it was applied (registered source "
            f"hash {loc.source_hash[:12]}, found {now[:12]}); run `parity apply` to register it"
        )
    remember_function(loc, fn, path)
    return fn


def _import(module: str, label: str, where: str) -> Any:
    if module in sys.modules:
        return sys.modules[module]
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise DefinitionError(
            f"{label}: cannot import its function {where}: {type(exc).__name__}: {exc}"
        ) from exc


def _run_repo_file(root: Path, path: Path, label: str, where: str) -> Any:
    if not path.is_file():
        raise DefinitionError(f"{label}: its function's file {where} is not in {root}")
    try:
        return load_module(root, path)
    except DefinitionError as exc:
        raise DefinitionError(f"{label}: cannot load its function {where}: {exc}") from exc
