"""Password hashing with passlib's CryptContext (the maintained `libpass` distribution)."""

import asyncio
from collections.abc import Sequence

from passlib.context import CryptContext


class PasswordHasher:
    """Hashes and verifies passwords off the event loop: argon2 is slow on purpose.

    The first scheme hashes new passwords; the others are still verified, and a hash in
    one of them (or with weaker parameters than configured) is replaced on the next login.
    """

    def __init__(self, schemes: Sequence[str] = ("argon2",)) -> None:
        self._context = CryptContext(schemes=list(schemes), deprecated="auto")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._context.hash, password)

    async def verify(self, password: str, password_hash: str) -> bool:
        return await asyncio.to_thread(self._safe_verify, password, password_hash)

    async def verify_and_update(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """(matches, a new hash to store when the old one is outdated)."""
        return await asyncio.to_thread(self._safe_verify_and_update, password, password_hash)

    async def dummy_verify(self) -> None:
        """Spend the time of one verification, so unknown users answer as slowly as known ones."""
        await asyncio.to_thread(self._context.dummy_verify)

    def _safe_verify(self, password: str, password_hash: str) -> bool:
        return self._safe_verify_and_update(password, password_hash)[0]

    def _safe_verify_and_update(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        try:
            matches, new_hash = self._context.verify_and_update(password, password_hash)
            return bool(matches), new_hash
        except ValueError:
            # A hash in a scheme no longer configured cannot be checked: no login.
            return False, None
