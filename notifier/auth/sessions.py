"""Sessions (token families): login, refresh-token rotation, and revocation.

A login opens a session; its access tokens carry the session id as `sid`, and its
refresh tokens are stored by digest under it. Each refresh spends one refresh token and
issues the next; a spent token presented again revokes the whole session, unless it comes
within the reuse grace of its first use (parallel tabs, a retried request): then it gets
another successor in the same session and nothing is revoked. Revoking a
session (or every session of a user) also closes the sockets it authenticated, on every
worker, through `close_sockets`.
"""

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from notifier import closes
from notifier.auth.credentials import digest, new_secret
from notifier.auth.tokens import IssuedToken, TokenCodec
from notifier.closes import Close
from notifier.db.auth_store import AuthStore, Rotation
from notifier.db.records import StoredUser
from notifier.errors import InvalidGrantError, TokenError

CloseSockets = Callable[[str, Close, Sequence[str] | None], Awaitable[None]]
"""`close_sockets(username, close, session_ids)`: close that user's sockets on every
worker, only those of the given sessions unless `session_ids` is None."""

logger = logging.getLogger(__name__)


_ROTATION_ERRORS = {
    Rotation.UNKNOWN: "invalid refresh token",
    Rotation.EXPIRED: "refresh token expired",
    Rotation.REUSED: "refresh token reused; the session is revoked",
    Rotation.REVOKED: "token revoked",
    Rotation.DISABLED: "user disabled",
}


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: IssuedToken
    refresh_token: str
    session_id: str


class Sessions:
    def __init__(
        self,
        store: AuthStore,
        tokens: TokenCodec,
        refresh_ttl: int,
        close_sockets: CloseSockets | None,
        reuse_grace: int = 0,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._refresh_ttl = refresh_ttl
        self._close_sockets = close_sockets
        self._reuse_grace = reuse_grace

    async def open(self, user: StoredUser) -> TokenPair:
        session_id = secrets.token_urlsafe(16)
        refresh_token = new_secret()
        now = int(time.time())
        refresh_expires_at = now + self._refresh_ttl
        await self._store.open_session(
            session_id,
            user.id,
            digest(refresh_token),
            now,
            refresh_expires_at,
            max(refresh_expires_at, now + self._tokens.ttl),
        )
        access = self._tokens.issue(user.username, user.is_admin, session_id)
        return TokenPair(access, refresh_token, session_id)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair; raises `InvalidGrantError`."""
        if not refresh_token or len(refresh_token) > 256:
            raise InvalidGrantError(_ROTATION_ERRORS[Rotation.UNKNOWN])
        successor = new_secret()
        now = int(time.time())
        refresh_expires_at = now + self._refresh_ttl
        result = await self._store.rotate_refresh(
            digest(refresh_token),
            digest(successor),
            now,
            refresh_expires_at,
            max(refresh_expires_at, now + self._tokens.ttl),
            self._reuse_grace,
        )
        if result.outcome not in (Rotation.ROTATED, Rotation.REISSUED):
            if result.outcome is Rotation.REUSED and result.user and result.session_id:
                logger.warning("refresh token reused for %s: session revoked", result.user.username)
                await self._close(result.user.username, closes.TOKEN_REVOKED, [result.session_id])
            raise InvalidGrantError(_ROTATION_ERRORS[result.outcome])
        assert result.user is not None and result.session_id is not None
        if result.outcome is Rotation.REISSUED:
            logger.info("refresh token of %s reused within the grace", result.user.username)
        access = self._tokens.issue(result.user.username, result.user.is_admin, result.session_id)
        return TokenPair(access, successor, result.session_id)

    async def revoke(self, token: str, hint: str | None = None) -> None:
        """Revoke the session of an access or refresh token (RFC 7009).

        Unknown, malformed and already revoked tokens are silently accepted: the caller
        learns nothing about tokens it does not hold.
        """
        if not token or len(token) > 8192:
            return
        looks_like_jwt = token.count(".") == 2
        attempts = [self._revoke_access, self._revoke_refresh]
        if hint == "refresh_token" or (hint != "access_token" and not looks_like_jwt):
            attempts.reverse()
        for attempt in attempts:
            if await attempt(token):
                return

    async def _revoke_access(self, token: str) -> bool:
        try:
            # An expired access token still names its session, whose refresh tokens live on.
            claims = self._tokens.verify(token, allow_expired=True)
        except TokenError:
            return False
        key = claims.session_key
        if key is None:
            return True
        await self.revoke_session(claims.subject, key, claims.expires_at, "revoked")
        return True

    async def _revoke_refresh(self, token: str) -> bool:
        found = await self._store.session_of_refresh(digest(token))
        if found is None:
            return False
        session_id, username = found
        await self.revoke_session(username, session_id, 0, "revoked")
        return True

    async def revoke_session(
        self, username: str, session_key: str, expires_at: int, reason: str
    ) -> None:
        now = int(time.time())
        await self._store.revoke_session(session_key, username, now, max(expires_at, now), reason)
        # Closed even if it was revoked already: a close that failed before gets retried.
        await self._close(username, closes.TOKEN_REVOKED, [session_key])

    async def revoke_all(self, username: str, reason: str) -> int | None:
        """Revoke every token of a user; how many sessions were live, None if unknown."""
        revoked = await self._store.revoke_user_sessions(username, int(time.time()), reason)
        if revoked is not None:
            await self._close(username, closes.TOKEN_REVOKED, None)
        return revoked

    async def close_user_sockets(self, username: str, close: Close) -> None:
        await self._close(username, close, None)

    async def _close(self, username: str, close: Close, session_ids: Sequence[str] | None) -> None:
        if self._close_sockets is None:
            return  # a process without sockets (the CLI); sockets elsewhere recheck on a timer
        try:
            await self._close_sockets(username, close, session_ids)
        except Exception:
            # The revocation is stored; each socket also rechecks its session on a timer.
            logger.exception("could not close the sockets of %s", username)
