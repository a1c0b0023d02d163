"""``parity get``: online values of some entities, with their status and age.

::

    parity get driver_hourly_stats:conv_rate --entity driver_id=1001 --entity driver_id=1002
    parity get --service driver_activity --entity driver_id=1001 --json

One table row per entity row and feature: the entity's keys, the feature, its value, its
status and its age (how long before now its event time is). ``--json`` prints a list with
one object per entity row instead (``entity``, and ``features`` by name, each with
``value``, ``status``, ``event_timestamp`` and ``age_seconds``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from parity.cli import render
from parity.cli.common import (
    RepoOption,
    VerboseOption,
    handles_errors,
    open_store,
    require_registry,
    split_refs,
)

if TYPE_CHECKING:
    from parity.online.reader import OnlineResponse
    from parity.query.plan import FeaturePlan

_EITHER = "FEATURES / '--service'"
_STATUS_STYLE = {"present": "green", "missing": "yellow", "expired": "magenta"}


@handles_errors
def get(
    features: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="FEATURES",
            help="Feature references view:feature, comma-separated or repeated (view:a,b is "
            "view:a and view:b; view:* all of a view's features). Exclusive with --service.",
            show_default=False,
        ),
    ] = None,
    entity: Annotated[
        list[str] | None,
        typer.Option(
            "--entity",
            "-e",
            metavar="KEY=VALUE[,KEY=VALUE]",
            help="One entity row: its join keys (and request data) as KEY=VALUE, "
            "comma-separated; repeat for more rows. Values are typed by the entity's "
            "declared type.",
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service", "-s", metavar="NAME", help="A feature service whose features to read."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (one object per entity row), no table.")
    ] = False,
    full_feature_names: Annotated[
        bool, typer.Option("--full-feature-names", help="Name features view__feature.")
    ] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Read the latest online values of entities: value, status and age of each feature."""
    from parity.cli.entity_text import parse_rows, typed_rows

    refs = split_refs(features)
    if refs and service:
        raise typer.BadParameter("give one of them, not both", param_hint=_EITHER)
    if not refs and not service:
        raise typer.BadParameter(
            "give feature references (view:feature ...) or --service NAME", param_hint=_EITHER
        )
    if not entity:
        raise typer.BadParameter("give at least one entity row", param_hint="'--entity'")
    texts = parse_rows(entity)
    wanted: list[str] | str = refs or str(service)
    with open_store(repo) as store:
        from parity.query.plan import plan_features

        require_registry(store)
        plan = plan_features(wanted, store.catalog(), full_feature_names=full_feature_names)
        rows = typed_rows(texts, input_types(plan))
        response = store.get_online_features(
            wanted, entity_rows=rows, full_feature_names=full_feature_names
        )
        now_us = store.clock.now_us()
    if as_json:
        typer.echo(json.dumps(json_rows(response, now_us), default=_json_default, indent=2))
    else:
        render.console().print(response_table(response, now_us))


def input_types(plan: FeaturePlan) -> dict[str, Any]:
    """The declared type of every column an entity row may give: join keys (their entity's
    type), then the request fields of the plan's on-demand views."""
    types: dict[str, Any] = {}
    for step in plan.steps:
        for _source, field in step.request_fields:
            types.setdefault(field.name, field.dtype)
    types.update(plan.key_types)
    return types


def age_text(seconds: float) -> str:
    """``42s``, ``5m 12s``, ``3h 4m``, ``2d 3h``: the largest unit and the next one (when
    not zero); ``now`` under a second; ``in 5m`` for a time ahead of now."""
    left = int(abs(seconds))
    if left < 1:
        return "now"
    counts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, left = divmod(left, size)
        counts.append((count, unit))
    first = next(i for i, (count, _) in enumerate(counts) if count)
    shown = [f"{c}{u}" for c, u in counts[first : first + 2] if c]
    text = " ".join(shown)
    return f"in {text}" if seconds < 0 else text


def _value_text(value: Any) -> str:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bytes):
        return repr(value)
    return repr(value) if isinstance(value, float) else str(value)


def response_table(response: OnlineResponse, now_us: int) -> Any:
    """One row per entity row and feature: keys, feature, value, status, age."""
    from rich.table import Table
    from rich.text import Text

    cols = response.to_dict()
    keys = [k for k in cols if k not in response.values]
    n = len(response)
    table = Table(title=f"Online values ({n} entity row{'s' * (n != 1)})", title_justify="left")
    for k in keys:
        table.add_column(k, style="bold cyan", overflow="fold")
    for header in ("Feature", "Value", "Status", "Age"):
        table.add_column(header, justify="right" if header == "Age" else "left", overflow="fold")
    names = list(response.values)
    for i in range(len(response)):
        for j, name in enumerate(names):
            status = response.statuses[name][i]
            event = response.event_micros[name][i]
            value = response.values[name][i]
            table.add_row(
                *(Text(_value_text(cols[k][i]) if j == 0 else "") for k in keys),
                Text(name),
                Text("null", style="dim") if value is None else Text(_value_text(value)),
                Text(status, style=_STATUS_STYLE.get(status, "red")),
                Text("-" if event is None else age_text((now_us - event) / 1e6)),
                end_section=j == len(names) - 1,
            )
    return table


def json_rows(response: OnlineResponse, now_us: int) -> list[dict[str, Any]]:
    """One object per entity row: ``entity`` and ``features`` (value, status, event time
    as ISO 8601 UTC, age in seconds; the last two null when there is no record)."""
    cols = response.to_dict()
    keys = [k for k in cols if k not in response.values]
    stamps = response.event_timestamps
    out = []
    for i in range(len(response)):
        feats = {}
        for name, values in response.values.items():
            event = response.event_micros[name][i]
            ts = stamps[name][i]
            feats[name] = {
                "value": values[i],
                "status": response.statuses[name][i],
                "event_timestamp": None if ts is None else ts.isoformat(),
                "age_seconds": None if event is None else (now_us - event) / 1e6,
            }
        out.append({"entity": {k: cols[k][i] for k in keys}, "features": feats})
    return out


def _json_default(value: Any) -> Any:
    """Bytes as base64 text (as the HTTP server sends them), times as ISO 8601."""
    import base64
    from datetime import datetime

    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
