"""What every registered definition shares: a kind, a validated name, metadata, a spec.

A definition is an immutable pydantic model. ``to_spec()`` is its canonical, JSON-ready form
(the registry stores it, diffs it and hashes it); ``from_spec`` reads it back. Objects that
reference others (a view's entities and source) store only the referenced names in the spec.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    field_validator,
)
from pydantic import ValidationError as PydanticValidationError

from parity import types as T
from parity.definitions.lifecycle import Lifecycle
from parity.errors import DefinitionError

# \Z, not $: "$" also matches before a trailing newline, which would let "driver\n" through.
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")

# Longer units first, so "5ms" is five milliseconds and not "5m" followed by a stray "s".
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|us|w|d|h|m|s)")
_UNIT_MICROS = {
    "w": 604_800_000_000,
    "d": 86_400_000_000,
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
    "us": 1,
}


def parse_duration(value: Any) -> timedelta:
    """A duration from a timedelta, seconds, or text such as ``"30d"``, ``"1h30m"``, ``"PT2H"``.

    Text may start with ``-``; units are w, d, h, m, s, ms, us. Text is summed exactly in
    microseconds, so ``format_duration`` output always reads back to the same value.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    try:
        if isinstance(value, int | float):
            return timedelta(seconds=value)
        if isinstance(value, str):
            return _parse_duration_text(value)
    except OverflowError:
        raise ValueError(f"duration out of range: {value!r}") from None
    raise ValueError(f"not a duration: {value!r} (use e.g. '30d', '2h', '1h30m' or a timedelta)")


def _parse_duration_text(value: str) -> timedelta:
    text = value.strip().lower().replace(" ", "")
    sign = -1 if text.startswith("-") else 1
    body = text.removeprefix("-")
    if body.startswith("p"):
        from pydantic import TypeAdapter

        try:
            return TypeAdapter(timedelta).validate_python(value.strip())
        except PydanticValidationError:
            raise ValueError(f"not an ISO 8601 duration: {value!r}") from None
    pos = 0
    micros = Decimal(0)
    for m in _DURATION_RE.finditer(body):
        if m.start() != pos:
            break
        micros += Decimal(m.group(1)) * _UNIT_MICROS[m.group(2)]
        pos = m.end()
    if pos == len(body) and pos > 0:
        whole = int(micros.to_integral_value(rounding=ROUND_HALF_EVEN))
        return timedelta(microseconds=sign * whole)
    raise ValueError(
        f"not a duration: {value!r} (use e.g. '30d', '2h', '1h30m', '45s' or a timedelta)"
    )


def format_duration(td: timedelta) -> str:
    """The shortest text form of a duration that ``parse_duration`` reads back exactly."""
    micros = td // timedelta(microseconds=1)
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000)):
        if micros % size == 0:
            return f"{micros // size}{unit}"
    if micros % 1_000_000 == 0:
        return f"{micros // 1_000_000}s"
    return f"{micros}us"


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(
            f"invalid name {value!r}: use letters, digits and underscores, "
            "starting with a letter or underscore, at most 128 characters"
        )
    return value


Name = Annotated[str, BeforeValidator(_check_name)]
DType = Annotated[
    T.ValueType,
    BeforeValidator(T.parse),
    PlainSerializer(lambda t: t.name, return_type=str),
]
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


class Definition(BaseModel):
    """Base of entities, sources, feature views and feature services."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    kind: ClassVar[str] = "definition"

    name: Name
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = {}
    lifecycle: Lifecycle | None = None
    """draft, active (None), deprecated or retired (``definitions.lifecycle``)."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except PydanticValidationError as exc:
            raise definition_error(self.kind, data.get("name"), exc) from None

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_as_text(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): str(val) for k, val in v.items()}
        return v

    @field_validator("lifecycle", mode="before")
    @classmethod
    def _lifecycle(cls, v: Any) -> Any:
        from parity.definitions.lifecycle import as_lifecycle

        return as_lifecycle(v)

    def to_spec(self) -> dict[str, Any]:
        """The canonical JSON-ready form stored in the registry (an unset lifecycle is left
        out, so objects that never had one keep their content hash)."""
        spec = self.model_dump(mode="json")
        if spec.get("lifecycle", 0) is None:
            del spec["lifecycle"]
        return spec

    @property
    def state(self) -> str:
        """The lifecycle state: ``active`` while none is set."""
        return self.lifecycle.state if self.lifecycle is not None else "active"

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Definition:
        return cls(**spec)

    def content_hash(self) -> str:
        """SHA-256 of the canonical spec: equal specs, equal hashes.

        Worked out once per object and kept with it (a definition is immutable; a copy
        made with changes works its own out), since plans, catalogs and sets of
        definitions ask for it many times."""
        memo: str | None = self.__dict__.get(_HASH_MEMO)
        if memo is None:
            memo = self.__dict__[_HASH_MEMO] = spec_hash(self.stored_spec())
        return memo

    def stored_spec(self) -> dict[str, Any]:
        """``to_spec()``, worked out once and kept with the object: shared by every caller,
        so it must never be changed (take ``to_spec()`` for a dict of your own)."""
        memo: dict[str, Any] | None = self.__dict__.get(_SPEC_MEMO)
        if memo is None:
            memo = self.__dict__[_SPEC_MEMO] = self.to_spec()
        return memo

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        if _SPEC_MEMO in state["__dict__"]:  # quicker worked out again than pickled
            state["__dict__"] = {k: v for k, v in state["__dict__"].items() if k != _SPEC_MEMO}
        return state

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop(_HASH_MEMO, None)  # the copy's fields may differ
        copied.__dict__.pop(_SPEC_MEMO, None)
        return copied

    def __hash__(self) -> int:
        return hash((self.kind, self.content_hash()))

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


_HASH_MEMO = "_parity_content_hash"
_SPEC_MEMO = "_parity_spec"
"""Where ``content_hash`` and ``stored_spec`` keep their results: in the object's
``__dict__`` beside the fields, which pydantic's equality and dumps ignore, and pickling
keeps."""


def spec_hash(spec: dict[str, Any]) -> str:
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def definition_error(kind: str, name: Any, exc: PydanticValidationError) -> DefinitionError:
    """Turn pydantic's report into one naming the object and each bad field."""
    label = f"{kind} {name!r}" if isinstance(name, str) else kind
    parts = []
    for err in exc.errors():
        # FeatureView stores its schema as ``schema_`` (BaseModel owns ``schema``); users wrote "schema".
        loc = ".".join("schema" if p == "schema_" else str(p) for p in err["loc"])
        msg = err["msg"]
        msg = msg.removeprefix("Value error, ")
        if not loc:  # the object's own validator: the label names it already
            parts.append(msg)
            continue
        msg = msg.removeprefix(f"{loc}: ")  # a nested part (Sla, Field) already named itself
        parts.append(f"{loc}: {msg}")
    return DefinitionError(f"{label}: " + "; ".join(parts))
