"""A small registry with text to search, shared by the discovery tests (built in memory)."""

from __future__ import annotations

from parity import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    Model,
    OnDemandFeatureView,
    Permission,
    RequestSource,
    Role,
)
from parity.definitions.on_demand import UdfLocation
from parity.registry.catalog import Catalog

driver = Entity(
    name="driver", join_keys=["driver_id"], dtype=Int64, description="A driver of the fleet."
)
customer = Entity(name="customer", join_keys=["customer_id"], dtype=Int64)
trips = FileSource(
    name="trips_source",
    path="data/trips.parquet",
    timestamp_field="ts",
    description="Raw trip events from the dispatch system.",
    owner="data-eng@example.com",
)
orders = FileSource(name="orders_source", path="data/orders.parquet", timestamp_field="ts")
stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    source=trips,
    schema=[
        Field(name="conv_rate", dtype=Float64, description="Conversion rate: offers accepted."),
        Field(name="acc_rate", dtype=Float64, description="Share of rides completed."),
        Field(name="avg_daily_trips", dtype=Int64, description="Trips per day, 7-day average."),
    ],
    description="How active and reliable a driver has been lately.",
    owner="ml-platform@example.com",
    tags={"team": "ranking"},
)
other = FeatureView(
    name="partner_stats",
    entities=[driver],
    source=trips,
    schema=[Field(name="conv_rate", dtype=Float64, description="Share of offers taken up.")],
    description="The same measures for partner fleets.",
    owner="partners@example.com",
    tags={"team": "partners"},
)
churn = FeatureView(
    name="churn_signals",
    entities=[customer],
    source=orders,
    schema=[Field(name="days_since_order", dtype=Int64, description="Days since the last order.")],
    description="What a customer did lately.",
    owner="growth-ds@example.com",
    tags={"team": "growth"},
)
basket = FeatureView(
    name="basket_stats",
    entities=[customer],
    source=orders,
    schema=[Field(name="basket_value", dtype=Float64, description="Mean basket value.")],
    description="Signals of churn from what customers put in their baskets.",
    owner="growth-ds@example.com",
    tags={"team": "growth"},
)
payment = FeatureView(
    name="payment_risk",
    entities=[customer],
    source=orders,
    schema=[
        Field(name="chargeback_count", dtype=Int64, description="Disputed payments, 90 days."),
        Field(name="card_age_days", dtype=Int64, tags={"pii": "no"}),
    ],
    description="Fraud signals of a customer's payments.",
    owner="risk-team@example.com",
    tags={"team": "risk"},
)
refunds = FeatureView(
    name="refund_history",
    entities=[customer],
    source=orders,
    schema=[Field(name="refunds_90d", dtype=Int64, description="Count of chargeback refunds.")],
    owner="risk-team@example.com",
    tags={"team": "risk"},
)
bonus = RequestSource(name="bonus_request", schema=[Field(name="bonus", dtype=Float64)])
boost = OnDemandFeatureView(
    name="conv_boost",
    sources=[stats[["conv_rate"]], bonus],
    schema=[Field(name="boosted_conv", dtype=Float64)],
    udf=UdfLocation(module="tests_udfs", qualname="conv_boost", source_hash="0" * 64),
    description="The conversion rate with a request-time bonus.",
    owner="ml-platform@example.com",
)
ranking = FeatureService(
    name="ranking_service",
    features=[stats[["conv_rate", "avg_daily_trips"]], boost],
    description="What the driver ranker reads.",
    owner="ml-platform@example.com",
)
risk = FeatureService(
    name="risk_service", features=[payment], description="Everything fraud scoring reads."
)
ranker = Model(
    "ranker_v2",
    features=ranking,
    description="Gradient-boosted driver ranking model.",
    owner="ranking-ml@example.com",
)
reader = Role(
    "conv_reader",
    permissions=[Permission(actions=["describe"], names=["driver_*"])],
    description="Reads conversion features.",
)

OBJECTS = [
    driver,
    customer,
    trips,
    orders,
    stats,
    other,
    churn,
    basket,
    payment,
    refunds,
    boost,
    ranking,
    risk,
    ranker,
    reader,
]


def catalog(revision: int = 1) -> Catalog:
    """A new catalog of ``OBJECTS`` (a new object each call, as a new revision would be)."""
    return Catalog.of(OBJECTS, revision=revision, project="disco")
