"""Issue and verify access tokens (JWT via python-jose).

Pure: no FastAPI, no database. A verification failure carries the short reason a
WebSocket client sees in its 1008 close frame.
"""

import secrets
import time
from dataclasses import dataclass

from jose import ExpiredSignatureError, JWTError, jwt

ADMIN_SCOPE = "admin"


class TokenError(Exception):
    """The token cannot be used; `reason` is safe to show to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    expires_at: int
    issued_at: int
    token_id: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int


class TokenCodec:
    def __init__(self, secret_key: str, algorithm: str, ttl_seconds: int) -> None:
        self._key = secret_key
        self._algorithm = algorithm
        self._ttl = ttl_seconds

    def issue(self, username: str, is_admin: bool) -> IssuedToken:
        now = int(time.time())
        claims = {
            "sub": username,
            "iat": now,
            "exp": now + self._ttl,
            "jti": secrets.token_urlsafe(16),
            "scope": ADMIN_SCOPE if is_admin else "",
        }
        return IssuedToken(jwt.encode(claims, self._key, algorithm=self._algorithm), self._ttl)

    def verify(self, token: str) -> TokenClaims:
        try:
            # Pinning the algorithm list is what rejects `alg: none` and key confusion.
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                options={"require_exp": True, "require_sub": True, "require_iat": True},
            )
        except ExpiredSignatureError as exc:
            raise TokenError("token expired") from exc
        except JWTError as exc:
            raise TokenError("invalid token") from exc
        subject, expires_at = claims.get("sub"), claims.get("exp")
        if not isinstance(subject, str) or not subject or not isinstance(expires_at, int):
            raise TokenError("invalid token")
        scope = claims.get("scope", "")
        return TokenClaims(
            subject=subject,
            expires_at=expires_at,
            issued_at=int(claims.get("iat", 0)),
            token_id=str(claims.get("jti", "")),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
        )
