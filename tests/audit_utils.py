"""A small repo with the audit log on, for the audit log's tests (unit and integration)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

T0 = datetime(2026, 11, 1, tzinfo=UTC)

DEFS = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64, PushSource, String

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
stats_files = FileSource(
    name="driver_files", path="data/drivers.parquet", timestamp_field="event_timestamp"
)
stats_push = PushSource(name="driver_push", batch_source=stats_files)
driver_stats = FeatureView(
    name="driver_stats",
    entities=["driver"],
    source=stats_push,
    schema=[
        Field(name="conv_rate", dtype=Float64),
        Field(name="trips", dtype=Int64),
        Field(name="city", dtype=String),
    ],
    ttl=timedelta(days=3650),
)
"""


def audit_repo(
    root: Path,
    *,
    registry: str = "data/registry.db",
    schema: str | None = None,
    online: str = "{ type: sqlite, path: data/online.db }",
    audit: str = "{ enabled: true }",
    project: str = "audited",
) -> Path:
    """A repo folder whose parity.yaml turns the audit log on (auth stays off)."""
    root.mkdir(parents=True, exist_ok=True)
    reg = registry if schema is None else f"{{ url: '{registry}', schema: {schema} }}"
    (root / "parity.yaml").write_text(
        f"project: {project}\nregistry: {reg}\noffline_store: {{ type: duckdb }}\n"
        f"online_store: {online}\naudit: {audit}\n"
    )
    (root / "features.py").write_text(textwrap.dedent(DEFS))
    data = root / "data"
    data.mkdir(exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1, 2, 3], pa.int64()),
                "event_timestamp": pa.array([T0, T0, T0], pa.timestamp("us", tz="UTC")),
                "conv_rate": [0.5, 0.25, 0.125],
                "trips": pa.array([10, 20, 30], pa.int64()),
                "city": ["Oslo", "Lima", "Pune"],
            }
        ),
        data / "drivers.parquet",
    )
    return root
