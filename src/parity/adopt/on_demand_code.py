"""The Python module of the new repo's on-demand views, each function carried over as written.

A Feast ``pandas`` function and a ``python`` function with ``singleton=True`` (one row in,
one row out) mean in Parity what they meant in Feast: the function is kept as written, under
Parity's ``@on_demand_feature_view`` decorator. A Feast ``python`` function without
``singleton`` takes and returns whole columns as lists (``{"conv_rate": [0.1, 0.2]}``);
Parity's python mode is one row per call, so such a function is kept as written, undecorated,
and called from a small pandas-mode view that hands it the columns as lists (nulls as None,
as Feast does) and makes a frame of what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parity.adopt.model import FeastFunction

__all__ = ["OnDemandPlan", "render_module"]


@dataclass(frozen=True)
class OnDemandPlan:
    """One on-demand view to write: Parity's settings and the Feast function."""

    name: str
    function: FeastFunction
    sources: list[tuple[str, tuple[str, ...] | None]]
    request_sources: list[tuple[str, list[dict[str, Any]]]]
    schema: list[dict[str, Any]]
    mode: str
    columns_as_lists: bool = False
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def function_name(self) -> str:
        return self.function.name


def render_module(plans: list[OnDemandPlan]) -> str:
    """The text of ``on_demand.py`` for ``plans`` (sorted by name)."""
    imports: list[str] = []
    for plan in plans:
        for line in plan.function.imports:
            if line not in imports:
                imports.append(line)
    wrapped = any(p.columns_as_lists for p in plans)
    head = [
        '"""On-demand feature views imported from a Feast repo by `parity import-feast`.',
        "",
        "Each function is carried over as it was written in the Feast repo (the file is named",
        "above it); only the decorator is Parity's.",
        '"""',
        "",
        *imports,
        "",
    ]
    if wrapped:
        head += ["import pandas as _pd", "import pyarrow as _pa", ""]
    head += ["from parity import Field, RequestSource, on_demand_feature_view", ""]
    body = []
    for plan in plans:
        body.append(_render(plan))
    return "\n".join(head) + "\n" + "\n\n".join(body)


def _render(plan: OnDemandPlan) -> str:
    decorator = _decorator(plan)
    fn = plan.function
    where = f"# From the Feast repo's {fn.file}: the on-demand view {plan.name!r}."
    source = fn.source or ""
    if not plan.columns_as_lists:
        return f"\n{where}\n{decorator}\n{source}\n"
    adapter = (
        f"{decorator}\n"
        f"def _parity_{fn.name}(rows: _pd.DataFrame) -> _pd.DataFrame:\n"
        f'    """Feast python mode: {fn.name} takes and returns columns as lists."""\n'
        f"    columns = _pa.Table.from_pandas(rows, preserve_index=False).to_pydict()\n"
        f"    return _pd.DataFrame({fn.name}(columns), index=rows.index)\n"
    )
    return f"\n{where}\n{source}\n\n\n{adapter}"


def _decorator(plan: OnDemandPlan) -> str:
    sources = []
    for view, picked in plan.sources:
        sources.append(repr(view if picked is None else f"{view}:{','.join(picked)}"))
    for name, schema in plan.request_sources:
        sources.append(f"RequestSource(name={name!r}, schema={_fields(schema, 8)})")
    args = [
        f"    name={plan.name!r},",
        "    sources=[\n" + "".join(f"        {s},\n" for s in sources) + "    ],",
        f"    schema={_fields(plan.schema, 4)},",
        f"    mode={plan.mode!r},",
    ]
    if plan.description:
        args.append(f"    description={plan.description!r},")
    if plan.owner:
        args.append(f"    owner={plan.owner!r},")
    if plan.tags:
        args.append(f"    tags={plan.tags!r},")
    return "@on_demand_feature_view(\n" + "\n".join(args) + "\n)"


def _fields(schema: list[dict[str, Any]], indent: int) -> str:
    pad = " " * indent
    items = []
    for f in schema:
        parts = ", ".join(f"{k}={v!r}" for k, v in f.items())
        items.append(f"{pad}    Field({parts}),\n")
    return "[\n" + "".join(items) + f"{pad}]"
