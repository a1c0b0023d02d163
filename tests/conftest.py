import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# tests/ holds shared helpers (oracle.py, repo_utils.py) imported by the suites.
sys.path.insert(0, str(Path(__file__).parent))

# Property tests check what is computed, not how fast: no per-example deadline (hypothesis'
# 200 ms failed tests calling DuckDB per example on a loaded machine) and no health check on
# how fast examples are generated. HYPOTHESIS_PROFILE=default restores hypothesis' own.
settings.register_profile("parity", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "parity"))
