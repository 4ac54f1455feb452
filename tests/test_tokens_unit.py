"""TokenCodec on its own (no server)."""

import base64
import json
import time

import pytest
from conftest import TEST_SECRET, make_token
from jose import jwt

from notifier.auth.keys import KeySet
from notifier.auth.tokens import ADMIN_SCOPE, TokenClaims, TokenCodec
from notifier.errors import TokenError

pytestmark = pytest.mark.unit

TTL = 600


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec(KeySet.shared_secret(TEST_SECRET), TTL)


def _b64url(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _reason(codec: TokenCodec, token: str) -> str:
    with pytest.raises(TokenError) as info:
        codec.verify(token)
    return info.value.reason


def test_round_trip_user(codec: TokenCodec) -> None:
    before = int(time.time())
    issued = codec.issue("alice", is_admin=False, session_id="s1")
    after = int(time.time())
    assert issued.expires_in == TTL

    claims = codec.verify(issued.token)
    assert isinstance(claims, TokenClaims)
    assert claims.subject == "alice"
    assert claims.scopes == frozenset()
    assert before <= claims.issued_at <= after
    assert claims.expires_at == claims.issued_at + TTL
    assert claims.token_id


def test_round_trip_admin_scope_and_unique_ids(codec: TokenCodec) -> None:
    first = codec.verify(codec.issue("root", is_admin=True, session_id="s1").token)
    second = codec.verify(codec.issue("root", is_admin=True, session_id="s1").token)
    assert first.scopes == frozenset({ADMIN_SCOPE})
    assert first.token_id != second.token_id


def test_token_from_other_codec_instance_with_same_key_verifies(codec: TokenCodec) -> None:
    token = (
        TokenCodec(KeySet.shared_secret(TEST_SECRET), 60)
        .issue("bob", is_admin=False, session_id="s1")
        .token
    )
    assert codec.verify(token).subject == "bob"


def test_expired(codec: TokenCodec) -> None:
    assert _reason(codec, make_token("alice", expires_in=-30)) == "token expired"


def test_expired_issued_by_codec(codec: TokenCodec) -> None:
    token = (
        TokenCodec(KeySet.shared_secret(TEST_SECRET), -5)
        .issue("alice", is_admin=False, session_id="s1")
        .token
    )
    assert _reason(codec, token) == "token expired"


def test_wrong_key(codec: TokenCodec) -> None:
    token = make_token("alice", key="another-secret-key-that-is-long-enough-too")
    assert _reason(codec, token) == "invalid token"


@pytest.mark.parametrize("header", [{"alg": "none", "typ": "JWT"}, {"alg": "none"}])
def test_alg_none(codec: TokenCodec, header: dict) -> None:
    now = int(time.time())
    payload = {"sub": "alice", "iat": now, "exp": now + 600, "jti": "x", "scope": "admin"}
    for signature in ("", "AAAA"):
        token = f"{_b64url(header)}.{_b64url(payload)}.{signature}"
        assert _reason(codec, token) == "invalid token"


def test_hs512_with_same_key_rejected_when_hs256_pinned(codec: TokenCodec) -> None:
    token = make_token("alice", algorithm="HS512")
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    assert _reason(codec, token) == "invalid token"


def _payload_without(*keys: str, **overrides: object) -> dict:
    now = int(time.time())
    payload = {"sub": "alice", "iat": now, "exp": now + 600, "jti": "abc"}
    payload.update(overrides)
    for key in keys:
        del payload[key]
    return payload


@pytest.mark.parametrize(
    "payload",
    [
        # Built when the test runs, not at collection: a long suite outlives a token's exp.
        pytest.param(lambda: _payload_without("exp"), id="missing-exp"),
        pytest.param(lambda: _payload_without("sub"), id="missing-sub"),
        pytest.param(lambda: _payload_without("iat"), id="missing-iat"),
        pytest.param(lambda: _payload_without(sub=""), id="empty-sub"),
        pytest.param(lambda: _payload_without(exp="tomorrow"), id="non-numeric-exp"),
    ],
)
def test_bad_claims(codec: TokenCodec, payload) -> None:
    token = jwt.encode(payload(), TEST_SECRET, algorithm="HS256")
    assert _reason(codec, token) == "invalid token"


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "not.a.jwt.at.all", "eyJhbGciOiJIUzI1NiJ9.e30."],
)
def test_garbage(codec: TokenCodec, token: str) -> None:
    assert _reason(codec, token) == "invalid token"


def test_tampered_payload(codec: TokenCodec) -> None:
    header, _payload, signature = codec.issue("alice", is_admin=False, session_id="s1").token.split(
        "."
    )
    now = int(time.time())
    forged = _b64url({"sub": "alice", "iat": now, "exp": now + 600, "jti": "x", "scope": "admin"})
    assert _reason(codec, f"{header}.{forged}.{signature}") == "invalid token"


def test_a_verified_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified tokens are cached by their text; expiry is still checked on every use."""
    codec = TokenCodec(KeySet.shared_secret(TEST_SECRET), 60)
    token = codec.issue("alice", is_admin=False, session_id="s1").token
    assert codec.verify(token).subject == "alice"
    assert codec.verify(token).subject == "alice"  # from the cache
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert _reason(codec, token) == "token expired"
    # Allowed explicitly, the expired token still verifies (revoking it needs its claims).
    assert codec.verify(token, allow_expired=True).subject == "alice"


def test_a_rejected_token_is_rejected_every_time(codec: TokenCodec) -> None:
    token = codec.issue("alice", is_admin=False, session_id="s1").token
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert _reason(codec, forged) == "invalid token"
    assert _reason(codec, forged) == "invalid token"
    assert codec.verify(token).subject == "alice"
