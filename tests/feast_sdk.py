"""The incumbent's SDK for the compatibility tests, imported without its side effect.

Importing ``feast`` sets ``PROMETHEUS_MULTIPROC_DIR`` in the process environment (for its own
metrics). Every ``parity serve`` a test starts afterwards would inherit it and count its
metrics in Feast's folder, summed with every other server's; so the variable is put back as
it was right after the import.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

_VAR = "PROMETHEUS_MULTIPROC_DIR"


def import_feast(*names: str) -> list[ModuleType]:
    """``importlib.import_module`` of each name, the environment left as it was."""
    saved = os.environ.get(_VAR)
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        if saved is None:
            os.environ.pop(_VAR, None)
        else:
            os.environ[_VAR] = saved
