"""What an object's lifecycle means for reads (``definitions.lifecycle`` holds the states).

Every online and historical read (Python and HTTP alike) passes ``LifecycleHooks``:

- a **retired** view, on-demand view or service is refused (``LifecycleError``, HTTP 410
  ``feature_retired``), the error naming its successor;
- a **draft** one is served only to a caller that asks for drafts (``include_drafts=True``,
  the ``X-Parity-Include-Drafts: true`` header), else refused (HTTP 403
  ``draft_not_requested``);
- a **deprecated** one is served with a ``ParityDeprecationWarning``; over HTTP the answer
  carries ``Deprecation: true`` and ``X-Parity-Deprecated: feature_view:x (use y); ...``
  and ``parity_deprecated_reads_total{object}`` counts it;
- a read through a service with ``pin_versions=True`` is refused (HTTP 409
  ``version_pinned``) when a view it reads moved to another major version since the
  service's own last version was applied.

What a plan reads is looked up once per plan (plans live until the registry changes).
"""

from __future__ import annotations

from parity.lifecycle.context import (
    ParityDeprecationWarning,
    collect_notices,
    drafts_requested,
    including_drafts,
)
from parity.lifecycle.hooks import LifecycleHooks, lifecycle_hooks

__all__ = [
    "LifecycleHooks",
    "ParityDeprecationWarning",
    "collect_notices",
    "drafts_requested",
    "including_drafts",
    "lifecycle_hooks",
]
