"""Data sources: where a view's rows come from."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import field_validator, model_validator

from parity.definitions.base import Definition, Name


class DataSource(Definition):
    """Base of every source kind; ``source_type`` tells them apart in the registry."""

    kind: ClassVar[str] = "source"
    source_type: str = "base"

    timestamp_field: str = "event_timestamp"
    created_timestamp_field: str | None = None
    field_mapping: dict[str, str] = {}

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


_SOURCE_TYPES: dict[str, type[DataSource]] = {"file": FileSource}


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


__all__ = ["DataSource", "FileSource", "Name", "register_source_type", "source_from_spec"]
