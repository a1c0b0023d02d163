"""The registry: where definitions live, with versions, history and a revision counter.

One SQLAlchemy implementation for SQLite (the default, a file next to the repo) and
PostgreSQL (production)::

    reg = Registry("sqlite:///data/registry.db", "driver_ranking")
    plan = reg.plan([driver, driver_stats])      # what would change, nothing written
    print(plan.render())
    reg.apply([driver, driver_stats], author="ci")
    reg.get("feature_view", "driver_stats"), reg.history("driver_stats"), reg.revision()

Reading never creates anything: a registry that does not exist yet reads as empty and the
first write creates it (``Registry.exists()`` tells).

Modules: ``registry`` (the Registry), ``plan`` (Plan, Change), ``diff`` (FieldChange and the
spec diff), ``writing`` (an apply's rows), ``records`` (VersionRecord, RegistrySnapshot),
``models`` (tables), ``engine`` (connections, locks, errors), ``migrate`` + ``migrations/``
(Alembic, run on opening an existing registry or on the first write), ``apply`` (apply and
plan end to end, retried when another apply lands first).
"""

from parity.registry.diff import ABSENT, FieldChange
from parity.registry.plan import Action, Change, Plan
from parity.registry.records import MaterializationRecord, RegistrySnapshot, VersionRecord
from parity.registry.registry import Registry

__all__ = [
    "ABSENT",
    "Action",
    "Change",
    "FieldChange",
    "MaterializationRecord",
    "Plan",
    "Registry",
    "RegistrySnapshot",
    "VersionRecord",
]
