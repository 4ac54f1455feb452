"""User accounts: creation, password login, and token-to-user resolution."""

from notifier.auth.passwords import PasswordHasher
from notifier.auth.tokens import TokenClaims, TokenCodec, TokenError
from notifier.db.store import Store, StoredUser


class Accounts:
    def __init__(self, store: Store, passwords: PasswordHasher, tokens: TokenCodec) -> None:
        self._store = store
        self._passwords = passwords
        self.tokens = tokens

    async def create_user(self, username: str, password: str, is_admin: bool) -> StoredUser:
        """Raises `UsernameTakenError` when the name exists."""
        return await self._store.create_user(
            username, await self._passwords.hash(password), is_admin
        )

    async def ensure_user(self, username: str, password: str, is_admin: bool) -> bool:
        """Create the user unless it exists; True when it was created."""
        if await self._store.get_user(username) is not None:
            return False
        await self.create_user(username, password, is_admin)
        return True

    async def authenticate(self, username: str, password: str) -> StoredUser | None:
        user = await self._store.get_user(username)
        if user is None:
            # Same work as a wrong password, so timing does not reveal which names exist.
            await self._passwords.dummy_verify()
            return None
        if not await self._passwords.verify(password, user.password_hash):
            return None
        return user

    async def resolve(self, token: str) -> tuple[StoredUser, TokenClaims]:
        """The live user a token speaks for. Raises `TokenError` with the client-facing reason."""
        claims = self.tokens.verify(token)
        user = await self._store.get_user(claims.subject)
        if user is None:
            raise TokenError("unknown user")
        return user, claims
