"""Signing and verification keys for access tokens.

HS256 signs and verifies with the shared secret. RS256 and ES256 sign with a private key
file and verify with a key set: the signing key's public half plus any older public keys
still listed, each found by its `kid` (the RFC 7638 thumbprint of the public key). Keeping
the old public key listed during a rotation keeps the tokens it signed valid until they
expire.
"""

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk

from notifier.errors import KeyConfigError

# The members RFC 7638 hashes for each key type, in the order it requires.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str | None
    algorithm: str
    key: Any
    """What python-jose verifies with: the secret, or the public key as PEM text."""
    jwk: dict[str, str] | None = None
    """The public key as a JWK (asymmetric keys only), for the published key set."""


@dataclass(frozen=True, slots=True)
class KeySet:
    algorithm: str
    signing_key: Any
    signing_kid: str | None
    verification: dict[str | None, VerificationKey]

    @classmethod
    def shared_secret(cls, secret: str, algorithm: str = "HS256") -> "KeySet":
        return cls(algorithm, secret, None, {None: VerificationKey(None, algorithm, secret)})

    @classmethod
    def from_files(
        cls, algorithm: str, private_key_file: Path, public_key_files: Sequence[Path] = ()
    ) -> "KeySet":
        private_pem = _read(private_key_file)
        try:
            private_key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyConfigError(f"{private_key_file}: not an unencrypted PEM private key") from exc
        if _algorithm_for(private_key.public_key(), private_key_file) != algorithm:
            raise KeyConfigError(f"{private_key_file}: not a key for {algorithm}")
        signing = _verification_key(private_key.public_key(), algorithm)
        verification = {signing.kid: signing}
        for path in public_key_files:
            try:
                public_key = serialization.load_pem_public_key(_read(path).encode())
            except (ValueError, TypeError) as exc:
                raise KeyConfigError(f"{path}: not a PEM public key") from exc
            key = _verification_key(public_key, _algorithm_for(public_key, path))
            verification.setdefault(key.kid, key)
        return cls(algorithm, private_pem, signing.kid, verification)

    def public_jwks(self) -> dict[str, list[dict[str, str]]]:
        """The verification keys as a JWK Set (RFC 7517); empty for a shared secret."""
        return {"keys": [key.jwk for key in self.verification.values() if key.jwk is not None]}


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise KeyConfigError(f"{path}: {exc.strerror or exc}") from exc


def _algorithm_for(public_key: object, path: Path) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise KeyConfigError(f"{path}: RSA keys need at least 2048 bits")
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
        public_key.curve, ec.SECP256R1
    ):
        return "ES256"
    raise KeyConfigError(f"{path}: only RSA and P-256 keys are supported")


def _verification_key(public_key: Any, algorithm: str) -> VerificationKey:
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    members = jwk.construct(pem, algorithm).to_dict()
    kid = thumbprint(members)
    public = {name: str(members[name]) for name in _THUMBPRINT_MEMBERS[members["kty"]]}
    public.update(kid=kid, alg=algorithm, use="sig")
    return VerificationKey(kid, algorithm, pem, public)


def thumbprint(members: dict[str, Any]) -> str:
    """RFC 7638: base64url SHA-256 of the key's required members as compact sorted JSON."""
    required = {name: members[name] for name in _THUMBPRINT_MEMBERS[members["kty"]]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
