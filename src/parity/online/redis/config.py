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

    Timeouts (seconds, 0.001 to 60) bound how long a call waits on a server that does not
    answer (down, frozen, unreachable) before it fails with ``OnlineStoreError`` (the server
    answers 503 ``online_store_unavailable``): ``socket_connect_timeout`` for opening a
    connection, ``socket_timeout`` for each reply to a read (and the readiness probe, a
    read), ``write_timeout`` for each send and reply of a write, delete or set-up (a write's
    script runs over 1,000 keys, and a batch job's pipeline waits for the server to work
    through the commands before it, so writes get longer). A call that timed out is not
    sent again, so one read waits at most about ``socket_timeout`` (plus the connect and
    reply timeouts when it had to connect); a lost connection is retried once at once. A
    write that timed out may still land when the server wakes up (newest-wins: sending it
    again is safe).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["redis"] = "redis"
    url: str = "redis://127.0.0.1:6379/0"
    cluster: bool | list[str] = False
    key_prefix: str = "parity:"
    expire_grace_seconds: int = Field(default=3600, ge=0)
    # strict: a number, not a string or a bool
    socket_timeout: float = Field(
        default=0.5, ge=0.001, le=60.0, strict=True, description="seconds to wait for a reply"
    )
    write_timeout: float = Field(
        default=2.0, ge=0.001, le=60.0, strict=True, description="seconds to wait on a write"
    )
    socket_connect_timeout: float = Field(
        default=0.25, ge=0.001, le=60.0, strict=True, description="seconds to wait to connect"
    )
