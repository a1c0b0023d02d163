"""feature_store.yaml -> parity.yaml: what maps, and what is listed as not converted."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from parity.adopt.config_map import convert_config, redis_url
from parity.config import RepoConfig


def converted(**config):
    out, problems = convert_config({"project": "demo", **config})
    reasons: dict[str, str] = {}
    for p in problems:
        assert not p.dropped  # settings are left out, the repo is still written
        reasons[p.name] = "; ".join(filter(None, [reasons.get(p.name), p.reason]))
    return out, reasons


@pytest.mark.parametrize(
    ("connection", "cluster", "url", "nodes"),
    [
        ("localhost:6379", False, "redis://localhost:6379/0", False),
        ("redis:6380,db=2", False, "redis://redis:6380/2", False),
        ("r:6379,db=1,password=p@ss:w,ssl=true", False, "rediss://:p%40ss%3Aw@r:6379/1", False),
        ("r:6379,username=app,password=x", False, "redis://app:x@r:6379/0", False),
        ("a:7000,b:7001,password=x", True, "redis://:x@a:7000/0", ["a:7000", "b:7001"]),
        ("a:7000", True, "redis://a:7000/0", True),
        ("cache", False, "redis://cache:6379/0", False),
    ],
)
def test_redis_connection_strings_become_urls(connection, cluster, url, nodes):
    got, got_cluster, dropped = redis_url(connection, cluster=cluster)
    assert (got, got_cluster, dropped) == (url, nodes, [])


def test_redis_settings_parity_has_not_are_listed():
    out, problems = converted(
        online_store={
            "type": "redis",
            "connection_string": "r:6379,db=3,socket_keepalive=true",
            "key_ttl_seconds": 600,
        }
    )
    assert out["online_store"] == {"type": "redis", "url": "redis://r:6379/3"}
    assert "'socket_keepalive' is not converted" in problems["online_store"]
    reasons = [p.reason for p in convert_config({"project": "d", "online_store": {
        "type": "redis", "key_ttl_seconds": 600}})[1]]  # fmt: skip
    assert reasons == ["redis key_ttl_seconds: 600 is not converted"]


def test_registries():
    assert converted(registry="data/registry.db") == (
        {**_base(), "registry": "data/registry.db"},
        {},
    )
    out, problems = converted(registry={"registry_type": "sql", "path": "postgresql://h/db"})
    assert out["registry"] == {"url": "postgresql://h/db"}
    assert "Parity keeps its own tables there" in problems["registry"]
    for remote in (
        {"registry_type": "remote", "path": "grpc://feast:6570"},
        "s3://bucket/registry.pb",
        "gs://bucket/registry.pb",
    ):
        out, problems = converted(registry=remote)
        assert out["registry"] == "data/registry.db"
        assert "registry" in problems


def test_online_stores_parity_lacks_fall_back_to_sqlite_and_are_listed():
    out, problems = converted(online_store={"type": "dynamodb", "region": "x"})
    assert out["online_store"] == {"type": "sqlite", "path": "data/online.db"}
    assert "'dynamodb'" in problems["online_store"]
    assert converted()[0]["online_store"] == {"type": "sqlite", "path": "data/online.db"}


def test_other_settings_are_listed_and_the_harmless_ones_ignored():
    out, problems = converted(
        provider="aws",
        offline_store={"type": "snowflake.offline"},
        batch_engine={"type": "spark.engine"},
        auth={"type": "oidc"},
        feature_server={"enabled": True},
        entity_key_serialization_version=3,
    )
    assert out["offline_store"] == {"type": "duckdb"}
    assert set(problems) == {"provider", "offline_store", "batch_engine", "auth", "feature_server"}
    _, quiet = converted(provider="local", offline_store={"type": "file"}, auth={"type": "no_auth"})
    assert quiet == {}


def test_a_project_name_parity_refuses_is_made_valid():
    out, problems = convert_config({"project": "my-project"})
    assert out["project"] == "my_project"
    assert "'my-project' is not a Parity name" in problems[0].reason


@given(
    host=st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    port=st.integers(1, 65535),
    db=st.integers(0, 15),
    password=st.none() | st.text(st.characters(blacklist_characters=",="), min_size=1),
    ssl=st.booleans(),
)
@example(host="h", port=6379, db=0, password="\ud800", ssl=False)
def test_every_redis_url_made_is_one_parity_accepts(
    host, port, db, password, ssl, tmp_path_factory
):
    parts = [f"{host}:{port}", f"db={db}", f"ssl={'true' if ssl else 'false'}"]
    if password is not None:
        parts.append(f"password={password}")
    out, problems = convert_config(
        {"project": "p", "online_store": {"type": "redis", "connection_string": ",".join(parts)}}
    )
    if password is not None and not _encodable(password):
        # A lone surrogate (a YAML escape) cannot be in a URL: left out, and said so.
        assert [p.reason for p in problems] == [
            "redis connection setting 'password (not UTF-8 text)' is not converted"
        ]
        password = None
    else:
        assert problems == []
    config = RepoConfig.from_dict(out, repo_path=Path("."))
    url = config.online_store.url  # type: ignore[attr-defined]
    import redis

    kwargs = redis.connection.parse_url(url)
    assert (kwargs["host"], kwargs["port"], kwargs.get("db", 0)) == (host, port, db)
    assert kwargs.get("password") == password
    assert url.startswith("rediss://" if ssl else "redis://")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _base():
    return {
        "project": "demo",
        "offline_store": {"type": "duckdb"},
        "online_store": {"type": "sqlite", "path": "data/online.db"},
    }
