"""Helpers of the access tests."""

from __future__ import annotations

from datetime import UTC, datetime

ROLES = """
kind: role
name: reader
permissions:
  - {actions: [describe, read_online], kinds: [feature_view], names: ["driver_*"]}
"""


class Now:
    """A settable clock (token expiry)."""

    def __init__(self) -> None:
        self.value = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.value
