"""Login throttling, kept in the database so every worker counts the same attempts.

Two counters per failed login: one for the username, one for the client address. When a
counter reaches its limit within the window, that key is locked: first for `lockout`
seconds, then twice as long for each further lock in the window (after a lock ends, each
new failure locks again), never longer than the window. Every attempt on a locked key
answers 429 before any password is checked, so a lock cannot be probed. A successful
login clears its username's count, and successes never count, so a user's own parallel
logins are never throttled. Password checks for one username run one at a time in each
process, so a burst of parallel guesses meets the lock after the limit.

Failures against one username never lock another username; the address counter is
higher and is what stops one client from spraying passwords across many names.
"""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from notifier.db.auth_store import AuthStore
from notifier.errors import LoginThrottledError


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures_per_user: int
    """0 turns the username counter off."""
    max_failures_per_address: int
    """0 turns the address counter off."""
    window: int
    lockout: int


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    username_key: str | None
    address_key: str | None
    limits: dict[str, int]


class LoginThrottle:
    def __init__(self, store: AuthStore, policy: ThrottlePolicy) -> None:
        self._store = store
        self._policy = policy
        # One password check per username at a time in this process, so a burst of
        # parallel guesses is checked one by one and meets the lock after the limit.
        self._checking: dict[str, asyncio.Lock] = {}
        self._queued: Counter[str] = Counter()

    @asynccontextmanager
    async def attempt(self, username: str, address: str | None) -> AsyncIterator[LoginAttempt]:
        """Hold the username's turn for one password check; raises `LoginThrottledError` while
        the username or the address is locked."""
        username_key = f"user:{username}" if self._policy.max_failures_per_user else None
        address_key = (
            f"addr:{address}" if self._policy.max_failures_per_address and address else None
        )
        limits = {
            key: limit
            for key, limit in (
                (username_key, self._policy.max_failures_per_user),
                (address_key, self._policy.max_failures_per_address),
            )
            if key is not None
        }
        self._queued[username] += 1
        lock = self._checking.setdefault(username, asyncio.Lock())
        try:
            async with lock:
                if limits:
                    now = int(time.time())
                    locked_until = await self._store.locked_until(limits)
                    if locked_until > now:
                        raise LoginThrottledError(locked_until - now)
                yield LoginAttempt(username_key, address_key, limits)
        finally:
            self._queued[username] -= 1
            if not self._queued[username]:
                del self._queued[username], self._checking[username]

    async def failed(self, attempt: LoginAttempt) -> None:
        """Count a wrong password against the username and the address; lock at the limit."""
        if not attempt.limits:
            return
        now = int(time.time())
        counted = await self._store.count_attempts(attempt.limits, now, self._policy.window)
        for key, limit in attempt.limits.items():
            if counted[key][0] >= limit:
                await self._store.lock_if_unlocked(
                    key, now, self._policy.lockout, self._policy.window
                )
        # Failures are what create counters; they also sweep the ones that went quiet.
        await self._store.forget_attempts(now, self._policy.window)

    async def succeeded(self, attempt: LoginAttempt) -> None:
        # Only the username's count: one good login from an address must not wipe out
        # the failures that address piled up against other names.
        if attempt.username_key:
            await self._store.clear_failures(attempt.username_key)
