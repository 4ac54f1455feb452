"""Password hashing with passlib's CryptContext (the maintained `libpass` distribution)."""

import asyncio
from collections.abc import Sequence

from passlib.context import CryptContext


class PasswordHasher:
    """Hashes and verifies passwords off the event loop: argon2 is slow on purpose."""

    def __init__(self, schemes: Sequence[str] = ("argon2",)) -> None:
        self._context = CryptContext(schemes=list(schemes), deprecated="auto")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._context.hash, password)

    async def verify(self, password: str, password_hash: str) -> bool:
        return await asyncio.to_thread(self._context.verify, password, password_hash)

    async def dummy_verify(self) -> None:
        """Spend the time of one verification, so unknown users answer as slowly as known ones."""
        await asyncio.to_thread(self._context.dummy_verify)
