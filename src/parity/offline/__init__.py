"""Offline engines: point-in-time correct training data from the sources' history."""

from parity.offline.base import OfflineEngine, PointInTimeJoin, RetrievalJob, ViewJoin

__all__ = ["OfflineEngine", "PointInTimeJoin", "RetrievalJob", "ViewJoin"]
