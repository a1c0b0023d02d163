"""The driver features, in Python. `parity plan` shows what would change; `parity apply` registers.

Every module-level definition in a repo's ``*.py`` and ``*.yaml`` files is read; objects in
different files refer to each other by name (the service below names a view from features.yaml).
"""

from datetime import timedelta

from parity import (
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileSource,
    Float64,
    Int64,
)

driver = Entity(
    name="driver",
    join_keys=["driver_id"],
    dtype=Int64,
    description="A driver of the fleet.",
    owner="ml-platform@example.com",
)

driver_stats_source = FileSource(
    name="driver_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_field="created",
    description="Hourly statistics per driver, one row per driver and hour.",
    owner="data-eng@example.com",
)

driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    source=driver_stats_source,
    schema=[
        Field(name="conv_rate", dtype=Float64, description="Share of offers accepted."),
        Field(name="acc_rate", dtype=Float64, description="Share of rides completed."),
        Field(name="avg_daily_trips", dtype=Int64, description="Trips per day, 7-day average."),
    ],
    ttl=timedelta(days=1),
    description="How active and reliable a driver has been lately.",
    owner="ml-platform@example.com",
    tags={"team": "ranking"},
)

driver_activity = FeatureService(
    name="driver_activity",
    features=[
        driver_hourly_stats[["conv_rate", "avg_daily_trips"]],  # two features of this view
        FeatureViewProjection(view="driver_rating"),  # every feature of a view in features.yaml
    ],
    description="The features the driver-ranking model reads.",
    owner="ml-platform@example.com",
)
