"""User accounts: creation, password login, token-to-user resolution, and the account
changes that end sessions (password change, disabling).

The one façade the routers and the socket use for credentials; it composes the token
codec, sessions, login throttling and socket tickets.
"""

import logging
import time

from notifier import closes
from notifier.auth.passwords import PasswordHasher
from notifier.auth.sessions import Sessions, TokenPair
from notifier.auth.throttle import LoginThrottle
from notifier.auth.tickets import WsTickets
from notifier.auth.tokens import TokenClaims, TokenCodec
from notifier.db.auth_store import AccountFlags, AuthStore, Credentials
from notifier.db.records import StoredUser
from notifier.db.store import Store
from notifier.errors import (
    AccountDisabledError,
    InvalidCredentialsError,
    PasswordTooShortError,
    TokenError,
    WrongCurrentPasswordError,
)

logger = logging.getLogger(__name__)


class Accounts:
    def __init__(
        self,
        store: Store,
        auth_store: AuthStore,
        passwords: PasswordHasher,
        tokens: TokenCodec,
        sessions: Sessions,
        throttle: LoginThrottle,
        tickets: WsTickets,
        password_min_length: int = 8,
    ) -> None:
        self._store = store
        self._auth_store = auth_store
        self._passwords = passwords
        self.tokens = tokens
        self.sessions = sessions
        self.throttle = throttle
        self.tickets = tickets
        self.password_min_length = password_min_length

    # Users

    def check_password_policy(self, password: str, field: str = "password") -> None:
        """Raises `PasswordTooShortError` naming `field`, the input that held `password`."""
        if len(password) < self.password_min_length:
            raise PasswordTooShortError(self.password_min_length, field)

    async def create_user(self, username: str, password: str, is_admin: bool) -> StoredUser:
        """Raises `UsernameTakenError` when the name exists, `PasswordTooShortError`."""
        self.check_password_policy(password)
        return await self._store.create_user(
            username, await self._passwords.hash(password), is_admin
        )

    async def ensure_user(self, username: str, password: str, is_admin: bool) -> bool:
        """Create the user unless it exists; True when it was created."""
        if await self._store.get_user(username) is not None:
            return False
        await self.create_user(username, password, is_admin)
        return True

    async def set_disabled(self, username: str, disabled: bool) -> AccountFlags | None:
        """Disable a user (ending every session and socket) or enable them again."""
        flags = await self._auth_store.set_disabled(username, disabled, int(time.time()))
        if flags is not None and disabled:
            await self.sessions.close_user_sockets(username, closes.USER_DISABLED)
        return flags

    # Logging in

    async def login(self, username: str, password: str, address: str | None) -> TokenPair:
        """Check a password login and open a session.

        Raises `LoginThrottledError`, `InvalidCredentialsError` or `AccountDisabledError`.
        """
        async with self.throttle.attempt(username, address) as attempt:
            found = await self._check_password(username, password)
            if found is None:
                await self.throttle.failed(attempt)
                raise InvalidCredentialsError
            await self.throttle.succeeded(attempt)
        if found.disabled:
            raise AccountDisabledError
        return await self.sessions.open(found.user)

    async def authenticate(self, username: str, password: str) -> StoredUser | None:
        """The user if the password is right (disabled or not)."""
        found = await self._check_password(username, password)
        return found.user if found else None

    async def _check_password(self, username: str, password: str) -> Credentials | None:
        """Verify a password; on success, replace an outdated hash."""
        found = await self._auth_store.credentials(username, None)
        if found is None:
            # Same work as a wrong password, so timing does not reveal which names exist.
            await self._passwords.dummy_verify()
            return None
        user = found.user
        matches, new_hash = await self._passwords.verify_and_update(password, user.password_hash)
        if not matches:
            return None
        if new_hash is not None:
            await self._auth_store.set_password_hash(user.id, new_hash)
            logger.info("upgraded the password hash of %s", username)
        return found

    async def change_password(
        self, user: StoredUser, current: str, new: str, address: str | None
    ) -> TokenPair:
        """Replace the caller's password, revoke all their tokens, and open a new session.

        Raises `LoginThrottledError`, `WrongCurrentPasswordError` (counted like a failed
        login) or `PasswordTooShortError` (naming `new_password`).
        """
        self.check_password_policy(new, "new_password")
        async with self.throttle.attempt(user.username, address) as attempt:
            if await self.authenticate(user.username, current) is None:
                await self.throttle.failed(attempt)
                raise WrongCurrentPasswordError
            await self.throttle.succeeded(attempt)
        new_hash = await self._passwords.hash(new)
        await self._auth_store.change_password(user.id, new_hash, int(time.time()))
        await self.sessions.close_user_sockets(user.username, closes.TOKEN_REVOKED)
        return await self.sessions.open(user)

    # Using a token

    async def resolve(self, token: str) -> tuple[StoredUser, TokenClaims]:
        """The live user a token speaks for. Raises `TokenError` with the client-facing reason:
        "invalid token", "token expired", "unknown user", "user disabled", "token revoked"."""
        claims = self.tokens.verify(token)
        return await self.check_claims(claims), claims

    async def check_claims(self, claims: TokenClaims) -> StoredUser:
        """Whether verified claims still stand: the user exists and is enabled, and neither
        the token's session nor (for tokens without one) all of the user's tokens are revoked.
        """
        found = await self._auth_store.credentials(claims.subject, claims.session_key)
        if found is None:
            raise TokenError("unknown user")
        if found.disabled:
            raise TokenError("user disabled")
        if found.session_revoked or (
            claims.session_id is None and claims.issued_at < found.tokens_valid_after
        ):
            raise TokenError("token revoked")
        return found.user
