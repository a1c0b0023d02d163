"""On-demand feature views: new features computed from other features and request data.

::

    @on_demand_feature_view(
        sources=[driver_stats, RequestSource(name="req", schema=[Field(name="val_to_add", dtype=Int64)])],
        schema=[Field(name="conv_plus_val", dtype=Float64)],
        mode="python",
    )
    def conv_plus_val(row):
        return {"conv_plus_val": row["conv_rate"] + row["val_to_add"]}

The function runs at request time online and on every entity row offline; it is the same
function on both paths, fed the same inputs built the same way (each input cast to its
declared type), so online and offline agree to the bit.

- ``mode="python"``: one row per call. The function receives ``{column: value}`` for one row
  and returns ``{output: value}``. Missing values are ``None``.
- ``mode="pandas"``: the function receives a ``DataFrame`` of rows (all entity rows offline,
  the requested rows online) and returns a ``DataFrame`` with the same number of rows, in the
  same order. It must be row-wise: an output row may depend only on its own input row.

Input columns are the selected features of each source view (``view[["f"]]`` selects; a view
alone gives all its features), by feature name, and the request sources' fields. Outputs
beyond the declared schema are ignored; declared outputs missing, or of another kind of type,
are errors naming the view. Outputs are cast to the declared types.

The registry stores where the function lives (``module``, ``qualname`` and, for a function in
a repo file, ``file`` relative to the repo) and a SHA-256 of its source, normalised (the
function's syntax tree without decorators or docstring: comments and formatting do not
count). Never a pickle: a process that serves the view imports the module or runs the repo
file. Only the function's own source is hashed, not helpers it calls.

On-demand views are Python-only: YAML cannot hold a function.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, field_serializer, model_validator
from pydantic import ValidationError as PydanticValidationError

from parity.definitions.base import Definition, Name, _check_name, definition_error
from parity.definitions.feature_view import FeatureView, FeatureViewProjection, Field
from parity.errors import DefinitionError

__all__ = [
    "OnDemandFeatureView",
    "RequestSource",
    "UdfLocation",
    "ViewInput",
    "function_hash",
    "known_function",
    "on_demand_feature_view",
    "remember_function",
]

Mode = Literal["python", "pandas"]
UserFunction = Callable[[Any], Any]


class _Value(BaseModel):
    """An immutable value inside a definition; bad input raises DefinitionError."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    _label: ClassVar[str] = "value"

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except PydanticValidationError as exc:
            raise definition_error(self._label, data.get("name"), exc) from None


class RequestSource(_Value):
    """Data that comes with each request: online in the request's entity columns, offline as
    columns of the entity frame. ``schema`` declares each field's type (values are cast)."""

    _label: ClassVar[str] = "request source"

    name: Name
    schema_: list[Field]
    description: str = ""

    def __init__(self, **data: Any) -> None:
        if "schema" in data:
            data["schema_"] = data.pop("schema")
        super().__init__(**data)

    @model_validator(mode="after")
    def _fields(self) -> RequestSource:
        names = [f.name for f in self.schema_]
        if not names:
            raise ValueError("schema: a request source needs at least one field")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"schema: field names repeat: {dup}")
        return self

    @property
    def schema(self) -> list[Field]:  # type: ignore[override]
        return self.schema_

    def to_spec(self) -> dict[str, Any]:
        spec = self.model_dump(mode="json")
        spec["schema"] = spec.pop("schema_")
        return spec


class ViewInput(_Value):
    """One view an on-demand view reads: some (``features``) or all (None) of its features."""

    _label: ClassVar[str] = "source"

    view: Name
    features: tuple[Name, ...] | None = None

    def to_spec(self) -> dict[str, Any]:
        return {"view": self.view, "features": list(self.features) if self.features else None}


class UdfLocation(_Value):
    """Where a transformation function lives and the hash of its normalised source."""

    _label: ClassVar[str] = "udf"

    module: str
    qualname: str
    file: str | None = None
    """For a function in a repo file: the file, relative to the repo folder (POSIX)."""
    source_hash: str

    def describe(self) -> str:
        """``features.py:conv_plus_val`` or ``my_pkg.features:conv_plus_val``."""
        return f"{self.file or self.module}:{self.qualname}"


class OnDemandFeatureView(Definition):
    """Features computed by ``udf`` from other views' features and request data.

    ``sources``: feature views, on-demand views, ``view[["f1", "f2"]]`` projections,
    ``"view"``/``"view:f1,f2"`` names, and ``RequestSource`` objects. ``udf`` is the function
    (or, read back from the registry, its location). See the module docstring for modes.
    """

    kind: ClassVar[str] = "on_demand_feature_view"

    sources: list[Any]
    request_sources: list[RequestSource] = []
    schema_: list[Field]
    mode: Mode = "python"
    udf: UdfLocation

    _fn: UserFunction | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        if "schema" in data:
            data["schema_"] = data.pop("schema")
        data = _split_sources(data)
        fn = data.get("udf")
        given = None
        if fn is not None and not isinstance(fn, UdfLocation | dict):
            label = f"{self.kind} {data.get('name')!r}"
            data["udf"] = _locate(fn, label)
            given = fn
        super().__init__(**data)
        if given is not None:
            self._fn = given
            _remember(self.udf, given)

    @model_validator(mode="after")
    def _check(self) -> OnDemandFeatureView:
        names = [f.name for f in self.schema_]
        if not names:
            raise ValueError("schema: an on-demand feature view needs at least one output field")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"schema: field names repeat: {dup}")
        if not self.sources and not self.request_sources:
            raise ValueError("sources: an on-demand feature view needs at least one source")
        views = [i.view for i in self.inputs]
        if len(set(views)) != len(views):
            raise ValueError(f"sources: a view is listed twice: {views}; list it once")
        reqs = [r.name for r in self.request_sources]
        if len(set(reqs)) != len(reqs):
            raise ValueError(f"sources: request sources repeat: {reqs}")
        if self.name in views:
            raise ValueError(f"sources: the view reads itself ({self.name} -> {self.name})")
        return self

    @field_serializer("sources")
    def _ser_sources(self, v: list[Any]) -> list[dict[str, Any]]:
        return [_as_input(s).to_spec() for s in v]

    @field_serializer("request_sources")
    def _ser_requests(self, v: list[RequestSource]) -> list[dict[str, Any]]:
        return [r.to_spec() for r in v]

    def to_spec(self) -> dict[str, Any]:
        spec = super().to_spec()
        spec["schema"] = spec.pop("schema_")
        return spec

    # -- what it reads and makes -----------------------------------------------------------

    @property
    def schema(self) -> list[Field]:  # type: ignore[override]
        return self.schema_

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.schema_]

    def source_code(self) -> str | None:
        """The function's source text (dedented), when this object holds the function;
        the registry keeps it with each version for ``parity diff``."""
        fn = self._fn if self._fn is not None else known_function(self.udf)
        if fn is None:
            return None
        try:
            return textwrap.dedent(inspect.getsource(fn))
        except (OSError, TypeError):
            return None

    @property
    def inputs(self) -> list[ViewInput]:
        """The views read, by name, with the features selected (None: all)."""
        return [_as_input(s) for s in self.sources]

    @property
    def input_objects(self) -> list[Definition]:
        """Views given as objects (not names): ``apply`` registers them with this view."""
        return [s for s in self.sources if isinstance(s, Definition)]

    @property
    def depends_on(self) -> list[str]:
        """Upstream objects: ``"view driver_stats"``, ``"request req"``, in source order."""
        return [f"view {i.view}" for i in self.inputs] + [
            f"request {r.name}" for r in self.request_sources
        ]

    def field(self, name: str) -> Field:
        for f in self.schema_:
            if f.name == name:
                return f
        from parity.errors import RetrievalError

        raise RetrievalError(
            f"on-demand feature view {self.name!r} has no feature {name!r}; "
            f"it has {self.feature_names}"
        )

    def __getitem__(self, features: list[str] | str) -> FeatureViewProjection:
        """``odfv[["f1"]]``: a selection of outputs, for a service or another view's sources."""
        if isinstance(features, str):
            features = [features]
        for f in features:
            self.field(f)
        return FeatureViewProjection(view=self.name, features=tuple(features))

    # -- the function ----------------------------------------------------------------------

    @property
    def given_function(self) -> UserFunction | None:
        """The function this view was built from in this process; None when read back from
        the registry (``parity.repo.functions.resolve_function`` finds it then)."""
        return self._fn

    def located_in(self, root: Path) -> OnDemandFeatureView:
        """This view, its function recorded as a repo file when it lives under ``root``."""
        fn = self._fn
        path = _function_file(fn) if fn is not None else None
        if path is None:
            return self
        try:
            rel = path.resolve().relative_to(root.resolve())
        except ValueError:
            return self
        parts = list(rel.with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        loc = self.udf.model_copy(update={"file": rel.as_posix(), "module": ".".join(parts)})
        return self.model_copy(update={"udf": loc})


def on_demand_feature_view(
    *,
    sources: Sequence[Any],
    schema: Sequence[Field],
    mode: Mode = "python",
    name: str | None = None,
    description: str = "",
    owner: str = "",
    tags: dict[str, str] | None = None,
) -> Callable[[UserFunction], OnDemandFeatureView]:
    """Decorate a function to make an ``OnDemandFeatureView`` named after it (or ``name``)."""

    def wrap(fn: UserFunction) -> OnDemandFeatureView:
        return OnDemandFeatureView(
            name=name or getattr(fn, "__name__", ""),
            sources=list(sources),
            schema=list(schema),
            mode=mode,
            udf=fn,
            description=description or inspect.getdoc(fn) or "",
            owner=owner,
            tags=tags or {},
        )

    return wrap


# -- sources -------------------------------------------------------------------------------


def _split_sources(data: dict[str, Any]) -> dict[str, Any]:
    """Request sources given among ``sources`` move to ``request_sources``."""
    sources = data.get("sources")
    if sources is None:
        return data
    if not isinstance(sources, list | tuple):
        sources = [sources]
    requests = list(data.get("request_sources") or [])
    views = []
    for s in sources:
        if isinstance(s, RequestSource):
            requests.append(s)
        elif isinstance(s, dict) and "view" not in s and "schema" in s:
            requests.append(RequestSource(**s))
        else:
            views.append(_checked_source(s, data.get("name")))
    out = {**data, "sources": views}
    if requests:
        out["request_sources"] = [
            r if isinstance(r, RequestSource) else RequestSource(**r) for r in requests
        ]
    return out


def _checked_source(s: Any, name: Any) -> Any:
    if isinstance(s, FeatureView | OnDemandFeatureView | ViewInput):
        return s
    try:
        return _as_input(s)
    except (ValueError, TypeError) as exc:
        raise DefinitionError(f"on_demand_feature_view {name!r}: sources: {exc}") from None


def _as_input(s: Any) -> ViewInput:
    if isinstance(s, ViewInput):
        return s
    if isinstance(s, FeatureView | OnDemandFeatureView):
        return ViewInput(view=s.name)
    if isinstance(s, FeatureViewProjection):
        return ViewInput(view=s.view, features=s.features)
    if isinstance(s, str):
        view, _, feats = s.partition(":")
        names = tuple(_check_name(f.strip()) for f in feats.split(",") if f.strip())
        return ViewInput(view=_check_name(view.strip()), features=names or None)
    if isinstance(s, dict):
        return ViewInput(**s)
    raise ValueError(
        "a source must be a feature view, an on-demand view, view[[...]], 'view', "
        f"'view:f1,f2' or a RequestSource, got {s!r}"
    )


# -- where functions live ------------------------------------------------------------------

# Functions seen in this process, by location and source hash: a view read back from the
# registry in the process that defined it (a test, a notebook) finds its function here.
_KNOWN: dict[tuple[str, str, str], UserFunction] = {}
_KNOWN_LOCK = threading.Lock()


def function_hash(fn: UserFunction) -> str:
    """SHA-256 of the function's normalised source: its syntax tree, unparsed, without
    decorators or docstring. ``OSError`` when the source cannot be read."""
    src = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(src)
    node = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None
    )
    if node is None:
        raise OSError("no function definition found in its source")
    node.decorator_list = []
    first = node.body[0] if node.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        node.body = node.body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.unparse(node).encode()).hexdigest()


def _locate(fn: Any, label: str) -> UdfLocation:
    """The location and source hash of a user function; DefinitionError when it has none."""
    if isinstance(fn, OnDemandFeatureView):
        raise DefinitionError(f"{label}: udf is an on-demand feature view, not a function")
    if not inspect.isfunction(fn):
        raise DefinitionError(
            f"{label}: udf must be a function defined with def, got {type(fn).__name__}"
        )
    if fn.__name__ == "<lambda>":
        raise DefinitionError(f"{label}: udf must be a function defined with def, not a lambda")
    try:
        digest = function_hash(fn)
    except (OSError, TypeError, SyntaxError) as exc:
        raise DefinitionError(
            f"{label}: cannot read the source of {fn.__qualname__!r} ({exc}); "
            "define transformations in a .py file"
        ) from None
    return UdfLocation(module=fn.__module__, qualname=fn.__qualname__, source_hash=digest)


def _function_file(fn: UserFunction) -> Path | None:
    try:
        return Path(inspect.getfile(fn)).resolve()
    except (TypeError, OSError):
        return None


def _remember(loc: UdfLocation, fn: UserFunction) -> None:
    remember_function(loc, fn, _function_file(fn))


def remember_function(loc: UdfLocation, fn: UserFunction, path: Path | None = None) -> None:
    """Index ``fn`` by its module location (and ``path``, its file) with its source hash."""
    with _KNOWN_LOCK:
        _KNOWN[("module", loc.module + ":" + loc.qualname, loc.source_hash)] = fn
        if path is not None:
            _KNOWN[("file", f"{path}:{loc.qualname}", loc.source_hash)] = fn


def known_function(loc: UdfLocation, path: Path | None = None) -> UserFunction | None:
    """A function seen in this process at ``loc`` (by ``path`` for a repo file), or None."""
    if path is not None:
        return _KNOWN.get(("file", f"{path}:{loc.qualname}", loc.source_hash))
    return _KNOWN.get(("module", loc.module + ":" + loc.qualname, loc.source_hash))
