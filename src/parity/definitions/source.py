"""Data sources: where a view's rows come from."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from parity.definitions.base import Definition, Duration, Name


class DataSource(Definition):
    """Base of every source kind; ``source_type`` tells them apart in the registry."""

    kind: ClassVar[str] = "source"
    source_type: str = "base"

    timestamp_field: str = "event_timestamp"
    created_timestamp_field: str | None = None
    field_mapping: dict[str, str] = {}
    event_id_field: str | None = None
    """A column identifying each event: aggregated views count a replayed event once
    (the first to arrive, by created time, per entity)."""
    retention: Duration | None = None
    """How long Parity keeps the rows it holds from this source (its views' offline-log and
    serving-log rows; ``parity retention run``); None: forever. A view's own wins."""

    def to_spec(self) -> dict[str, Any]:
        spec = super().to_spec()
        for key in ("event_id_field", "retention"):  # unset: the stored form (and hash) stay
            if spec.get(key, 0) is None:
                spec.pop(key, None)
        return spec

    def column_for(self, name: str) -> str:
        """The source column that holds the feature or join key ``name``."""
        for column, mapped in self.field_mapping.items():
            if mapped == name:
                return column
        return name


class FileSource(DataSource):
    """Parquet or CSV files: one file, a glob, or a (hive-partitioned) folder of files.

    ``timestamp_field`` and ``created_timestamp_field`` name columns as they are in the files;
    ``field_mapping`` renames file columns (``{"file_col": "feature_name"}``). A relative
    ``path`` is resolved against the feature repo's folder.
    """

    source_type: Literal["file"] = "file"
    path: str
    file_format: Literal["parquet", "csv"] | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("path is empty")
        return v

    @model_validator(mode="after")
    def _infer_format(self) -> FileSource:
        if self.file_format is None:
            suffix = Path(self.path.rstrip("/*")).suffix.lower()
            fmt = "csv" if suffix in (".csv", ".tsv") or self.path.endswith(".csv") else "parquet"
            object.__setattr__(self, "file_format", fmt)
        mapped = list(self.field_mapping.values())
        if len(set(mapped)) != len(mapped):
            raise ValueError(f"field_mapping maps two columns to one name: {self.field_mapping}")
        return self


class PushSource(DataSource):
    """Rows pushed by applications (``store.push``), backed by ``batch_source`` for history.

    ``batch_source`` is a ``FileSource`` or the name of one (resolved at apply, like a
    view's ``source``: the registry stores the push source with its batch source's spec, and
    a name that matches no file source is refused then). Its timestamp fields and field
    mapping are the batch source's. Rows pushed to the offline side are appended to the
    repo's offline log and read together with the batch source's files by every historical
    query.
    """

    source_type: Literal["push"] = "push"
    batch_source: FileSource | Name

    @field_validator("batch_source", mode="before")
    @classmethod
    def _batch(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return FileSource(**v)
        return v

    @property
    def batch_source_name(self) -> str:
        b = self.batch_source
        return b if isinstance(b, str) else b.name

    @property
    def resolved(self) -> bool:
        """Whether ``batch_source`` is the source itself, not yet only its name."""
        return not isinstance(self.batch_source, str)

    def resolve(self, batch: FileSource) -> Self:
        """This push source with ``batch`` as its batch source (the fields given explicitly
        kept, the timestamp fields and field mapping taken from ``batch``)."""
        given = self.model_dump(include=self.model_fields_set - {"batch_source"})
        return type(self)(**given, batch_source=batch)

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any) -> Any:
        batch = data.get("batch_source") if isinstance(data, dict) else None
        if batch is not None and not isinstance(batch, str):
            batch = data["batch_source"]
            get = batch.get if isinstance(batch, dict) else lambda k, d=None: getattr(batch, k, d)
            for key in (
                "timestamp_field",
                "created_timestamp_field",
                "field_mapping",
                "event_id_field",
            ):
                if key not in data:
                    default: dict[str, str] | None = {} if key == "field_mapping" else None
                    data = {**data, key: get(key, default) or default}
            if data.get("timestamp_field") is None:
                data = {**data, "timestamp_field": "event_timestamp"}
        return data

    @model_validator(mode="after")
    def _same_columns(self) -> PushSource:
        b = self.batch_source
        if isinstance(b, str):  # checked when it is resolved, at apply
            return self
        mine = (
            self.timestamp_field,
            self.created_timestamp_field,
            self.field_mapping,
            self.event_id_field,
        )
        theirs = (
            b.timestamp_field,
            b.created_timestamp_field,
            b.field_mapping,
            b.event_id_field,
        )
        if mine != theirs:
            raise ValueError(
                "timestamp_field, created_timestamp_field, field_mapping and event_id_field "
                "come from batch_source; set them there"
            )
        return self


_SOURCE_TYPES: dict[str, type[DataSource]] = {"file": FileSource, "push": PushSource}
BROKERS = ("redis_streams", "nats_jetstream")
"""The brokers a stream source reads (``parity.streams`` has one consumer class for each)."""
_NATS_STREAM = re.compile(r"[^.*>\s/\\]{1,255}")


class StreamSource(PushSource):
    """Events read from a broker by Parity's own consumers (``parity stream run``).

    ``kind`` (``broker`` in YAML, where ``kind:`` names the document) is ``redis_streams`` or
    ``nats_jetstream``; ``stream`` the Redis stream key or the JetStream stream name, and
    ``subject`` an optional NATS subject filter. Consumers share ``group`` (the Redis consumer
    group, the JetStream durable consumer). A message is one event: a JSON object (or
    msgpack map) of the event's fields, named as in ``batch_source``'s files (the same
    ``field_mapping``, timestamp fields and event id, taken from it like a push source's),
    held in the Redis entry field ``payload_field`` or as the JetStream message data. Event
    times are ISO 8601 text or epoch numbers in ``timestamp_unit``. ``to`` says whether events
    are also appended to the offline log (read with ``batch_source`` for training).
    ``max_lateness``: an event this far behind the newest one seen is dead-lettered
    (``late``); None applies every event. ``start``: where a new group begins reading
    (``earliest``: everything the stream holds).
    """

    source_type: Literal["stream"] = "stream"  # type: ignore[assignment]
    broker: Literal["redis_streams", "nats_jetstream"] = Field(alias="kind")
    url: str = ""
    stream: str
    subject: str | None = None
    group: Name = "parity"
    format: Literal["json", "msgpack"] = "json"
    payload_field: str = "data"
    timestamp_unit: Literal["s", "ms", "us", "ns"] = "s"
    max_lateness: Duration | None = None
    to: Literal["online", "online_and_offline"] = "online"
    start: Literal["earliest", "latest"] = "earliest"

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _broker_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "broker" in data and "kind" in data:
            raise ValueError("give the broker once: kind= (Python) or broker: (YAML)")
        return data

    @model_validator(mode="after")
    def _broker_fields(self) -> StreamSource:
        if not self.url:
            default = DEFAULT_URLS[self.broker]
            object.__setattr__(self, "url", default)
        scheme = self.url.split("://", 1)[0] if "://" in self.url else ""
        schemes = {"redis_streams": ("redis", "rediss", "unix"), "nats_jetstream": ("nats", "tls")}
        if scheme not in schemes[self.broker]:
            raise ValueError(
                f"url {self.url!r} is not a {self.broker} address (it starts with "
                f"{' or '.join(s + '://' for s in schemes[self.broker])})"
            )
        if not self.stream.strip():
            raise ValueError("stream is empty")
        if self.broker == "redis_streams" and self.subject is not None:
            raise ValueError("subject is a NATS subject filter; a Redis stream has none")
        if self.broker == "nats_jetstream" and not _NATS_STREAM.fullmatch(self.stream):
            raise ValueError(
                f"stream {self.stream!r} is not a JetStream stream name (no '.', '*', '>', "
                "'/', '\\' or spaces)"
            )
        if self.max_lateness is not None and self.max_lateness <= timedelta(0):
            raise ValueError("max_lateness must be positive (or None: every event is applied)")
        return self

    def to_spec(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=False)

    @property
    def dead_letter_stream(self) -> str:
        """Where messages that cannot be applied go: ``<stream>.dead`` on Redis,
        ``<subject>.dead`` on NATS (``<stream>.dead`` without a subject filter)."""
        base = self.subject if self.broker == "nats_jetstream" and self.subject else self.stream
        return f"{base.rstrip('.>*') or self.stream}.dead"


DEFAULT_URLS = {
    "redis_streams": "redis://127.0.0.1:6379/0",
    "nats_jetstream": "nats://127.0.0.1:4222",
}
_SOURCE_TYPES["stream"] = StreamSource


def register_source_type(cls: type[DataSource]) -> type[DataSource]:
    """Make a new source kind readable from registry specs (a class decorator)."""
    default = cls.model_fields["source_type"].default
    _SOURCE_TYPES[default] = cls
    return cls


def source_from_spec(spec: dict[str, Any]) -> DataSource:
    kind = spec.get("source_type", "file")
    cls = _SOURCE_TYPES.get(kind)
    if cls is None:
        from parity.errors import DefinitionError

        raise DefinitionError(
            f"source {spec.get('name')!r}: unknown source_type {kind!r}; "
            f"known: {sorted(_SOURCE_TYPES)}"
        )
    return cls(**spec)


__all__ = [
    "BROKERS",
    "DataSource",
    "FileSource",
    "Name",
    "PushSource",
    "StreamSource",
    "register_source_type",
    "source_from_spec",
]
