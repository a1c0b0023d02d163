"""Feature repos on disk: ``*.py`` and ``*.yaml`` files in, definitions out.

``loader`` reads a repo folder (running its Python files as modules, reading its YAML
documents with ``yaml_form``); ``functions`` finds an on-demand view's function again from
where the registry says it lives. The models themselves are in ``parity.definitions``,
which knows nothing of files.
"""

from parity.repo.functions import resolve_function
from parity.repo.loader import (
    RepoContents,
    RepoObject,
    find_definition_files,
    load_module,
    load_repo,
)

__all__ = [
    "RepoContents",
    "RepoObject",
    "find_definition_files",
    "load_module",
    "load_repo",
    "resolve_function",
]
