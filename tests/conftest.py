"""Fixtures every suite may use; tests/ holds shared helpers (oracle.py, repo_utils.py)."""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# tests/ holds shared helpers (oracle.py, repo_utils.py) imported by the suites.
sys.path.insert(0, str(Path(__file__).parent))

# Property tests check what is computed, not how fast: no per-example deadline (hypothesis'
# 200 ms failed tests calling DuckDB per example on a loaded machine) and no health check on
# how fast examples are generated. HYPOTHESIS_PROFILE=default restores hypothesis' own.
settings.register_profile("parity", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "parity"))


_PROMETHEUS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")

# Parity's disk cache (parity.cache) of this run, its own: tests never read what another
# run or the user left, and CLI processes the tests start inherit it.
_CACHE_DIR = tempfile.mkdtemp(prefix="parity-test-cache-")
os.environ["PARITY_CACHE_DIR"] = _CACHE_DIR
atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def _environment_as_it_was() -> None:
    """Importing the Feast SDK (the compatibility and import tests, also at collection) sets
    ``PROMETHEUS_MULTIPROC_DIR``; every test starts with it as the run began, so a server a
    test starts never counts its metrics in Feast's folder."""
    if _PROMETHEUS_DIR is None:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _PROMETHEUS_DIR


@pytest.fixture(scope="session")
def memory_store_installed(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The out-of-package ``memory`` online store (tests/plugins), installed for this session
    as a distribution whose entry point Parity finds like any other plug-in."""
    sys.path.insert(0, str(Path(__file__).parent / "plugins"))
    from parity_memory_store import install_memory_store

    install_memory_store(tmp_path_factory.mktemp("site-packages"))
    return "memory"


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (Debian's package, installed by `make test`),
    driven by Playwright's sync API; closed with the module, so the event loop Playwright
    runs never outlives the module's tests. Fails loudly when Chromium is missing."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make browser` installs it"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()
