"""Single-use WebSocket tickets: a short-lived stand-in for an access token in `/ws?ticket=`.

URLs end up in logs and browser history; a ticket there is worth little, since it works
once, for a few seconds, for one user and (when bought from a browser) one Origin. Only
its SHA-256 is stored, in the database, so any worker can redeem it, once.
"""

import time

from notifier.auth.credentials import digest, new_secret
from notifier.auth.tokens import TokenClaims
from notifier.db.auth_store import AuthStore
from notifier.db.records import StoredUser
from notifier.errors import TokenError


class WsTickets:
    def __init__(self, store: AuthStore, ttl_seconds: int) -> None:
        self._store = store
        self.ttl = ttl_seconds

    async def issue(self, user: StoredUser, claims: TokenClaims, origin: str | None) -> str:
        ticket = new_secret()
        now = int(time.time())
        await self._store.add_ticket(
            digest(ticket),
            user.id,
            claims.session_key,
            origin.rstrip("/") if origin else None,
            claims.expires_at,
            now,
            now + self.ttl,
        )
        return ticket

    async def redeem(self, ticket: str, origin: str | None) -> tuple[StoredUser, TokenClaims]:
        """The user a ticket speaks for, and claims standing in for its token.

        Raises `TokenError`: "invalid ticket" (unknown, used or expired), "origin not
        allowed", or the same reasons as the token it was bought with.
        """
        if not ticket or len(ticket) > 128:
            raise TokenError("invalid ticket")
        now = int(time.time())
        taken = await self._store.consume_ticket(digest(ticket), now)
        if taken is None:
            raise TokenError("invalid ticket")
        if taken.origin is not None and (origin or "").rstrip("/") != taken.origin:
            raise TokenError("origin not allowed")
        if taken.disabled:
            raise TokenError("user disabled")
        if taken.session_revoked:
            raise TokenError("token revoked")
        if taken.token_expires_at <= now:
            raise TokenError("token expired")
        claims = TokenClaims(
            subject=taken.user.username,
            expires_at=taken.token_expires_at,
            issued_at=now,
            token_id="",
            scopes=frozenset(),
            session_id=taken.session_id,
        )
        return taken.user, claims
