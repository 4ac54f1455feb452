"""Issue and verify access tokens (JWT via python-jose).

Pure: no FastAPI, no database. A verification failure carries the short reason a
WebSocket client sees in its 1008 close frame.
"""

import functools
import hashlib
import secrets
import time
from dataclasses import dataclass

from jose import ExpiredSignatureError, JWTError, jwt

from notifier.auth.keys import KeySet, VerificationKey
from notifier.errors import TokenError

ADMIN_SCOPE = "admin"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    expires_at: int
    issued_at: int
    token_id: str
    scopes: frozenset[str]
    session_id: str | None = None
    """The `sid` claim: the login (token family) this token belongs to."""

    @property
    def session_key(self) -> str | None:
        """What revocation is recorded under: the session, or for a token issued before
        sessions existed, a digest of its `jti`."""
        if self.session_id:
            return self.session_id
        if self.token_id:
            return "jti:" + hashlib.sha256(self.token_id.encode()).hexdigest()[:40]
        return None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    expires_at: int


class TokenCodec:
    def __init__(self, keys: KeySet, ttl_seconds: int, cache_size: int = 4096) -> None:
        self.keys = keys
        self._ttl = ttl_seconds
        # Only successful decodes are cached (errors propagate), so a flood of bad tokens
        # cannot evict good ones for free, and each bad token is checked in full.
        self._verified = functools.lru_cache(maxsize=cache_size)(self._decode)

    @property
    def ttl(self) -> int:
        return self._ttl

    def issue(self, username: str, is_admin: bool, session_id: str) -> IssuedToken:
        now = int(time.time())
        claims = {
            "sub": username,
            "iat": now,
            "exp": now + self._ttl,
            "jti": secrets.token_urlsafe(16),
            "sid": session_id,
            "scope": ADMIN_SCOPE if is_admin else "",
        }
        headers = {"kid": self.keys.signing_kid} if self.keys.signing_kid else None
        token = jwt.encode(
            claims, self.keys.signing_key, algorithm=self.keys.algorithm, headers=headers
        )
        return IssuedToken(token, self._ttl, now + self._ttl)

    def verify(self, token: str, *, allow_expired: bool = False) -> TokenClaims:
        """The token's claims, if we signed it and (unless `allow_expired`) it is current."""
        if allow_expired:
            return self._decode(token, check_exp=False)
        # A token's signature and claims never change, only whether it has expired: the
        # same token (every request of a client, every socket) is decoded once.
        claims = self._verified(token)
        if time.time() > claims.expires_at:
            raise TokenError("token expired")
        return claims

    def _decode(self, token: str, *, check_exp: bool = True) -> TokenClaims:
        key = self._key_for(token)
        try:
            # Pinning one algorithm per key is what rejects `alg: none` and key confusion.
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                # python-jose's require_exp forces verify_exp on; `exp` is checked below.
                options={
                    "require_exp": check_exp,
                    "require_sub": True,
                    "require_iat": True,
                    "verify_exp": check_exp,
                },
            )
        except ExpiredSignatureError as exc:
            raise TokenError("token expired") from exc
        except JWTError as exc:
            raise TokenError("invalid token") from exc
        subject, expires_at = claims.get("sub"), claims.get("exp")
        if not isinstance(subject, str) or not subject or not isinstance(expires_at, int):
            raise TokenError("invalid token")
        scope, session_id = claims.get("scope", ""), claims.get("sid")
        if session_id is not None and (not isinstance(session_id, str) or len(session_id) > 64):
            raise TokenError("invalid token")
        return TokenClaims(
            subject=subject,
            expires_at=expires_at,
            issued_at=int(claims.get("iat", 0)),
            token_id=str(claims.get("jti", "")),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            session_id=session_id or None,
        )

    def _key_for(self, token: str) -> VerificationKey:
        if self.keys.signing_kid is None:
            return self.keys.verification[None]
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except JWTError as exc:
            raise TokenError("invalid token") from exc
        key = self.keys.verification.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError("invalid token")
        return key
