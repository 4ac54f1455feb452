"""How many sockets each user has open on the whole server: every worker, every host.

The sockets-per-user limit and `open_sockets` in `GET /users/me` read it. The broker owns
it, like everything shared between processes: `LocalPresence` counts this process's
sockets (the memory broker: one process), `RedisPresence` the sockets of every process
sharing the Redis broker.

In Redis each process keeps a hash of its own counts (username -> sockets), and a sorted
set names the live processes with an expiry score. A heartbeat pushes its expiry out
every third of `ttl`; a process that dies without stopping (SIGKILL, a lost host) stops
counting once its expiry passes, at most `ttl` seconds later. Counting a user sums the
hashes of the live processes in one script, so the check and the increment of a new
socket are atomic across processes. One round trip per socket opened or closed, none
per delivery.

While Redis does not answer, each process falls back to its own counts and the limit
holds per process; once Redis answers again, the process rewrites its hash.
"""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import EncodableT

logger = logging.getLogger(__name__)


class Presence(Protocol):
    async def join(self, username: str, limit: int) -> bool:
        """Count one more socket of the user; False, counting nothing, if they hold `limit`."""
        ...

    async def leave(self, username: str) -> None:
        """One socket counted by `join` closed."""
        ...

    async def count(self, username: str) -> int:
        """The user's open sockets."""
        ...


class LocalPresence:
    """This process's sockets per user."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    async def join(self, username: str, limit: int) -> bool:
        return self.add(username, limit)

    async def leave(self, username: str) -> None:
        self.remove(username)

    async def count(self, username: str) -> int:
        return self._counts.get(username, 0)

    def add(self, username: str, limit: int | None = None) -> bool:
        held = self._counts.get(username, 0)
        if limit is not None and held >= limit:
            return False
        self._counts[username] = held + 1
        return True

    def remove(self, username: str) -> None:
        held = self._counts.get(username, 0)
        if held <= 1:
            self._counts.pop(username, None)
        else:
            self._counts[username] = held - 1

    def snapshot(self) -> dict[str, int]:
        return dict(self._counts)


# Times come from Redis (TIME), so processes on hosts with skewed clocks agree.
# KEYS: the live processes, this process's hash.
# ARGV: ttl in ms, this process, hash key prefix, whether this process has sockets (1/0),
# then the script's own arguments.
_PROLOGUE = """
redis.replicate_commands()
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then return -2 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ARGV[5]: the user.
_SUM_LIVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local total = tonumber(redis.call('HGET', KEYS[2], ARGV[5]) or '0')
for _, process in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if process ~= ARGV[2] then
    total = total + tonumber(redis.call('HGET', ARGV[3] .. process, ARGV[5]) or '0')
  end
end
"""

_KEEP_ALIVE = """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
"""

# ARGV[5], ARGV[6]: the user, the limit. -1: at the limit.
JOIN = (
    _PROLOGUE
    + _SUM_LIVE
    + """
if total >= tonumber(ARGV[6]) then return -1 end
redis.call('HINCRBY', KEYS[2], ARGV[5], 1)
"""
    + _KEEP_ALIVE
    + "return total + 1"
)

COUNT = _PROLOGUE + _SUM_LIVE + "return total"

LEAVE = (
    _PROLOGUE
    + """
if redis.call('HINCRBY', KEYS[2], ARGV[5], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[5]) end
return 0
"""
)

HEARTBEAT = _PROLOGUE + _KEEP_ALIVE + "return 0"

# ARGV[5...]: username, count, username, count, ... (ARGV[4] is 0: the hash may be gone).
RESYNC = (
    _PROLOGUE
    + """
redis.call('DEL', KEYS[2])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
"""
    + _KEEP_ALIVE
    + "return 0"
)
LOST = -2
"""A script's answer when this process's hash is gone though it has sockets: Redis lost
its data, or this process missed heartbeats for longer than the ttl."""


class RedisPresence:
    def __init__(self, url: str, prefix: str, *, ttl: float, timeout: float = 2.0) -> None:
        self._redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._live_key = f"{prefix}:presence"
        self._hash_prefix = f"{prefix}:presence:"
        self._keys = [self._live_key, self._hash_prefix + self._process]
        self._ttl_ms = max(1, round(ttl * 1000))
        self._heartbeat_every = ttl / 3
        self._local = LocalPresence()
        self._changes = 0  # local changes so far: a rewrite checks none happened meanwhile
        # One Redis call at a time, in the order the local counts changed: an increment
        # then never races a rewrite of the hash.
        self._lock = asyncio.Lock()
        # True while Redis does not hold this process's counts (not written yet, Redis
        # away, or stopped): sockets are then counted here only, and only the heartbeat
        # talks to Redis, so no socket waits on a Redis that does not answer.
        self._stale = True
        self._stopped = False
        self._scripts = {
            name: self._redis.register_script(source)
            for name, source in (
                ("join", JOIN),
                ("count", COUNT),
                ("leave", LEAVE),
                ("heartbeat", HEARTBEAT),
                ("resync", RESYNC),
            )
        }
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._rewrite()
        self._task = asyncio.create_task(self._beat())

    async def stop(self) -> None:
        self._stopped = self._stale = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Stop counting at once rather than when the expiry passes.
        with contextlib.suppress(RedisError, OSError):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zrem(self._live_key, self._process)
                pipe.delete(self._keys[1])
                await pipe.execute()
        await self._redis.aclose()

    async def join(self, username: str, limit: int) -> bool:
        async with self._lock:
            total = await self._run("join", username, limit)
            if total is None:  # counted here only
                return self._changed(self._local.add(username, limit))
            if total < 0:
                return False
            return self._changed(self._local.add(username))

    async def leave(self, username: str) -> None:
        async with self._lock:
            self._changed(True)
            self._local.remove(username)
            await self._run("leave", username)

    async def count(self, username: str) -> int:
        async with self._lock:
            total = await self._run("count", username)
        return await self._local.count(username) if total is None else total

    def _changed(self, changed: bool) -> bool:
        self._changes += changed
        return changed

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_every)
            if self._stale:
                await self._rewrite()
            else:
                async with self._lock:
                    await self._run("heartbeat")

    async def _rewrite(self) -> None:
        """Write this process's counts to Redis, without holding up sockets meanwhile."""
        changes = self._changes
        if not await self._resync():
            return
        if changes != self._changes:
            # A socket came or went during the write; Redis answers now, so write again
            # with sockets held back for that one round trip.
            async with self._lock:
                if not await self._resync():
                    return
        self._stale = self._stopped

    async def _run(self, script: str, *args: EncodableT) -> int | None:
        """Run a script (holding the lock); None if Redis does not hold the counts."""
        for _attempt in range(2):
            if self._stale:
                return None
            has_sockets = "1" if self._local.snapshot() else "0"
            try:
                result = await self._scripts[script](self._keys, self._args(has_sockets, *args))
            except (RedisError, OSError) as exc:
                self._lose(exc)
                return None
            if result != LOST:
                return int(result)
            logger.warning("redis lost this process's socket counts; writing them again")
            self._stale = not await self._resync()
        return None

    async def _resync(self) -> bool:
        counts = [item for pair in self._local.snapshot().items() for item in pair]
        try:
            await self._scripts["resync"](self._keys, self._args("0", *counts))
        except (RedisError, OSError) as exc:
            self._lose(exc)
            return False
        return True

    def _args(self, *more: EncodableT) -> list[EncodableT]:
        return [self._ttl_ms, self._process, self._hash_prefix, *more]

    def _lose(self, exc: BaseException) -> None:
        if not self._stale:
            logger.warning("redis presence unavailable (%r); counting this process only", exc)
        self._stale = True
