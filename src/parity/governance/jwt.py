"""Signed JWTs as bearer tokens (``auth.jwt`` in ``parity.yaml``), verified with PyJWT.

A token is accepted only when its header's ``alg`` is one of ``auth.jwt.algorithms`` (never
``none``; HS256 only with ``secret_env`` configured, and then only with that secret), its
signature verifies against the configured public key (``public_key_file``, PEM) or the JWKS
key its ``kid`` names (``jwks_file``), it carries ``exp`` and has not expired (give or take
``leeway_seconds``), and its ``iss``/``aud`` match when configured. Its
``principal_claim`` names the principal; ``roles_claim`` (a list, or space-separated text)
gives roles, each renamed through ``role_map`` when listed there.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt as pyjwt

from parity.errors import AuthenticationError
from parity.governance.context import Actor

if TYPE_CHECKING:
    from parity.governance.settings import JwtConfig
    from parity.store import FeatureStore

__all__ = ["verify"]

_keys: dict[tuple[str, float], Any] = {}
_keys_lock = threading.Lock()


def _invalid(why: str) -> AuthenticationError:
    return AuthenticationError(f"invalid token: {why}", code="invalid_token")


def _load(path: Path, jwks: bool) -> Any:
    """The key (or JWK set) in ``path``, re-read when the file changes."""
    try:
        stamp = path.stat().st_mtime
    except OSError as exc:
        raise _invalid(
            f"the configured JWT key file {str(path)!r} cannot be read ({exc.strerror})"
        ) from None
    with _keys_lock:
        found = _keys.get((str(path), stamp))
        if found is None:
            text = path.read_text(encoding="utf-8")
            try:
                found = pyjwt.PyJWKSet.from_json(text) if jwks else text
            except (pyjwt.PyJWKSetError, json.JSONDecodeError, ValueError) as exc:
                raise _invalid(f"the JWKS file {str(path)!r} is not a key set ({exc})") from None
            _keys[(str(path), stamp)] = found
    return found


def _key_for(store: FeatureStore, cfg: JwtConfig, header: dict[str, Any]) -> Any:
    alg = header.get("alg")
    if alg == "HS256":
        secret = os.environ.get(cfg.secret_env or "", "")
        if not secret:
            raise _invalid(f"HS256 needs the shared secret in ${cfg.secret_env}, which is not set")
        return secret
    if cfg.jwks_file is not None:
        keys = _load(store.config.resolve(cfg.jwks_file), jwks=True)
        kid = header.get("kid")
        usable = [k for k in keys.keys if kid is None or k.key_id == kid]
        if kid is None and len(usable) != 1:
            raise _invalid("the token names no key (kid) and the key set holds several")
        if not usable:
            raise _invalid("the token's key id (kid) is not in the key set")
        return usable[0].key
    if cfg.public_key_file is None:
        raise _invalid(f"algorithm {alg} needs public_key_file or jwks_file")
    return _load(store.config.resolve(cfg.public_key_file), jwks=False)


def verify(store: FeatureStore, token: str) -> tuple[Actor, int | None]:
    """The actor a JWT stands for and its expiry (µs since the epoch); raises
    ``AuthenticationError`` (``invalid_token`` or ``token_expired``)."""
    cfg = store.config.auth.jwt
    if cfg is None:
        raise _invalid("not a Parity token, and JWTs are not accepted (auth.jwt is not set)")
    try:
        header = pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError:
        raise _invalid("malformed") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none" or alg not in cfg.algorithms:
        shown = alg if isinstance(alg, str) and len(alg) <= 16 else "?"
        raise _invalid(
            f"algorithm {shown!r} is not accepted; accepted: {', '.join(cfg.algorithms)}"
        )
    key = _key_for(store, cfg, header)
    try:
        claims = pyjwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=cfg.audience,
            issuer=cfg.issuer,
            leeway=cfg.leeway_seconds,
            options={
                "require": ["exp"],
                "verify_aud": cfg.audience is not None,
                "verify_iss": cfg.issuer is not None,
            },
        )
    except pyjwt.ExpiredSignatureError:
        raise AuthenticationError("token has expired", code="token_expired") from None
    except pyjwt.InvalidSignatureError:
        raise _invalid("the signature does not verify") from None
    except pyjwt.InvalidAudienceError:
        raise _invalid("wrong audience") from None
    except pyjwt.InvalidIssuerError:
        raise _invalid("wrong issuer") from None
    except pyjwt.MissingRequiredClaimError as exc:
        raise _invalid(f"the claim {exc.claim!r} is missing") from None
    except (pyjwt.PyJWTError, ValueError, TypeError):
        raise _invalid("it does not verify") from None
    principal = claims.get(cfg.principal_claim)
    if not isinstance(principal, str) or not principal:
        raise _invalid(f"the claim {cfg.principal_claim!r} (the principal) is missing")
    raw = claims.get(cfg.roles_claim, [])
    if isinstance(raw, str):
        raw = raw.split()
    if not isinstance(raw, list):
        raise _invalid(f"the claim {cfg.roles_claim!r} is neither a list nor text")
    roles = tuple(dict.fromkeys(cfg.role_map.get(str(r), str(r)) for r in raw))
    jti = claims.get("jti")
    actor = Actor(
        principal[:128],
        roles=roles,
        via="jwt",
        token_id=f"jwt:{jti}"[:64] if isinstance(jti, str) else None,
    )
    exp = claims.get("exp")
    return actor, int(float(exp) * 1_000_000) if isinstance(exp, int | float) else None
