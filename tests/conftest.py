import sys
from pathlib import Path

# tests/ holds shared helpers (oracle.py, repo_utils.py) imported by the suites.
sys.path.insert(0, str(Path(__file__).parent))
