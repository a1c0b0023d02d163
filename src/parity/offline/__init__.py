"""Offline engines: point-in-time correct training data from the sources' history.

``base`` is the contract every engine keeps (the point-in-time rule in its docstring) and
its optional abilities (``SupportsSQL``, ``SupportsEvents``); ``entity_frame`` reads what
callers pass as entity rows; ``log`` is the durable offline side of pushes. Each engine is a
subpackage owning its config and code (``duckdb/``), found by its ``type:`` through the
``parity.offline_engines`` entry points (``parity.plugins``).
"""

from parity.offline.base import OfflineEngine, PointInTimeJoin, RetrievalJob, ViewJoin

__all__ = ["OfflineEngine", "PointInTimeJoin", "RetrievalJob", "ViewJoin"]
