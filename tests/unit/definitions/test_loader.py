"""The repo loader: which files it reads, what it collects, and how it reports problems."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from parity.definitions import Entity, FeatureView, FileSource
from parity.errors import DefinitionError
from parity.repo.loader import find_definition_files, load_repo

from .conftest import WriteRepo

ENTITIES = """
    from parity import Entity

    driver = Entity(name="driver", join_keys=["driver_id"])
"""


def names(contents) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(o.kind, o.name, contents.origin(o)) for o in contents.objects]


def test_python_and_yaml_files_in_nested_folders(write_repo: WriteRepo) -> None:
    root = write_repo(
        {
            "entities.py": ENTITIES,
            "features/driver.py": """
                from parity import FeatureView, Field, FileSource, Int64

                from entities import driver

                driver_stats = FeatureView(
                    name="driver_stats",
                    entities=[driver],
                    source=FileSource(name="trips", path="data/trips.parquet"),
                    schema=[Field(name="trips_today", dtype=Int64)],
                )
            """,
            "features/deep/users.yml": """
                kind: entity
                name: user
                ---
                kind: feature_service
                name: app
                features: [driver_stats]
            """,
        }
    )
    contents = load_repo(root)
    assert names(contents) == [
        ("entity", "driver", "entities.py"),
        ("entity", "user", "features/deep/users.yml#1"),
        ("source", "trips", "features/driver.py"),
        ("feature_view", "driver_stats", "features/driver.py"),
        ("feature_service", "app", "features/deep/users.yml#2"),
    ]
    assert contents.files == ("entities.py", "features/deep/users.yml", "features/driver.py")
    assert contents.duplicates() == []
    assert contents.root == root.resolve()


def test_skipped_files_and_folders(write_repo: WriteRepo) -> None:
    broken_py = "raise RuntimeError('must not be read')\n"
    broken_yaml = "kind: nonsense\n"
    root = write_repo(
        {
            "entities.py": ENTITIES,
            "data/x.py": broken_py,
            "data/x.yaml": broken_yaml,
            ".hidden/x.py": broken_py,
            ".venv/lib/x.py": broken_py,
            "venv/lib/x.py": broken_py,
            "__pycache__/x.py": broken_py,
            "node_modules/pkg/x.yaml": broken_yaml,
            "nested/data/x.py": broken_py,
            "other_repo/parity.yaml": "project: other\n",
            "other_repo/features.py": broken_py,
            ".secret.py": broken_py,
            "notes.txt": "not a definition file",
            "README.md": "# repo",
        }
    )
    assert names(load_repo(root)) == [("entity", "driver", "entities.py")]
    assert [p.relative_to(root).as_posix() for p in find_definition_files(root)] == ["entities.py"]


def test_a_file_imported_by_another_counts_once_with_its_own_origin(write_repo: WriteRepo) -> None:
    # a_views.py is read first and imports z_entities.py; the entity still comes from z_entities.py.
    root = write_repo(
        {
            "a_views.py": """
                from parity import FeatureView, Field
                from z_entities import driver
                from defs.common import rider

                v = FeatureView(name="v", entities=[driver, rider], source="s", schema=[Field(name="f", dtype="Int64")])
                again = driver
            """,
            "z_entities.py": ENTITIES,
            "defs/common.py": """
                from parity import Entity
                rider = Entity(name="rider")
            """,
            "m_more.py": """
                import z_entities
                also = z_entities.driver
            """,
        }
    )
    contents = load_repo(root)
    assert names(contents) == [
        ("entity", "driver", "z_entities.py"),
        ("entity", "rider", "defs/common.py"),
        ("feature_view", "v", "a_views.py"),
    ]
    assert contents.duplicates() == []


def test_each_file_runs_once(write_repo: WriteRepo, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    root = write_repo(
        {
            "a.py": "import c\n",
            "b.py": "import c\n",
            "c.py": f"""
                with open({str(log)!r}, "a") as f:
                    f.write("c\\n")
            """,
        }
    )
    load_repo(root)
    assert log.read_text() == "c\n"


def test_a_file_pytest_would_claim_runs_once(write_repo: WriteRepo) -> None:
    # Under pytest, its assertion-rewriting hook may import test_*.py files before our finder.
    root = write_repo(
        {
            "a.py": "from test_entities import driver\n",
            "test_entities.py": ENTITIES,
        }
    )
    contents = load_repo(root)
    assert names(contents) == [("entity", "driver", "test_entities.py")]
    assert contents.duplicates() == []


def test_inline_sources_and_entity_objects_are_collected_once(write_repo: WriteRepo) -> None:
    root = write_repo(
        {
            "features.py": """
                from parity import Entity, FeatureView, Field, FileSource

                shared = FileSource(name="shared", path="shared.parquet")
                driver = Entity(name="driver")

                def view(name, source):
                    return FeatureView(
                        name=name,
                        entities=[driver, Entity(name="inline_entity")],
                        source=source,
                        schema=[Field(name="f", dtype="Int64")],
                    )

                a = view("a", shared)
                b = view("b", shared)
                c = view("c", FileSource(name="inline_source", path="x.parquet"))
            """,
        }
    )
    contents = load_repo(root)
    assert [(o.kind, o.name) for o in contents.objects] == [
        ("entity", "driver"),
        ("entity", "inline_entity"),
        ("entity", "inline_entity"),
        ("entity", "inline_entity"),
        ("source", "inline_source"),
        ("source", "shared"),
        ("feature_view", "a"),
        ("feature_view", "b"),
        ("feature_view", "c"),
    ]
    # Three separate Entity objects with one name: reported, as identical.
    assert contents.duplicates() == [
        "entity 'inline_entity' is defined 3 times: features.py, features.py and features.py "
        "(identical; keep one)"
    ]


def test_duplicates_name_both_origins(write_repo: WriteRepo) -> None:
    root = write_repo(
        {
            "entities.py": ENTITIES,
            "defs/more.yaml": """
                kind: entity
                name: other
                ---
                kind: entity
                name: driver
                join_keys: [id]
            """,
        }
    )
    contents = load_repo(root)
    assert contents.duplicates() == [
        "entity 'driver' is defined 2 times: defs/more.yaml#2 and entities.py (they differ)"
    ]
    drivers = [o for o in contents.objects if o.name == "driver"]
    assert {contents.origin(d) for d in drivers} == {"entities.py", "defs/more.yaml#2"}


def test_only_module_level_definitions_are_collected(write_repo: WriteRepo) -> None:
    root = write_repo(
        {
            "features.py": """
                from parity import Entity

                driver = Entity(name="driver")
                settings = {"not": "a definition"}
                NUMBER = 3

                def make():
                    return Entity(name="never_collected")

                if __name__ == "__main__":
                    raise SystemExit("a repo file is not run as a script")
            """,
        }
    )
    assert names(load_repo(root)) == [("entity", "driver", "features.py")]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "from parity import Entity\nimport not_a_module_xyz\n",
            ["features.py, line 2:", "ModuleNotFoundError", "not_a_module_xyz"],
        ),
        ("x = 1\n\ny = 1 / 0\n", ["features.py, line 3:", "ZeroDivisionError: division by zero"]),
        ("def broken(:\n    pass\n", ["features.py, line 1:", "SyntaxError"]),
        (
            "from parity import Entity\n\ne = Entity(name='bad name')\n",
            ["features.py, line 3:", "entity 'bad name': name: invalid name 'bad name'"],
        ),
        ("import sys\nsys.exit(3)\n", ["features.py, line 2:", "SystemExit: 3"]),
        ("import helper\n", ["features.py: in helper.py, line 2:", "NameError"]),
    ],
)
def test_errors_in_python_files_name_file_and_line(
    write_repo: WriteRepo, text: str, fragments: list[str]
) -> None:
    root = write_repo(
        {"features.py": text, "data/helper.py": "", "helper.py": "x = 1\nundefined_name\n"}
    )
    if "helper" not in text:
        (root / "helper.py").unlink()
    with pytest.raises(DefinitionError) as info:
        load_repo(root)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.__cause__ is not None  # the original traceback stays reachable


def test_yaml_errors_name_the_relative_path(write_repo: WriteRepo) -> None:
    root = write_repo({"defs/bad.yaml": "kind: entity\nname: ok\n---\nkind: entity\nname: 5x\n"})
    with pytest.raises(DefinitionError, match=r"^defs/bad.yaml#2: entity '5x': name: invalid name"):
        load_repo(root)


def test_interpreter_state_is_restored(write_repo: WriteRepo) -> None:
    root = write_repo(
        {
            "entities.py": ENTITIES,
            "defs/views.py": "from entities import driver\nimport defs.other\n",
            "defs/other.py": "",
            "zz_broken.py": "import entities\nraise ValueError('boom')\n",
        }
    )
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    meta_before = list(sys.meta_path)
    with pytest.raises(DefinitionError, match=r"zz_broken\.py, line 2: ValueError: boom"):
        load_repo(root)
    (root / "zz_broken.py").unlink()
    load_repo(root)
    assert sys.path == path_before
    assert sys.meta_path == meta_before
    assert set(sys.modules) - modules_before == set()


def test_repos_with_the_same_file_names_do_not_meet(write_repo: WriteRepo) -> None:
    one = write_repo(
        {"entities.py": ENTITIES, "features.py": "from entities import driver\n"}, name="one"
    )
    two = write_repo(
        {
            "entities.py": "from parity import Entity\nrider = Entity(name='rider')\n",
            "features.py": "from entities import rider\n",
        },
        name="two",
    )
    assert [o.name for o in load_repo(one).objects] == ["driver"]
    assert [o.name for o in load_repo(two).objects] == ["rider"]
    assert [o.name for o in load_repo(one).objects] == ["driver"]  # loads again from scratch


def test_an_edited_file_is_read_afresh(write_repo: WriteRepo) -> None:
    root = write_repo({"entities.py": ENTITIES})
    assert [o.join_keys for o in load_repo(root).objects] == [["driver_id"]]
    (root / "entities.py").write_text(
        "from parity import Entity\n\n\ndriver = Entity(name='driver', join_keys=['id', 'region'])\n"
    )
    assert [o.join_keys for o in load_repo(root).objects] == [["id", "region"]]


def test_a_repo_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="is not a folder"):
        load_repo(tmp_path / "missing")


def test_origin_of_an_object_not_in_the_repo(write_repo: WriteRepo) -> None:
    contents = load_repo(write_repo({"entities.py": ENTITIES}))
    (driver,) = contents.objects
    assert contents.origin(driver) == "entities.py"
    # An equal object also finds its origin: rebuilt objects (from specs, copies) still do.
    assert contents.origin(Entity(name="driver", join_keys=["driver_id"])) == "entities.py"
    with pytest.raises(KeyError):
        contents.origin(Entity(name="nobody"))


def test_loaded_objects_are_ordinary_definitions(write_repo: WriteRepo) -> None:
    root = write_repo(
        {
            "features.py": """
                from parity import Entity, FeatureView, Field, FileSource
                source = FileSource(name="trips", path="trips.parquet")
                view = FeatureView(name="v", entities=["driver"], source=source, schema=[Field(name="f", dtype="Int64")])
            """,
        }
    )
    view = next(o for o in load_repo(root).objects if isinstance(o, FeatureView))
    assert isinstance(view.source, FileSource)
    assert FeatureView.from_spec(view.to_spec()).to_spec() == view.to_spec()


def test_loading_a_repo_never_breaks_an_import_in_another_thread(tmp_path: Path) -> None:
    """A server resolves on-demand functions (a repo load) while requests import modules on
    first use: the loader replaces sys.path and sys.meta_path rather than editing them in
    place, so no finder is skipped under another thread's import, and it never walks
    sys.modules while another thread adds to it."""
    import importlib
    import sys
    import threading

    from parity.repo.loader import _RepoImporter

    problems: list[BaseException] = []
    done = threading.Event()

    def load_repeatedly() -> None:
        try:
            while not done.is_set():
                with _RepoImporter(tmp_path):
                    pass
        except BaseException as exc:  # reported by the assertion below
            problems.append(exc)

    def import_repeatedly() -> None:
        try:
            for _ in range(5000):
                sys.modules.pop("colorsys", None)  # a leaf module: imported afresh each time
                importlib.import_module("colorsys")
        except BaseException as exc:
            problems.append(exc)
        finally:
            done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=f) for f in (load_repeatedly, import_repeatedly)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(interval)
    assert not any(t.is_alive() for t in threads)
    assert problems == []
