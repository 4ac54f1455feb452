"""Asymmetric signing: RS256 or ES256 from key files, a `kid` header, a published key set,
and rotation: tokens signed by the previous key keep working while its public key is
still listed, and stop once it is removed."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import websockets
from clients import recv_notification
from conftest import TEST_SECRET, make_token
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt
from sessions import login_pair, status_with, user_with_pair

from notifier.auth.keys import KeySet, thumbprint
from notifier.errors import KeyConfigError

pytestmark = pytest.mark.integration


def write_key(directory: Path, name: str, algorithm: str, bits: int = 2048) -> tuple[Path, Path]:
    """A new private key and its public key as PEM files."""
    if algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    private = directory / f"{name}.pem"
    public = directory / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def header(token: str) -> dict:
    return jwt.get_unverified_header(token)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_asymmetric_tokens_work_everywhere(server_factory, api_for, tmp_path, algorithm):
    private, _public = write_key(tmp_path, "current", algorithm)
    proc = server_factory(
        NOTIFIER_JWT_ALGORITHM=algorithm, NOTIFIER_JWT_PRIVATE_KEY_FILE=str(private)
    )
    async with api_for(proc) as api:
        username, pair = await user_with_pair(api)
        token = pair["access_token"]
        assert header(token)["alg"] == algorithm
        keys = (await api.client.get("/.well-known/jwks.json")).json()["keys"]
        [published] = keys
        assert header(token)["kid"] == published["kid"] == thumbprint(published)
        assert published["alg"] == algorithm and published["use"] == "sig"
        assert "d" not in published  # never the private part
        # Anyone can verify a token with the published key.
        claims = jwt.decode(token, published, algorithms=[algorithm])
        assert claims["sub"] == username
        assert await status_with(api, token) == (200, username)
        async with websockets.connect(f"{proc.ws_url}?token={token}") as ws:
            sent = await api.send(username, "signed with " + algorithm)
            assert await recv_notification(ws) == sent
        # An HS256 token made with the shared secret is no longer accepted.
        assert await status_with(api, make_token(username)) == (401, "invalid token")


async def test_key_rotation_keeps_old_tokens_until_their_key_is_dropped(
    server_factory, api_for, tmp_path
) -> None:
    old_private, old_public = write_key(tmp_path, "old", "RS256")
    new_private, _new_public = write_key(tmp_path, "new", "ES256")
    proc = server_factory(
        NOTIFIER_JWT_ALGORITHM="RS256", NOTIFIER_JWT_PRIVATE_KEY_FILE=str(old_private)
    )
    async with api_for(proc) as api:
        username, before = await user_with_pair(api)
    old_kid = header(before["access_token"])["kid"]

    # Rotate: sign with the new key, keep verifying with the old public key.
    proc.env_overrides.update(
        NOTIFIER_JWT_ALGORITHM="ES256",
        NOTIFIER_JWT_PRIVATE_KEY_FILE=str(new_private),
        NOTIFIER_JWT_PUBLIC_KEY_FILES=str(old_public),
    )
    proc.restart()
    async with api_for(proc) as api:
        assert await status_with(api, before["access_token"]) == (200, username)
        async with websockets.connect(f"{proc.ws_url}?token={before['access_token']}") as ws:
            sent = await api.send(username, "across the rotation")
            assert await recv_notification(ws) == sent
        after = await login_pair(api, username)
        new_kid = header(after["access_token"])["kid"]
        assert new_kid != old_kid and header(after["access_token"])["alg"] == "ES256"
        kids = {
            key["kid"] for key in (await api.client.get("/.well-known/jwks.json")).json()["keys"]
        }
        assert kids == {old_kid, new_kid}
        # Refresh tokens are not signed: one from before the rotation still works.
        renewed = await api.client.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": before["refresh_token"]}
        )
        assert header(renewed.json()["access_token"])["kid"] == new_kid

    # Rotation done: the old public key is dropped, and so are its tokens.
    del proc.env_overrides["NOTIFIER_JWT_PUBLIC_KEY_FILES"]
    proc.restart()
    async with api_for(proc) as api:
        assert await status_with(api, before["access_token"]) == (401, "invalid token")
        assert await status_with(api, after["access_token"]) == (200, username)


def _b64(data: bytes | dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_forged_asymmetric_tokens_are_refused(server_factory, api_for, tmp_path) -> None:
    private, public = write_key(tmp_path, "current", "RS256")
    _stranger_private, _ = write_key(tmp_path, "stranger", "RS256")
    proc = server_factory(
        NOTIFIER_JWT_ALGORITHM="RS256", NOTIFIER_JWT_PRIVATE_KEY_FILE=str(private)
    )
    async with api_for(proc) as api:
        username, pair = await user_with_pair(api)
        kid = header(pair["access_token"])["kid"]
        payload = jwt.get_unverified_claims(pair["access_token"])
        public_pem = public.read_text()
        # Key confusion: HS256 "signed" with the public key as the HMAC secret.
        signing_input = f"{_b64({'alg': 'HS256', 'kid': kid})}.{_b64(payload)}"
        mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
        forgeries = {
            "hs256-with-public-key": f"{signing_input}.{_b64(mac)}",
            "alg-none": f"{_b64({'alg': 'none', 'kid': kid})}.{_b64(payload)}.",
            "unknown-kid": jwt.encode(
                payload, _stranger_private.read_text(), "RS256", headers={"kid": "nope"}
            ),
            "right-kid-wrong-key": jwt.encode(
                payload, _stranger_private.read_text(), "RS256", headers={"kid": kid}
            ),
            "no-kid": jwt.encode(payload, private.read_text(), "RS256"),
            "shared-secret": make_token(username, key=TEST_SECRET),
        }
        for label, token in forgeries.items():
            assert await status_with(api, token) == (401, "invalid token"), label
        assert await status_with(api, pair["access_token"]) == (200, username)


def test_key_set_refuses_unsuitable_keys(tmp_path) -> None:
    rsa_private, rsa_public = write_key(tmp_path, "rsa", "RS256")
    ec_private, _ec_public = write_key(tmp_path, "ec", "ES256")
    small, _ = write_key(tmp_path, "small", "RS256", bits=1024)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    cases = {
        "missing file": ("RS256", tmp_path / "missing.pem", []),
        "not a key": ("RS256", junk, []),
        "public key as private": ("RS256", rsa_public, []),
        "EC key for RS256": ("RS256", ec_private, []),
        "RSA key for ES256": ("ES256", rsa_private, []),
        "small RSA key": ("RS256", small, []),
        "junk verification key": ("RS256", rsa_private, [junk]),
    }
    for label, (algorithm, private, public) in cases.items():
        with pytest.raises(KeyConfigError):
            KeySet.from_files(algorithm, private, public)
            pytest.fail(f"accepted: {label}")


def test_serve_refuses_bad_key_settings(tmp_path) -> None:
    ec_private, _ = write_key(tmp_path, "ec", "ES256")
    base = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    base |= {
        "NOTIFIER_SECRET_KEY": TEST_SECRET,
        "NOTIFIER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'n.db'}",
        "NOTIFIER_JWT_ALGORITHM": "RS256",
    }
    for extra, message in (
        ({}, "NOTIFIER_JWT_PRIVATE_KEY_FILE"),
        ({"NOTIFIER_JWT_PRIVATE_KEY_FILE": str(ec_private)}, "not a key for RS256"),
        ({"NOTIFIER_JWT_PRIVATE_KEY_FILE": str(tmp_path / "nope.pem")}, "nope.pem"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "notifier", "serve", "--port", "1"],
            cwd=tmp_path,
            env=base | extra,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr
