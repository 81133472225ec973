"""Token signing key pairs: ES256 (P-256) keys, named by their JWK thumbprint."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ALGORITHM = "ES256"


@dataclass(frozen=True)
class KeyPair:
    """A new signing key: its private key in PEM and its public JWK (kid, alg, use set)."""

    kid: str
    private_key_pem: str
    public_jwk: dict[str, Any]


def thumbprint(jwk: dict[str, Any]) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of an EC public JWK (used as its kid)."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def new_key_pair() -> KeyPair:
    """Generate a P-256 key pair (kid = JWK thumbprint)."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = thumbprint(public)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return KeyPair(kid, pem, {**public, "kid": kid, "alg": ALGORITHM, "use": "sig"})


def jwks_document(public_jwks: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the JWKS (RFC 7517) of some public keys."""
    return {"keys": [dict(k) for k in public_jwks]}
