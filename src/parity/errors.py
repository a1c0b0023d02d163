"""Parity's exceptions: one root, each subclass also inheriting the matching builtin.

::

    ParityError
    ├── ConfigError(ValueError)              a bad parity.yaml or store config; names file and key
    ├── DefinitionError(ValueError)          a definition is invalid; names the object and field
    │   └── ValidationError                  apply refused: names every problem found
    ├── ObjectNotFoundError(KeyError)        no such entity / source / view / service in the registry
    ├── RegistryError(RuntimeError)          the registry could not be read or written
    │   └── ConcurrentApplyError             another apply changed the registry under us
    ├── OnlineStoreError(RuntimeError)       the online store could not be read or written (503)
    │   └── PartialWriteError                a push's offline rows landed, its online write failed
    ├── DataSourceError(ValueError)          a source cannot be read, or lacks a column
    │   └── DataSourceNotFoundError(FileNotFoundError)
    ├── RetrievalError(ValueError)           bad input to a feature retrieval (entity frame, feature refs)
    │   └── RequestDataError                 an on-demand view's request data is missing or null
    ├── TransformationError(RuntimeError)    an on-demand view's function failed or returned bad output
    ├── MonitoringError(ValueError)          bad input to monitoring: a feature, range or baseline
    ├── AccessError(PermissionError)         access control refused; ``code`` names why
    │   ├── AuthenticationError              no, a bad, an expired or a revoked token (401)
    │   └── PermissionDeniedError            the principal lacks the action or purpose (403)
    ├── AuditError(RuntimeError)             the audit log could not be written: the operation fails (503)
    ├── EncryptionError(RuntimeError)        a key is missing or wrong; never garbage values (500)
    ├── GovernanceError(ValueError)          bad input to governance: an erase, restriction, key rotation
    ├── LifecycleError(RuntimeError)         a read of a retired object, an unrequested draft, a moved pin
    └── SnapshotError(ValueError)            a training snapshot exists, cannot be made or recreated

Each error carries ``http_status`` as plain data so the HTTP layer can map it without the
core knowing about the web.
"""

from __future__ import annotations


class ParityError(Exception):
    """Root of every error Parity raises on purpose."""

    http_status: int = 500


class ConfigError(ParityError, ValueError):
    """The repo configuration (parity.yaml) or a store config is invalid."""

    http_status = 500


class DefinitionError(ParityError, ValueError):
    """A definition (entity, source, view, service) is invalid."""

    http_status = 400


class ValidationError(DefinitionError):
    """``apply`` refused a set of definitions; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"apply refused, {len(self.problems)} problem(s):\n{lines}")


class ObjectNotFoundError(ParityError, KeyError):
    """A named object does not exist in the registry."""

    http_status = 404

    def __init__(self, kind: str, name: str, project: str | None = None, hint: str = ""):
        self.kind = kind
        self.name = name
        where = f" in project {project!r}" if project else ""
        msg = f"{kind} {name!r} not found{where}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class RegistryError(ParityError, RuntimeError):
    """The registry database could not be read or written."""


class ConcurrentApplyError(RegistryError):
    """The registry changed between plan and apply; re-plan and apply again."""

    http_status = 409


class OnlineStoreError(ParityError, RuntimeError):
    """The online store did not answer or refused a read or write; retry later."""

    http_status = 503


class PartialWriteError(OnlineStoreError):
    """A push to ``online_and_offline``: the offline log holds the rows, the online write
    failed (the cause). Retrying the push with ``push_id`` appends nothing twice offline and
    writes online only the views that did not land."""

    def __init__(
        self,
        message: str,
        *,
        push_id: str,
        offline_rows: int,
        online_views_written: list[str],
        online_views_failed: list[str],
    ):
        super().__init__(message)
        self.push_id = push_id
        self.offline_rows = offline_rows
        self.online_views_written = list(online_views_written)
        self.online_views_failed = list(online_views_failed)


class DataSourceError(ParityError, ValueError):
    """A data source cannot be read as declared."""

    http_status = 400


class DataSourceNotFoundError(DataSourceError, FileNotFoundError):
    """A data source's file, glob or folder matches nothing."""

    http_status = 404


class RetrievalError(ParityError, ValueError):
    """Bad input to a feature retrieval: entity frame, timestamps or feature references."""

    http_status = 400


class RequestDataError(RetrievalError):
    """An on-demand view's request field is missing from the request, or null in a row."""


class TransformationError(ParityError, RuntimeError):
    """An on-demand feature view's function raised, or returned missing or mistyped outputs.

    The message names the view and its function; the function's own error is the cause.
    """

    http_status = 500


class MonitoringError(ParityError, ValueError):
    """Bad input to a monitoring call: an unknown feature, an empty range, a baseline with no
    rows, a rule that cannot apply. The message names it."""

    http_status = 400


class AccessError(ParityError, PermissionError):
    """Access control refused an operation. ``code`` is stable (the HTTP error code);
    the message names the principal, the action and the resource, never a secret."""

    http_status = 403
    code = "forbidden"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class AuthenticationError(AccessError):
    """No credentials, or a token that is malformed, forged, expired or revoked (401):
    ``code`` is ``unauthenticated``, ``invalid_token``, ``token_expired`` or
    ``token_revoked``."""

    http_status = 401
    code = "unauthenticated"


class PermissionDeniedError(AccessError):
    """The principal is known but no role grants the action on the resource (403), or the
    read lacks a purpose the data allows (``code`` ``purpose_not_allowed``)."""

    http_status = 403
    code = "forbidden"


class AuditError(ParityError, RuntimeError):
    """The audit log could not be written, so the operation it records failed."""

    http_status = 503


class EncryptionError(ParityError, RuntimeError):
    """An encryption key is missing, unknown or wrong, or a ciphertext fails its check."""

    http_status = 500


class GovernanceError(ParityError, ValueError):
    """Bad input to a governance operation (erase, export, restrict, retention, keys); the
    message names the entity, key or setting."""

    http_status = 400


class LifecycleError(ParityError, RuntimeError):
    """A read refused by an object's lifecycle (``parity.lifecycle``); ``code`` names why:
    ``feature_retired`` (410), ``draft_not_requested`` (403), ``version_pinned`` (409)."""

    _STATUS = {"feature_retired": 410, "draft_not_requested": 403, "version_pinned": 409}

    def __init__(self, code: str, message: str):
        self.code = code
        self.http_status = self._STATUS.get(code, 400)
        super().__init__(message)


class SnapshotError(ParityError, ValueError):
    """A training snapshot cannot be created (its name is taken, its sources moved while it
    was made) or recreated (its file or its source files are gone, an on-demand function
    changed); the message names the snapshot and the files or objects at fault."""

    http_status = 409
