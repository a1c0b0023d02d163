"""Registry backup and migration (``parity.registry.transfer``, ``parity registry export |
import``) on real databases: SQLite -> PostgreSQL -> SQLite gives the same file byte for
byte and the same history through the Registry API, for a hand-made history and for random
ones; a bad file is refused naming the row and field and changes nothing; a project with
definitions is refused unless ``replace``, which replaces them in one transaction and moves
the revision on so other processes' caches read again; an export of an older schema is
brought to head by the migrations; the import waits for the apply lock like an apply."""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_utils import parity, table_rows, wide
from contract.backends import REGISTRY_BACKENDS
from parity.cli import app
from parity.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Model,
    OnDemandFeatureView,
    Permission,
    Role,
)
from parity.errors import PermissionDeniedError, RegistryError
from parity.governance.context import Actor
from parity.registry import Registry
from parity.registry.transfer import export_registry, import_registry
from parity.store import FeatureStore

POSTGRES_URL = os.environ.get(
    "PARITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
"""The pinned ``exported_at``: with it, two exports of equal registries are equal bytes."""

BACKENDS = [
    pytest.param(b, marks=[pytest.mark.postgres] if b == "postgresql" else [])
    for b in REGISTRY_BACKENDS
]


# -- where registries live ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_schemas() -> Iterator[Callable[[], str]]:
    """Names of PostgreSQL schemas nobody created yet (Parity creates them on the first
    write), all dropped at the end of the module; PostgreSQL not answering fails."""
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # a clear failure, never a skip
        engine.dispose()
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required: {exc}", pytrace=False)
    names: list[str] = []

    def new() -> str:
        names.append(f"parity_test_tx_{uuid.uuid4().hex[:10]}")
        return names[-1]

    yield new
    with engine.begin() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    engine.dispose()


@pytest.fixture(scope="module")
def pg_schema(pg_schemas: Callable[[], str]) -> str:
    """One schema for the module's PostgreSQL registries, kept apart by project."""
    return pg_schemas()


def new_project() -> str:
    return f"tx_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def open_registry(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Registry]]:
    """``open_registry(backend, project=None, **kwargs)``: a registry nobody wrote to, in a
    new SQLite file or a new PostgreSQL schema (so two may hold one project); closed after."""
    opened: list[Registry] = []

    def open_(backend: str, project: str | None = None, **kwargs: Any) -> Registry:
        project = project or new_project()
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
            reg = Registry(url, project, **kwargs)
        else:
            schema = request.getfixturevalue("pg_schemas")()
            reg = Registry(POSTGRES_URL, project, schema=schema, **kwargs)
        opened.append(reg)
        return reg

    yield open_
    for reg in opened:
        reg.close()


# -- definitions and histories --------------------------------------------------------------


def driver(description: str = "") -> Entity:
    return Entity("driver", join_keys=["driver_id"], dtype="Int64", description=description)


def source(path: str = "data/driver_stats.parquet") -> FileSource:
    return FileSource(name="driver_stats_src", path=path)


def stats(ttl: str = "2h", extra: bool = False, description: str = "") -> FeatureView:
    fields = [Field(name="conv_rate", dtype="Float32"), Field(name="trips", dtype="Int64")]
    if extra:
        fields.append(Field(name="acc_rate", dtype="Float64"))
    return FeatureView(
        name="driver_stats", entities=["driver"], source="driver_stats_src", schema=fields,
        ttl=ttl, description=description,
    )  # fmt: skip


def ranking(features: tuple[str, ...] = ("driver_stats:conv_rate",)) -> FeatureService:
    return FeatureService(name="ranking", features=list(features))


def ranker() -> Model:
    return Model("ranker", features="ranking")


def reader(actions: tuple[str, ...] = ("read_online",)) -> Role:
    return Role("reader", permissions=[Permission(actions=actions)])


def conv_doubled(row: dict[str, Any]) -> dict[str, Any]:
    return {"conv_doubled": row["conv_rate"] * 2}


def on_demand() -> OnDemandFeatureView:
    """Its version row carries the function's source (the ``code`` column)."""
    schema = [Field(name="conv_doubled", dtype="Float64")]
    return OnDemandFeatureView(
        name="conv_doubled", sources=["driver_stats:conv_rate"], schema=schema, udf=conv_doubled
    )


def rich_history(reg: Registry) -> None:
    """Creates, minor, major and patch updates, a delete and a create again, by several
    authors: every kind but on-demand views (their ``code`` is newer than schema 0007)."""
    reg.apply([driver(), source(), stats(), ranking()], author="alice")
    reg.apply([stats(extra=True)], author="bob")  # minor
    reg.apply([stats(extra=True, ttl="1h")], author="bob")  # major
    reg.apply([stats(extra=True, ttl="1h", description="per driver"), ranker(), reader()])
    live = [driver("the driver"), source(), stats(extra=True, ttl="1h", description="per driver")]
    reg.apply([*live, ranker(), reader()], delete_missing=True, author="carol")  # drops ranking
    reg.apply([ranking(("driver_stats:conv_rate", "driver_stats:trips"))], author="dave")


def names(reg: Registry, path: Path) -> list[str]:
    doc = json.loads(path.read_text())
    return sorted({r["name"] for r in doc["tables"]["parity_versions"]})


def assert_same_registry(a: Registry, b: Registry, every: list[str]) -> None:
    """What the Registry API reads back is equal: live objects, revision, each history."""
    assert b.revision() == a.revision()
    assert b.list() == a.list()
    for name in every:
        assert b.history(name) == a.history(name), name


def export_bytes(reg: Registry, path: Path) -> bytes:
    export_registry(reg, path, exported_at=AT)
    return path.read_bytes()


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_sqlite_to_postgres_to_sqlite_is_the_same_file_and_the_same_history(
    tmp_path: Path, pg_schemas: Callable[[], str]
):
    project = new_project()
    a = Registry(f"sqlite:///{tmp_path / 'a.db'}", project)
    b = Registry(POSTGRES_URL, project, schema=pg_schemas())  # a schema nobody created
    c = Registry(f"sqlite:///{tmp_path / 'c' / 'c.db'}", project)  # nor its folder
    try:
        rich_history(a)
        a.apply([on_demand()])
        first = export_bytes(a, tmp_path / "a.json")
        done = import_registry(b, tmp_path / "a.json")
        assert done.revision == a.revision() == 7
        assert (done.objects, done.versions) == (
            {"entity": 1, "source": 1, "feature_view": 1, "on_demand_feature_view": 1,
             "feature_service": 1, "model": 1, "role": 1},
            {"entity": 2, "source": 1, "feature_view": 4, "on_demand_feature_view": 1,
             "feature_service": 3, "model": 1, "role": 1},
        )  # fmt: skip
        assert 'row["conv_rate"] * 2' in (b.history("conv_doubled")[0].code or "")
        assert export_bytes(b, tmp_path / "b.json") == first
        import_registry(c, tmp_path / "b.json")
        assert export_bytes(c, tmp_path / "c.json") == first
        every = names(a, tmp_path / "a.json")
        assert_same_registry(a, b, every)
        assert_same_registry(a, c, every)
        versions = [(r.number, r.version, r.action) for r in c.history("ranking")]
        assert versions == [(1, "1.0.0", "create"), (2, "1.0.0", "delete"), (3, "2.0.0", "create")]
        # the next apply continues the history exactly as it does in the source
        for reg in (a, b):
            assert reg.apply([stats(extra=True, ttl="3h")]).revision == 8
        got = [(r.number, r.version, r.action, r.revision) for r in b.history("driver_stats")]
        assert got == [
            (r.number, r.version, r.action, r.revision) for r in a.history("driver_stats")
        ]
    finally:
        for reg in (a, b, c):
            reg.close()


Step = tuple[dict[str, int], bool]
"""One apply: which objects (name -> variant) and whether the others are deleted."""

VARIANTS: dict[str, list[Any]] = {
    "driver": [driver(), driver("who drives")],
    "driver_stats_src": [source(), source("data/other.parquet")],
    "driver_stats": [stats(), stats(extra=True), stats(ttl="1h"), stats(description="d")],
    "ranking": [ranking(), ranking(("driver_stats:trips",))],
    "ranker": [ranker()],
    "reader": [reader(), reader(("read_online", "read_offline"))],
}

steps = st.lists(
    st.tuples(
        st.dictionaries(
            st.sampled_from(sorted(VARIANTS)), st.integers(min_value=0, max_value=3), max_size=6
        ),
        st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.postgres
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps)
def test_random_histories_round_trip_through_postgres(
    history: list[Step], tmp_path: Path, pg_schema: str
):
    project = new_project()
    a = Registry(f"sqlite:///{tmp_path / f'{project}.db'}", project)
    b = Registry(POSTGRES_URL, project, schema=pg_schema)
    try:
        for chosen, delete_missing in history:
            objs = [VARIANTS[n][i % len(VARIANTS[n])] for n, i in sorted(chosen.items())]
            a.apply(objs, delete_missing=delete_missing)
        first = export_bytes(a, tmp_path / f"{project}-a.json")
        import_registry(b, tmp_path / f"{project}-a.json")
        assert export_bytes(b, tmp_path / f"{project}-b.json") == first
        assert_same_registry(a, b, names(a, tmp_path / f"{project}-a.json"))
    finally:
        a.close()
        b.close()


def test_an_export_of_an_older_schema_imports_as_an_in_place_upgrade_would(
    tmp_path: Path, open_registry: Callable[..., Registry]
):
    """A 0007 file has no semver, note or code: migration 0008 numbers the versions from
    their diffs, so the import equals the registry the history was written in."""
    a = open_registry("sqlite")
    rich_history(a)
    head = export_bytes(a, tmp_path / "a.json")
    doc = json.loads(head)
    doc["header"]["schema_revision"] = "0007"
    for row in doc["tables"]["parity_versions"]:
        for column in ("semver", "note", "code"):
            del row[column]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    b = open_registry("sqlite", project=a.project)
    assert import_registry(b, tmp_path / "old.json").schema_revision == "0007"
    assert export_bytes(b, tmp_path / "b.json") == head
    assert [r.version for r in b.history("driver_stats")] == ["1.0.0", "1.1.0", "2.0.0", "2.0.1"]
    # a bad row of an old file is named too (the old schema's CHECK refused it)
    doc["tables"]["parity_versions"][0]["action"] = "remove"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    empty = open_registry("sqlite")
    with pytest.raises(RegistryError, match="entity 'driver' version 1: field 'action': 'remove'"):
        import_registry(empty, tmp_path / "bad.json")
    assert not empty.exists()


def test_an_import_may_rename_the_project(tmp_path: Path, open_registry: Callable[..., Registry]):
    a = open_registry("sqlite")
    rich_history(a)
    export_registry(a, tmp_path / "a.json", exported_at=AT)
    b = open_registry("sqlite", project="renamed")
    done = import_registry(b, tmp_path / "a.json")
    assert (done.project, done.file_project) == ("renamed", a.project)
    assert_same_registry(a, b, names(a, tmp_path / "a.json"))
    again = json.loads(export_bytes(b, tmp_path / "b.json"))
    assert again["header"]["project"] == "renamed"
    assert again["tables"] == json.loads((tmp_path / "a.json").read_text())["tables"]


# -- refusals -------------------------------------------------------------------------------


@pytest.fixture
def exported(tmp_path: Path, open_registry: Callable[..., Registry]) -> dict[str, Any]:
    """A good export (as JSON) of the rich history."""
    a = open_registry("sqlite")
    rich_history(a)
    export_registry(a, tmp_path / "good.json", exported_at=AT)
    return json.loads((tmp_path / "good.json").read_text())


def versions_of(doc: dict[str, Any], kind: str, name: str) -> list[dict[str, Any]]:
    rows = doc["tables"]["parity_versions"]
    return [r for r in rows if r["kind"] == kind and r["name"] == name]


def live(doc: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    (row,) = [r for r in doc["tables"]["parity_objects"] if (r["kind"], r["name"]) == (kind, name)]
    return row


def drop_row(doc: dict[str, Any], table: str, row: dict[str, Any]) -> None:
    doc["tables"][table].remove(row)
    doc["header"]["counts"][table] -= 1


def _set(row: dict[str, Any], key: str, value: Any) -> None:
    row[key] = value


VIEW = ("feature_view", "driver_stats")
BAD: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "not a header": (lambda d: d.pop("header"), "is not a Parity registry export"),
    "a newer format": (
        lambda d: _set(d["header"], "format_version", 2),
        "header.format_version is 2; this Parity (0.1.0) reads version 1; import it with a newer",
    ),
    "a newer schema": (
        lambda d: _set(d["header"], "schema_revision", "0999"),
        "written at registry schema revision '0999', which this Parity",
    ),
    "cut short": (
        lambda d: d["tables"]["parity_versions"].pop(),
        "header.counts.parity_versions is 12 but the file holds 11 row(s)",
    ),
    "an unknown table": (
        lambda d: _set(d["tables"], "parity_audit", []),
        "holds table(s) parity_audit this Parity does not carry",
    ),
    "a missing field": (
        lambda d: versions_of(d, *VIEW)[1].pop("author"),
        "parity_versions feature_view 'driver_stats' version 2: field 'author' is missing",
    ),
    "an unknown field": (
        lambda d: _set(versions_of(d, *VIEW)[0], "colour", "red"),
        "version 1: field 'colour' is not a column of parity_versions",
    ),
    "a bad time": (
        lambda d: _set(versions_of(d, *VIEW)[2], "applied_at", "2026-01-01 12:00"),
        "version 3: field 'applied_at': '2026-01-01 12:00' has no UTC offset",
    ),
    "a wrong type": (
        lambda d: _set(versions_of(d, *VIEW)[2], "revision", "3"),
        "version 3: field 'revision': must be a whole number, got '3'",
    ),
    "too long": (
        lambda d: _set(versions_of(d, *VIEW)[0], "author", "x" * 300),
        "version 1: field 'author': is 300 characters long, at most 256 fit",
    ),
    "an unknown kind": (
        lambda d: [_set(r, "kind", "widget") for r in versions_of(d, "model", "ranker")],
        "parity_versions widget 'ranker' version 1: field 'kind': unknown kind 'widget'",
    ),
    "a gap in the versions": (
        lambda d: drop_row(d, "parity_versions", versions_of(d, *VIEW)[1]),
        "parity_versions feature_view 'driver_stats': versions [1, 3, 4] are not 1 to 3",
    ),
    "an edited spec": (
        lambda d: _set(versions_of(d, *VIEW)[0]["spec"], "ttl", "PT9H"),
        "version 1: field 'content_hash': is not the hash of its spec",
    ),
    "a live object ahead of its history": (
        lambda d: _set(live(d, *VIEW), "version", 5),
        "parity_objects feature_view 'driver_stats': field 'version': points at version 5, "
        "but its history in the file is at version 4",
    ),
    "a live object twice": (
        lambda d: [
            d["tables"]["parity_objects"].append(dict(live(d, *VIEW))),
            d["header"]["counts"].update(parity_objects=7),
        ],
        "parity_objects feature_view 'driver_stats': appears twice",
    ),
    "a live object missing": (
        lambda d: drop_row(d, "parity_objects", live(d, "entity", "driver")),
        "parity_objects: entity 'driver' is missing, though its history has it live "
        "(version 2: update)",
    ),
    "a revision after the counter": (
        lambda d: _set(d["tables"]["parity_projects"][0], "revision", 5),
        "field 'revision': 6 is not between 1 and the project's revision 5",
    ),
    "a create of a live object": (
        lambda d: _set(versions_of(d, *VIEW)[1], "action", "create"),
        "version 2: field 'action': a create of an object that is live",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_is_refused_naming_the_row_and_field_and_changes_nothing(
    case: str, exported: dict[str, Any], tmp_path: Path, open_registry: Callable[..., Registry]
):
    spoil, message = BAD[case]
    doc = copy.deepcopy(exported)
    spoil(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    empty = open_registry("sqlite")
    with pytest.raises(RegistryError) as caught:
        import_registry(empty, bad)
    assert message in str(caught.value)
    assert not empty.exists()  # not even created
    held = open_registry("sqlite")  # with replace too: nothing changes
    held.apply([driver(), source()])
    before = export_bytes(held, tmp_path / "before.json")
    with pytest.raises(RegistryError) as again:
        import_registry(held, bad, replace=True)
    assert message in str(again.value)
    assert export_bytes(held, tmp_path / "after.json") == before


def test_not_json_and_a_missing_file_are_clear_errors(
    tmp_path: Path, open_registry: Callable[..., Registry]
):
    reg = open_registry("sqlite")
    (tmp_path / "x.json").write_text('{"header": ')
    with pytest.raises(RegistryError, match=r"x.json is not a Parity registry export \(not JSON"):
        import_registry(reg, tmp_path / "x.json")
    with pytest.raises(RegistryError, match="could not read the registry export"):
        import_registry(reg, tmp_path / "missing.json")
    with pytest.raises(RegistryError, match=r"does not exist .*nothing to export"):
        export_registry(reg, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_project_with_definitions_is_refused_unless_replace(
    backend: str, tmp_path: Path, open_registry: Callable[..., Registry]
):
    a = open_registry(backend)
    a.apply([driver(), source()])
    export_registry(a, tmp_path / "a.json", exported_at=AT)
    b = open_registry(backend)
    rich_history(b)
    before = export_bytes(b, tmp_path / "before.json")
    with pytest.raises(RegistryError) as caught:
        import_registry(b, tmp_path / "a.json")
    assert f"project {b.project!r} in the registry at {b.location} already holds 6 " in str(
        caught.value
    )
    assert "--replace" in str(caught.value)
    assert export_bytes(b, tmp_path / "after.json") == before
    # a project whose objects were all deleted still has history: refused too
    c = open_registry(backend)
    c.apply([driver()])
    c.apply([], delete_missing=True)
    with pytest.raises(RegistryError, match=r"already holds 0 object\(s\) and 2 version"):
        import_registry(c, tmp_path / "a.json")


@pytest.mark.parametrize("backend", BACKENDS)
def test_replace_replaces_everything_in_one_transaction_and_moves_the_revision_on(
    backend: str, tmp_path: Path, open_registry: Callable[..., Registry]
):
    a = open_registry(backend)
    rich_history(a)  # revision 6
    export_registry(a, tmp_path / "a.json", exported_at=AT)
    b = open_registry(backend, project=a.project)
    for ttl in ("1h", "2h", "3h", "4h", "5h", "6h", "7h"):
        b.apply([driver(), source(), stats(ttl=ttl)])  # revision 7, another history
    done = import_registry(b, tmp_path / "a.json", replace=True)
    assert done.replaced == 3
    # the file's revision (6) would move the counter back: it moves on instead
    assert done.revision == b.revision() == 8
    assert b.list() == a.list()
    for name in names(a, tmp_path / "a.json"):
        assert b.history(name) == a.history(name)
    # into a project behind the file, the file's revision is kept
    c = open_registry(backend, project=a.project)
    c.apply([driver("old")])
    assert import_registry(c, tmp_path / "a.json", replace=True).revision == 6
    assert export_bytes(c, tmp_path / "c.json") == (tmp_path / "a.json").read_bytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_import_waits_for_the_apply_lock_like_an_apply(
    backend: str, tmp_path: Path, open_registry: Callable[..., Registry]
):
    a = open_registry(backend)
    rich_history(a)
    export_registry(a, tmp_path / "a.json", exported_at=AT)
    target = open_registry(backend, timeout=0.5)
    target.apply([driver()])
    holder = Registry(target.url.render_as_string(hide_password=False), target.project,
                      schema=target.schema)  # fmt: skip
    try:
        with holder._write("hold the apply lock") as conn:
            holder._lock_project(conn)  # what an apply holds while it writes
            with pytest.raises(RegistryError, match="could not import"):
                import_registry(target, tmp_path / "a.json", replace=True)
    finally:
        holder.close()
    assert [o.name for o in target.list()] == ["driver"]
    assert import_registry(target, tmp_path / "a.json", replace=True).revision == 6


def test_other_stores_caches_read_the_imported_definitions(tmp_path: Path):
    """One store imports; another (standing for another process, its catalog cached) sees
    the new definitions at its next check, because the revision moved."""
    a = Registry(f"sqlite:///{tmp_path / 'a.db'}", "shop")
    rich_history(a)
    export_registry(a, tmp_path / "a.json")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "parity.yaml").write_text(
        "project: shop\nregistry: {path: data/registry.db, cache_ttl_seconds: 0}\n"
        "offline_store: { type: duckdb }\n"
    )
    with FeatureStore(repo) as importer, FeatureStore(repo) as other:
        for hours in range(1, 7):
            importer.registry.apply([driver(), source(), stats(ttl=f"{hours}h")])
        assert other.get_feature_view("driver_stats").ttl == stats(ttl="6h").ttl
        assert importer.catalog().revision == 6  # cached, at the same number as the file's
        importer.import_registry(tmp_path / "a.json", replace=True)
        assert importer.catalog().revision == other.catalog().revision == 7
        assert other.get_feature_view("driver_stats") == a.get("feature_view", "driver_stats")
        assert [m.name for m in other.list_models()] == ["ranker"]
    a.close()


def test_with_auth_on_only_an_admin_may_export_or_import(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "parity.yaml").write_text(
        "project: shop\nregistry: data/registry.db\noffline_store: { type: duckdb }\n"
        "auth: {enabled: true}\n"
    )
    admin = Actor("root", roles=("admin",))
    with FeatureStore(repo, principal=admin) as store:
        store.registry.apply([driver(), source()])
        assert store.export_registry(tmp_path / "r.json").versions == {"entity": 1, "source": 1}
        assert store.import_registry(tmp_path / "r.json", replace=True).replaced == 2
        kinds = [r.action for r in store.governance.audit.records(limit=None)]
        assert {"registry_export", "registry_import"} <= set(kinds)
    with FeatureStore(repo, principal=Actor("eve", roles=())) as store:
        with pytest.raises(
            PermissionDeniedError, match="'eve' \\(roles: none\\) may not admin project 'shop'"
        ):
            store.export_registry(tmp_path / "eve.json")
        with pytest.raises(PermissionDeniedError):
            store.import_registry(tmp_path / "r.json", replace=True)
    assert not (tmp_path / "eve.json").exists()


# -- the command ----------------------------------------------------------------------------


def registry_to(repo: Path, value: str) -> None:
    config = repo / "parity.yaml"
    lines = [
        f"registry: {value}" if line.startswith("registry:") else line
        for line in config.read_text().splitlines()
    ]
    config.write_text("\n".join(lines) + "\n")


def without_exported_at(text: str) -> str:
    """The file but its one line that differs between two exports: the header's time."""
    lines = text.splitlines()
    found = [i for i, line in enumerate(lines) if line.startswith('  "exported_at": ')]
    assert len(found) == 1
    return "\n".join(lines[: found[0]] + lines[found[0] + 1 :])


@pytest.mark.postgres
def test_the_commands_move_a_repo_from_sqlite_to_postgres_and_back(
    tmp_path: Path, pg_schemas: Callable[[], str]
):
    src, dst, back = tmp_path / "src", tmp_path / "dst", tmp_path / "back"
    for repo in (src, dst, back):
        parity("init", "shop", "--dir", repo)
    registry_to(dst, f"{{url: '{POSTGRES_URL}', schema: {pg_schemas()}}}")
    parity("apply", "--repo", src, "--author", "alice")
    out = parity("registry", "export", "--repo", src, "--out", tmp_path / "a.json")
    assert f"Exported project 'shop' to {tmp_path / 'a.json'}: revision 1" in out.stdout
    assert ["feature view", "3", "3"] in table_rows(out.stdout)
    done = parity("registry", "import", tmp_path / "a.json", "--repo", dst)
    assert "Imported" in done.stdout and ["total", "6", "6"] in table_rows(done.stdout)
    parity("registry", "export", "--repo", dst, "--out", tmp_path / "b.json")
    parity("registry", "import", tmp_path / "b.json", "--repo", back)
    stdout = parity("registry", "export", "--repo", back, "--out", "-").stdout
    first = (tmp_path / "a.json").read_text()
    assert without_exported_at((tmp_path / "b.json").read_text()) == without_exported_at(first)
    assert without_exported_at(stdout) == without_exported_at(first)
    history = parity("history", "driver_hourly_stats", "--repo", back).stdout
    assert "alice" in history
    # the imported repo is the repo's registry: applying the repo registers nothing new
    parity("apply", "--repo", back)
    with FeatureStore(back) as store:
        assert store.registry.revision() == 1


def test_the_commands_refuse_and_replace(tmp_path: Path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for repo in (src, dst):
        parity("init", "shop", "--dir", repo)
        parity("apply", "--repo", repo)
    parity("registry", "export", "--repo", src, "--out", tmp_path / "a.json")
    refused = parity("registry", "import", tmp_path / "a.json", "--repo", dst, code=1)
    assert "error: project 'shop' in the registry at" in refused.stderr
    assert "already holds 6 object(s)" in refused.stderr
    replaced = parity("registry", "import", tmp_path / "a.json", "--repo", dst, "--replace")
    assert "replacing 6 object(s)" in replaced.stdout
    assert "revision 2" in replaced.stdout  # 1 in the file, 1 here: moved on
    piped = wide.invoke(
        app,
        ["registry", "import", "-", "--repo", str(dst), "--replace"],
        input=(tmp_path / "a.json").read_text(),
    )
    assert piped.exit_code == 0, piped.stderr
    assert "revision 3" in piped.stdout
    doc = json.loads((tmp_path / "a.json").read_text())
    doc["tables"]["parity_versions"][0]["applied_at"] = "noon"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    bad = parity("registry", "import", tmp_path / "bad.json", "--repo", dst, "--replace", code=1)
    assert "not imported, nothing written; 1 problem(s)" in bad.stderr
    assert "parity_versions entity 'driver' version 1: field 'applied_at'" in bad.stderr
    missing = tmp_path / "none"
    parity("init", "shop", "--dir", missing)
    gone = parity("registry", "export", "--repo", missing, "--out", tmp_path / "n.json", code=1)
    assert "does not exist" in gone.stderr and not (tmp_path / "n.json").exists()
