"""JWTs as bearer tokens: RS256 and ES256 against a public key file or a JWKS file; refused
when alg=none, HS256 (no secret configured, or the public key used as one), signed with
another key, expired, for another issuer or audience, or without the principal claim."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from parity import AuthenticationError, FeatureStore
from parity.governance import tokens
from repo_utils import write_repo

ISSUER = "https://login.example"
AUDIENCE = "parity"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _pem(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _store(tmp_path: Path, jwt_cfg: str) -> FeatureStore:
    root = write_repo(tmp_path / "repo", {})
    (root / "keys").mkdir()
    (root / "keys" / "rsa.pem").write_bytes(_pem(RSA_KEY))
    (root / "keys" / "ec.pem").write_bytes(_pem(EC_KEY))
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))
    jwks = {
        "keys": [{**rsa_jwk, "kid": "r1", "alg": "RS256"}, {**ec_jwk, "kid": "e1", "alg": "ES256"}]
    }
    (root / "keys" / "jwks.json").write_text(json.dumps(jwks))
    cfg = root / "parity.yaml"
    cfg.write_text(cfg.read_text() + f"auth:\n  enabled: true\n  jwt: {jwt_cfg}\n")
    tokens.forget_cached()
    return FeatureStore(root)


PEM_CFG = (
    f"{{public_key_file: keys/rsa.pem, algorithms: [RS256], issuer: '{ISSUER}', "
    f"audience: {AUDIENCE}, role_map: {{fraud-team: reader}}}}"
)
JWKS_CFG = "{jwks_file: keys/jwks.json, algorithms: [RS256, ES256]}"


def _claims(**over: Any) -> dict[str, Any]:
    base = {
        "sub": "alice",
        "roles": ["fraud-team", "ops"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": int(time.time()) + 600,
        "jti": "t-1",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_rs256_with_a_public_key_maps_claims_to_roles(tmp_path: Path) -> None:
    store = _store(tmp_path, PEM_CFG)
    token = pyjwt.encode(_claims(), RSA_KEY, algorithm="RS256")
    actor = tokens.authenticate(store, token)
    assert actor.principal == "alice" and actor.via == "jwt"
    assert actor.roles == ("reader", "ops") and actor.token_id == "jwt:t-1"


def test_jwks_by_key_id_rs256_and_es256(tmp_path: Path) -> None:
    store = _store(tmp_path, JWKS_CFG)
    claims = _claims(iss=None, aud=None, roles="a b")
    rs = pyjwt.encode(claims, RSA_KEY, algorithm="RS256", headers={"kid": "r1"})
    es = pyjwt.encode(claims, EC_KEY, algorithm="ES256", headers={"kid": "e1"})
    assert tokens.authenticate(store, rs).roles == ("a", "b")
    assert tokens.authenticate(store, es).principal == "alice"
    swapped = pyjwt.encode(claims, RSA_KEY, algorithm="RS256", headers={"kid": "e1"})
    with pytest.raises(AuthenticationError) as err:
        tokens.authenticate(store, swapped)
    assert err.value.code == "invalid_token"
    unknown = pyjwt.encode(claims, RSA_KEY, algorithm="RS256", headers={"kid": "zz"})
    with pytest.raises(AuthenticationError, match="kid"):
        tokens.authenticate(store, unknown)


def _forgeries() -> list[tuple[str, Any, str]]:
    claims = _claims()
    header_none = _b64({"alg": "none", "typ": "JWT"})
    header_none_caps = _b64({"alg": "None", "typ": "JWT"})
    pem_text = _pem(RSA_KEY).decode()
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}"
    confused = hmac.new(pem_text.encode(), signing_input.encode(), hashlib.sha256).digest()
    confused_sig = base64.urlsafe_b64encode(confused).rstrip(b"=").decode()
    return [
        ("alg none", f"{header_none}.{_b64(claims)}.", "invalid_token"),
        ("alg None, signed", f"{header_none_caps}.{_b64(claims)}.c2ln", "invalid_token"),
        ("HS256 with the public key as secret", f"{signing_input}.{confused_sig}", "invalid_token"),
        ("HS256, no secret", pyjwt.encode(claims, "s" * 32, algorithm="HS256"), "invalid_token"),
        ("another key", pyjwt.encode(claims, OTHER_RSA, algorithm="RS256"), "invalid_token"),
        ("ES256 not accepted", pyjwt.encode(claims, EC_KEY, algorithm="ES256"), "invalid_token"),
        (
            "expired",
            pyjwt.encode(_claims(exp=int(time.time()) - 600), RSA_KEY, algorithm="RS256"),
            "token_expired",
        ),
        ("no exp", pyjwt.encode(_claims(exp=None), RSA_KEY, algorithm="RS256"), "invalid_token"),
        (
            "wrong issuer",
            pyjwt.encode(_claims(iss="https://evil"), RSA_KEY, algorithm="RS256"),
            "invalid_token",
        ),
        (
            "wrong audience",
            pyjwt.encode(_claims(aud="other"), RSA_KEY, algorithm="RS256"),
            "invalid_token",
        ),
        (
            "no principal",
            pyjwt.encode(_claims(sub=None), RSA_KEY, algorithm="RS256"),
            "invalid_token",
        ),
        ("tampered claims", _tampered(), "invalid_token"),
        ("garbage", "a.b.c", "invalid_token"),
    ]


def _tampered() -> str:
    head, _, sig = pyjwt.encode(_claims(), RSA_KEY, algorithm="RS256").split(".")
    return f"{head}.{_b64(_claims(sub='root', roles=['admin']))}.{sig}"


@pytest.mark.parametrize(("what", "token", "code"), _forgeries(), ids=[f[0] for f in _forgeries()])
def test_forged_and_unacceptable_jwts_are_refused(tmp_path: Path, what, token, code) -> None:
    store = _store(tmp_path, PEM_CFG)
    with pytest.raises(AuthenticationError) as err:
        tokens.authenticate(store, token)
    assert err.value.code == code, what
    assert token not in str(err.value)


def test_jwts_are_refused_when_none_are_configured(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "plain", {})
    cfg = root / "parity.yaml"
    cfg.write_text(cfg.read_text() + "auth: {enabled: true}\n")
    token = pyjwt.encode(_claims(), RSA_KEY, algorithm="RS256")
    with pytest.raises(AuthenticationError, match=r"auth\.jwt is not set"):
        tokens.authenticate(FeatureStore(root), token)


def test_hs256_only_with_the_configured_secret(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PARITY_TEST_JWT_SECRET", "k" * 40)
    store = _store(tmp_path, "{secret_env: PARITY_TEST_JWT_SECRET, algorithms: [HS256]}")
    good = pyjwt.encode(_claims(iss=None, aud=None), "k" * 40, algorithm="HS256")
    assert tokens.authenticate(store, good).principal == "alice"
    bad = pyjwt.encode(_claims(iss=None, aud=None), "x" * 40, algorithm="HS256")
    with pytest.raises(AuthenticationError) as err:
        tokens.authenticate(store, bad)
    assert err.value.code == "invalid_token"
