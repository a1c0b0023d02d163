"""Hypothesis strategies for valid definitions, shared by the definition tests."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import strategies as st

from parity import types as T
from parity.definitions import Entity, FeatureService, FeatureView, Field, FileSource, Sla
from parity.definitions.feature_view import FeatureViewProjection

PRIMITIVES = [T.Int32, T.Int64, T.Float32, T.Float64, T.String, T.Bool, T.Bytes, T.Timestamp]

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
text = st.text(max_size=12)
tags = st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3)
value_types = st.sampled_from(PRIMITIVES) | st.sampled_from(PRIMITIVES).map(T.Array)
positive_durations = st.timedeltas(
    min_value=timedelta(microseconds=1), max_value=timedelta(days=3650)
)


@st.composite
def entities(draw: st.DrawFn) -> Entity:
    return Entity(
        name=draw(names),
        join_keys=draw(st.lists(names, min_size=1, max_size=3, unique=True)),
        dtype=draw(st.none() | value_types),
        description=draw(text),
        owner=draw(text),
        tags=draw(tags),
    )


@st.composite
def file_sources(draw: st.DrawFn) -> FileSource:
    columns = draw(st.lists(names, max_size=3, unique=True))
    targets = draw(st.lists(names, min_size=len(columns), max_size=len(columns), unique=True))
    return FileSource(
        name=draw(names),
        path=draw(st.text(min_size=1, max_size=20).filter(str.strip)),
        timestamp_field=draw(names),
        created_timestamp_field=draw(st.none() | names),
        field_mapping=dict(zip(columns, targets, strict=True)),
        file_format=draw(st.sampled_from([None, "parquet", "csv"])),
        description=draw(text),
        owner=draw(text),
        tags=draw(tags),
    )


@st.composite
def fields(draw: st.DrawFn, name: str | None = None) -> Field:
    return Field(
        name=name if name is not None else draw(names),
        dtype=draw(value_types),
        description=draw(text),
        tags=draw(tags),
        pii=draw(st.booleans()),
    )


slas = st.none() | st.builds(
    Sla, freshness=st.none() | positive_durations, availability=st.none() | text
)


@st.composite
def feature_views(draw: st.DrawFn) -> FeatureView:
    field_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    return FeatureView(
        name=draw(names),
        entities=draw(st.lists(names, min_size=1, max_size=3, unique=True)),
        source=draw(names),
        schema=[draw(fields(name=n)) for n in field_names],
        ttl=draw(st.none() | positive_durations),
        online=draw(st.booleans()),
        sla=draw(slas),
        pii=draw(st.booleans()),
        description=draw(text),
        owner=draw(text),
        tags=draw(tags),
    )


@st.composite
def feature_services(draw: st.DrawFn) -> FeatureService:
    views = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    items = []
    for view in views:
        features = draw(st.none() | st.lists(names, min_size=1, max_size=3, unique=True))
        items.append(
            FeatureViewProjection(view=view, features=tuple(features) if features else None)
        )
    return FeatureService(
        name=draw(names), features=items, description=draw(text), owner=draw(text), tags=draw(tags)
    )


definitions = entities() | file_sources() | feature_views() | feature_services()
