"""Login throttling, kept in the database so every worker counts the same failures.

Two counters per failed login: one for the username, one for the client address. When a
counter reaches its limit within the window, that key is locked: first for
`login_lockout` seconds, doubling with each further failure, never longer than the window.
A locked key answers 429 before any password is checked, so a lock cannot be probed.

Failures against one username never lock another username; the address counter is
higher and is what stops one client from spraying passwords across many names.
"""

import time
from dataclasses import dataclass

from notifier.db.auth_store import AuthStore


class LoginThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures_per_user: int
    """0 turns the username counter off."""
    max_failures_per_address: int
    """0 turns the address counter off."""
    window: int
    lockout: int


class LoginThrottle:
    def __init__(self, store: AuthStore, policy: ThrottlePolicy) -> None:
        self._store = store
        self._policy = policy

    def _limits(self, username: str, address: str | None) -> dict[str, int]:
        limits = {}
        if self._policy.max_failures_per_user:
            limits[f"user:{username}"] = self._policy.max_failures_per_user
        if self._policy.max_failures_per_address and address:
            limits[f"addr:{address}"] = self._policy.max_failures_per_address
        return limits

    async def check(self, username: str, address: str | None) -> None:
        """Raise `LoginThrottled` while the username or the address is locked."""
        keys = self._limits(username, address)
        if not keys:
            return
        now = int(time.time())
        locked_until = await self._store.locked_until(keys)
        if locked_until > now:
            raise LoginThrottled(locked_until - now)

    async def failed(self, username: str, address: str | None) -> None:
        now = int(time.time())
        for key, limit in self._limits(username, address).items():
            failures = await self._store.record_failure(key, now, self._policy.window)
            if failures >= limit:
                await self._store.lock(key, now + self._lock_seconds(failures - limit))

    async def succeeded(self, username: str) -> None:
        # Only the username's count: one good login from an address must not wipe out
        # the failures that address piled up against other names.
        if self._policy.max_failures_per_user:
            await self._store.clear_failures(f"user:{username}")

    def _lock_seconds(self, over_limit: int) -> int:
        return min(self._policy.lockout * 2 ** min(over_limit, 20), self._policy.window)
