"""Login throttling, kept in the database so every worker counts the same attempts.

Two counters per login attempt: one for the username, one for the client address. An
attempt is counted *before* its password is checked (and uncounted if it succeeds), so
a burst of concurrent guesses cannot outrun the count while the slow hash runs.

When a counter reaches its limit within the window, that key is locked: first for
`lockout` seconds, then twice as long for each further lock in the window (after a lock
ends, each new attempt locks again), never longer than the window. The attempt that
reaches the limit still gets its answer; every other attempt on a locked key answers
429 before any password is checked, so a lock cannot be probed. A successful login
clears its username's count.

Failures against one username never lock another username; the address counter is
higher and is what stops one client from spraying passwords across many names.
"""

import time
from dataclasses import dataclass, field

from notifier.db.auth_store import AuthStore


class LoginThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = max(1, retry_after)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures_per_user: int
    """0 turns the username counter off."""
    max_failures_per_address: int
    """0 turns the address counter off."""
    window: int
    lockout: int


@dataclass(slots=True)
class LoginAttempt:
    username_key: str | None
    address_key: str | None
    locks: dict[str, int] = field(default_factory=dict)
    """Locks this attempt took (key -> seconds), restarted when its password fails: the
    lock then runs from the answer, not from the start of the slow hash."""


class LoginThrottle:
    def __init__(self, store: AuthStore, policy: ThrottlePolicy) -> None:
        self._store = store
        self._policy = policy

    async def begin(self, username: str, address: str | None) -> LoginAttempt:
        """Count an attempt, or raise `LoginThrottled` while the username or address is locked."""
        attempt = LoginAttempt(
            f"user:{username}" if self._policy.max_failures_per_user else None,
            f"addr:{address}" if self._policy.max_failures_per_address and address else None,
        )
        limits = {
            key: limit
            for key, limit in (
                (attempt.username_key, self._policy.max_failures_per_user),
                (attempt.address_key, self._policy.max_failures_per_address),
            )
            if key is not None
        }
        if not limits:
            return attempt
        now = int(time.time())
        locked_until = await self._store.locked_until(limits)
        if locked_until > now:
            raise LoginThrottled(locked_until - now)
        counted = await self._store.count_attempts(limits, now, self._policy.window)
        for key, limit in limits.items():
            attempts, locked_until = counted[key]
            if locked_until > now:
                raise LoginThrottled(locked_until - now)
            if attempts >= limit:
                until = await self._store.lock_if_unlocked(
                    key, now, self._policy.lockout, self._policy.window
                )
                if until is None:
                    # Another attempt got there first and holds this round's lock.
                    raise LoginThrottled(await self._store.locked_until([key]) - now)
                attempt.locks[key] = until - now
        return attempt

    async def failed(self, attempt: LoginAttempt) -> None:
        now = int(time.time())
        for key, seconds in attempt.locks.items():
            await self._store.extend_lock(key, now + seconds)
        # Failures are what create counters; they also sweep the ones that went quiet.
        await self._store.forget_attempts(now, self._policy.window)

    async def succeeded(self, attempt: LoginAttempt) -> None:
        if attempt.username_key:
            await self._store.clear_failures(attempt.username_key)
        if attempt.address_key:
            # Only this attempt: one good login from an address must not wipe out the
            # failures that address piled up against other names.
            await self._store.uncount_attempt(attempt.address_key)
