"""Entities: the things features describe, identified by one or more join keys."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import field_validator

from parity.definitions.base import Definition, DType, Name


class Entity(Definition):
    """A business object (driver, customer) and the key columns that identify it.

    ``dtype`` is the type of every join key when given; sources and entity frames are then
    checked against it. With several join keys, every row is identified by all of them.
    """

    kind: ClassVar[str] = "entity"

    join_keys: list[Name]
    dtype: DType | None = None

    def __init__(self, name: str, join_keys: list[str] | str | None = None, **data: Any) -> None:
        if join_keys is None:
            join_keys = [name]
        super().__init__(name=name, join_keys=join_keys, **data)

    @field_validator("join_keys", mode="before")
    @classmethod
    def _keys(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list | tuple):
            if not v:
                raise ValueError("an entity needs at least one join key")
            if len(set(v)) != len(v):
                raise ValueError(f"join keys repeat: {list(v)}")
            return list(v)
        return v
