"""Fixtures every suite may use; tests/ holds shared helpers (oracle.py, repo_utils.py)."""

import sys
from pathlib import Path

import pytest

# tests/ holds shared helpers (oracle.py, repo_utils.py) imported by the suites.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def memory_store_installed(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The out-of-package ``memory`` online store (tests/plugins), installed for this session
    as a distribution whose entry point Parity finds like any other plug-in."""
    sys.path.insert(0, str(Path(__file__).parent / "plugins"))
    from parity_memory_store import install_memory_store

    install_memory_store(tmp_path_factory.mktemp("site-packages"))
    return "memory"
