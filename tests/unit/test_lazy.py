"""``parity.lazy.LazyModule``: a module imported on first use, then bound where it stands."""

import subprocess
import sys


def test_the_module_is_imported_on_first_use_and_rebound() -> None:
    script = (
        "import sys\n"
        "from parity.lazy import LazyModule\n"
        "fractions = LazyModule('fractions', globals(), 'fractions')\n"
        "assert 'fractions' not in sys.modules\n"
        "assert 'not imported' in repr(fractions)\n"
        "assert fractions.Fraction(1, 2) * 2 == 1\n"
        "import fractions as real\n"
        "assert fractions is real  # the name now holds the module itself\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


def test_a_plan_process_never_imports_duckdb_or_alembic(tmp_path) -> None:
    """Opening a store and reading definitions (what ``parity plan`` does before any query)
    imports neither DuckDB nor Alembic."""
    (tmp_path / "parity.yaml").write_text("project: p\nregistry: data/registry.db\n")
    (tmp_path / "entities.yaml").write_text("kind: entity\nname: driver\n")
    setup = f"from parity import FeatureStore\nFeatureStore({str(tmp_path)!r}).apply()\n"
    made = subprocess.run([sys.executable, "-c", setup], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr  # the registry exists, its migrations known
    script = (
        "import sys\n"
        "from parity import FeatureStore\n"
        f"with FeatureStore({str(tmp_path)!r}) as store:\n"
        "    assert store.registry.revision() == 1\n"
        "    store.plan()\n"
        "print(sorted(m for m in ('duckdb', 'alembic') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr
