"""An object's lifecycle: draft → active → deprecated → retired.

``lifecycle`` on any definition (``FeatureView(..., lifecycle="deprecated")``, YAML
``lifecycle: {state: deprecated, reason: ..., successor: ...}``) or set on the registered
object with ``parity lifecycle NAME STATE`` / ``store.set_lifecycle``. While unset an object
is active, and its spec (and content hash) stay as they were. A state set on the registered
object is kept when the repo's files say nothing of it, so ``parity apply`` of the folder
does not undo ``parity lifecycle``; a state written in the files wins.

What each state means for reads (``parity.lifecycle``): a draft is served only to callers
that ask for drafts; a deprecated object is served with a warning; a retired one is refused,
naming its successor.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["STATES", "Lifecycle", "State"]

State = Literal["draft", "active", "deprecated", "retired"]
STATES: tuple[State, ...] = ("draft", "active", "deprecated", "retired")


class Lifecycle(BaseModel):
    """A state, why it was set, and what replaces the object (a name of the same project)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: State
    reason: str = ""
    successor: str | None = None

    @field_validator("successor", mode="before")
    @classmethod
    def _successor(cls, v: Any) -> Any:
        if v is None or v == "":
            return None
        if hasattr(v, "kind") and hasattr(v, "name"):  # a definition given as the successor
            return v.name
        if not isinstance(v, str):
            raise ValueError(f"the successor is an object's name, got {type(v).__name__}")
        return v.strip()  # apply checks that an object of that name exists

    def describe(self) -> str:
        """``deprecated (use driver_stats_v2): too slow``."""
        text: str = self.state
        if self.successor:
            text += f" (use {self.successor})"
        return text + (f": {self.reason}" if self.reason else "")


def as_lifecycle(value: Any) -> Any:
    """``"deprecated"`` as ``Lifecycle(state="deprecated")``; a mapping or a Lifecycle as is."""
    if isinstance(value, str):
        return {"state": value.strip().lower()}
    return value
