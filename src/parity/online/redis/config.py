"""The config of the Redis online store (``online_store: {type: redis, ...}``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RedisOnlineConfig(BaseModel):
    """Redis or Redis Cluster.

    ``cluster: true`` treats ``url`` as one node of a cluster; a list of ``host:port``
    strings names the cluster's start-up nodes. ``key_prefix`` keeps several projects or
    test runs apart in one database. Records expire ``expire_grace_seconds`` after their TTL
    ran out, so a read just after expiry still reports ``expired`` rather than ``missing``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["redis"] = "redis"
    url: str = "redis://127.0.0.1:6379/0"
    cluster: bool | list[str] = False
    key_prefix: str = "parity:"
    expire_grace_seconds: int = Field(default=3600, ge=0)
    socket_timeout: float = Field(default=5.0, gt=0)
