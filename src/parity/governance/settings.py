"""``parity.yaml``'s governance sections: ``auth``, ``audit``, ``encryption``, ``governance``.

::

    auth:
      enabled: true                     # default deny: every read, write and apply needs a role
      token_cache_seconds: 1.0          # a verified token is trusted this long per process
      principals: { ci-bot: [deployer] }   # roles of a principal named in FeatureStore(principal=)
      jwt:                              # optional: signed JWTs besides Parity's own tokens
        public_key_file: keys/jwt.pem   # or jwks_file: keys/jwks.json
        algorithms: [RS256, ES256]
        issuer: https://login.example
        audience: parity
        principal_claim: sub
        roles_claim: roles
    audit: { enabled: true }            # default: on when auth is
    encryption:
      key_file: keys/parity.keys        # or key_env: PARITY_ENCRYPTION_KEYS
    governance: { require_owner: true, require_classification: true, require_description: true }
    masking:                            # the key of mask: hash (parity.governance.masking)
      hash_key_file: keys/mask.key      # or hash_key_env: PARITY_MASK_KEY
      restrictions_refresh_seconds: 1.0

A relative file is resolved against the repo folder. Secrets themselves never go in
``parity.yaml``: only where to find them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from parity.definitions.base import NAME_RE

__all__ = [
    "AuditConfig",
    "AuthConfig",
    "EncryptionConfig",
    "GovernanceConfig",
    "JwtConfig",
    "MaskingConfig",
]

JwtAlgorithm = Literal["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "HS256"]


class JwtConfig(BaseModel):
    """Signed JWTs accepted as bearer tokens: verified against ``public_key_file`` or
    ``jwks_file`` (asymmetric algorithms), or, for HS256 only when configured, the secret in
    the environment variable ``secret_env``. ``alg: none`` is always refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_key_file: str | None = None
    jwks_file: str | None = None
    secret_env: str | None = None
    algorithms: tuple[JwtAlgorithm, ...] = ("RS256", "ES256")
    issuer: str | None = None
    audience: str | None = None
    principal_claim: str = "sub"
    roles_claim: str = "roles"
    role_map: dict[str, str] = Field(
        default={}, description="claim value -> role name; unmapped values are used as they are"
    )
    leeway_seconds: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _a_key(self) -> JwtConfig:
        if self.public_key_file is None and self.jwks_file is None and self.secret_env is None:
            raise ValueError("jwt needs public_key_file, jwks_file or secret_env")
        if "HS256" in self.algorithms and self.secret_env is None:
            raise ValueError("HS256 is accepted only with secret_env (the shared secret)")
        if (
            self.secret_env is not None
            and set(self.algorithms) - {"HS256"}
            and (self.public_key_file is None and self.jwks_file is None)
        ):
            raise ValueError("asymmetric algorithms need public_key_file or jwks_file")
        return self


class AuthConfig(BaseModel):
    """Access control (``parity.governance``): off by default; on, anything no role grants
    is denied, on every path (HTTP and Python)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    token_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description="how long a process trusts a verified token before checking it again "
        "(a revocation reaches other processes within this)",
    )
    principals: dict[str, tuple[str, ...]] = Field(
        default={}, description="principal name -> role names, for FeatureStore(principal=NAME)"
    )
    jwt: JwtConfig | None = None

    @field_validator("principals", mode="before")
    @classmethod
    def _roles_lists(cls, v: object) -> object:
        if isinstance(v, dict):
            return {k: [r] if isinstance(r, str) else r for k, r in v.items()}
        return v

    @field_validator("principals")
    @classmethod
    def _names(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for name, roles in v.items():
            for role in roles:
                if not NAME_RE.match(role):
                    raise ValueError(f"principals: {name!r} has an invalid role name {role!r}")
        return v


class AuditConfig(BaseModel):
    """The hash-chained audit log in the registry database (``parity.governance.audit``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = Field(default=None, description="None: on exactly when auth is")
    flush_ms: float = Field(
        default=0.1,
        gt=0,
        description="how long the writer gathers records into one commit at most, once "
        "callers arrive together (records arriving during a commit join the next one "
        "anyway); an answer waits for its record's commit, so this adds to its latency",
    )


class EncryptionConfig(BaseModel):
    """Where the keys for ``Field(encrypt=True)`` come from: a key file (JSON or YAML
    ``{active: ID, keys: {ID: base64 32-byte key}}``) or an environment variable holding
    ``ID:base64[,ID:base64...]`` (the first is active)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_file: str | None = None
    key_env: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> EncryptionConfig:
        if (self.key_file is None) == (self.key_env is None):
            raise ValueError("encryption needs exactly one of key_file and key_env")
        return self


class GovernanceConfig(BaseModel):
    """Apply-time policies: ``parity plan`` lists violations, ``parity apply`` refuses them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    require_owner: bool = False
    require_classification: bool = False
    """Every feature of a view (and every on-demand output) declares a classification."""
    require_description: bool = False


class MaskingConfig(BaseModel):
    """Masking and restriction (``parity.governance.masking``, ``.restrict``): where the key
    of ``mask: hash`` is (a file or an environment variable holding at least 16 bytes; none:
    a key derived from the project's name, a stable pseudonym but not a secret one), and how
    long a process trusts the restrictions it read before reading them again (restrictions
    made in another process are honoured within this)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hash_key_file: str | None = None
    hash_key_env: str | None = None
    restrictions_refresh_seconds: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _one_place(self) -> MaskingConfig:
        if self.hash_key_file is not None and self.hash_key_env is not None:
            raise ValueError("masking takes one of hash_key_file and hash_key_env, not both")
        return self
