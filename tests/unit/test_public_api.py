"""The public surface: ``parity.__all__`` is sorted, importable and deliberately complete.

Every public class, function or type value defined in ``parity.errors``, ``parity.types`` and
the ``parity.definitions`` and ``parity.repo`` modules must be either exported from ``parity`` (EXPORTED) or listed
in INTERNAL with the reason users do not need it at the top level. A new public name in one of
those modules fails ``test_every_public_name_is_a_decision`` until someone decides.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import parity
import parity.definitions
import parity.repo
from parity.types import ValueType

EXPORTED = {
    # definitions
    "Aggregation",
    "Checks",
    "DriftPolicy",
    "DataSource",
    "Entity",
    "FeatureService",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "Lifecycle",
    "Model",
    "OnDemandFeatureView",
    "Permission",
    "PushSource",
    "Role",
    "StreamSource",
    "RequestSource",
    "Sla",
    "on_demand_feature_view",
    # errors
    "AccessError",
    "AuditError",
    "AuthenticationError",
    "EncryptionError",
    "GovernanceError",
    "LifecycleError",
    "PermissionDeniedError",
    "ConcurrentApplyError",
    "ConfigError",
    "DataSourceError",
    "DataSourceNotFoundError",
    "DefinitionError",
    "MonitoringError",
    "ObjectNotFoundError",
    "OnlineStoreError",
    "PartialWriteError",
    "RequestDataError",
    "ParityError",
    "RegistryError",
    "RetrievalError",
    "SnapshotError",
    "TransformationError",
    "ValidationError",
    # types
    "Array",
    "Bool",
    "Bytes",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "String",
    "Timestamp",
    "ValueType",
}
# Exported from modules this test does not scan (the store, config and engine layers).
OTHER_EXPORTS = {"FeatureStore", "RepoConfig", "RetrievalJob", "__version__"}

INTERNAL = {
    "as_lifecycle": "reads lifecycle='deprecated' as a Lifecycle inside definitions",
    "aggregation_from_yaml": "the YAML loader's reading of transformation: window_sum(7d)",
    "PrimitiveType": "the class of Int64, String...; users use those values",
    "parse": "types by name are accepted wherever a type is (dtype='Int64')",
    "from_arrow": "used by engines and stores; reachable as parity.types.from_arrow",
    "Definition": "base class; users build the concrete kinds",
    "definition_error": "turns pydantic errors into DefinitionError inside definitions",
    "format_duration": "the registry's text form of durations",
    "parse_duration": "durations are accepted as text wherever one is (ttl='2h')",
    "spec_hash": "the registry's hash of a spec; users call obj.content_hash()",
    "from_spec": "the registry rebuilds objects from stored specs",
    "source_from_spec": "the registry rebuilds sources from stored specs",
    "register_source_type": "for authors of new source kinds: parity.definitions.source",
    "load_repo": "the CLI and FeatureStore read repos; users point them at a folder",
    "RepoContents": "what load_repo returns",
    "RepoObject": "what load_repo returns",
    "find_definition_files": "part of load_repo",
    "YamlObject": "part of load_repo",
    "parse_yaml": "part of load_repo",
    "read_yaml_file": "part of load_repo",
    "resolve_entity_refs": "part of load_repo",
    "load_module": "runs one repo file; how the registry gets an on-demand view's function back",
    "UdfLocation": "where an on-demand view's function lives, as the registry stores it",
    "ViewInput": "a view an on-demand view reads, as the registry stores it",
    "function_hash": "the registry's hash of a function's source; part of the view's spec",
    "known_function": "the index of functions seen in this process (parity.repo.functions)",
    "remember_function": "the index of functions seen in this process (parity.repo.functions)",
    "resolve_function": "finds an on-demand view's function again from its registered location",
}


def _checked_modules() -> list[ModuleType]:
    mods = [importlib.import_module("parity.errors"), importlib.import_module("parity.types")]
    for package in (parity.definitions, parity.repo):  # the models, and reading them from disk
        mods.append(package)
        for info in pkgutil.iter_modules(package.__path__):
            mods.append(importlib.import_module(f"{package.__name__}.{info.name}"))
    return mods


def _public_names(module: ModuleType) -> set[str]:
    out = set()
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if obj.__module__ == module.__name__:
                out.add(name)
        elif isinstance(obj, ValueType) and module.__name__ == "parity.types":
            out.add(name)
    return out


def test_all_is_sorted_and_unique() -> None:
    assert parity.__all__ == sorted(parity.__all__)
    assert len(set(parity.__all__)) == len(parity.__all__)


def test_every_name_in_all_is_importable() -> None:
    for name in parity.__all__:
        assert hasattr(parity, name), name
    namespace: dict[str, object] = {}
    exec("from parity import *", namespace)
    assert set(parity.__all__) <= set(namespace)


def test_all_is_the_expected_set() -> None:
    assert set(parity.__all__) == EXPORTED | OTHER_EXPORTS


def test_every_public_name_is_a_decision() -> None:
    undecided = {
        f"{module.__name__}.{name}"
        for module in _checked_modules()
        for name in _public_names(module)
        if name not in EXPORTED | set(INTERNAL)
    }
    assert not undecided, (
        "export these from parity (and add them to EXPORTED) or list them in INTERNAL with a "
        f"reason: {sorted(undecided)}"
    )


def test_decisions_name_real_things() -> None:
    public = set().union(*(_public_names(m) for m in _checked_modules()))
    assert set(INTERNAL) <= public, set(INTERNAL) - public
    assert public >= EXPORTED
    assert not (EXPORTED & set(INTERNAL))
    assert not (OTHER_EXPORTS & public)


def test_exports_are_the_defining_objects() -> None:
    from parity import definitions, errors, types

    for name in EXPORTED:
        home = next(m for m in (definitions, errors, types) if hasattr(m, name))
        assert getattr(parity, name) is getattr(home, name), name
