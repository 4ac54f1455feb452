"""Fan-out between processes and hosts through Redis pub/sub.

Each process holds one subscription connection. On it, it subscribes one channel per
user that has a socket in this process, plus one channel for broadcasts, so a process
only decodes what concerns its own sockets. Publishing uses a separate pooled client.

Socket counts per user across processes live in Redis too (presence.py).

Outages: Redis pub/sub keeps nothing for a subscriber that is away. When the
subscription connection fails, the broker reports itself down and reconnects with
backoff; once it is subscribed again it asks its handler to resync, and every socket
catches up from the store from its own cursor. Sends keep being stored meanwhile.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from notifier.delivery.broker import Addressed, BrokerEventHandler
from notifier.delivery.frames import CloseRequest, Envelope, Publication, Recipient, UserFrame
from notifier.delivery.presence import Presence, RedisPresence
from notifier.metrics import Metrics

logger = logging.getLogger(__name__)

SUBSCRIBE_BATCH = 1000
IDLE_PING_AFTER = 5  # seconds without traffic before we ping the subscription connection
IDLE_DEAD_AFTER = 15  # seconds without even a pong: treat the connection as gone


def encode(envelope: Envelope) -> bytes:
    match envelope:
        case Publication(content, recipients, committed_at):
            return orjson.dumps(
                {
                    "k": "n",
                    "c": content,
                    "t": committed_at,
                    "r": [
                        (r.username, r.notification_id, r.previous_id, r.unread_count)
                        for r in recipients
                    ],
                }
            )
        case UserFrame(username, frame):
            return orjson.dumps({"k": "f", "u": username, "f": frame})
        case CloseRequest(username, code, reason, session_ids):
            return orjson.dumps({"k": "x", "u": username, "c": code, "r": reason, "s": session_ids})
    raise TypeError(f"cannot encode {envelope!r}")


def decode(payload: bytes) -> Envelope:
    message = orjson.loads(payload)
    kind = message["k"]
    if kind == "n":
        recipients = [Recipient(*fields) for fields in message["r"]]
        return Publication(message["c"], recipients, message["t"])
    if kind == "f":
        return UserFrame(message["u"], message["f"])
    if kind == "x":
        session_ids = tuple(message["s"]) if message["s"] is not None else None
        return CloseRequest(message["u"], message["c"], message["r"], session_ids)
    raise ValueError(f"unknown message kind {kind!r}")


class RedisBroker:
    def __init__(
        self,
        url: str,
        channel_prefix: str,
        handler: BrokerEventHandler,
        metrics: Metrics,
        *,
        presence_ttl: float = 15.0,
        timeout: float = 2.0,
        max_reconnect_delay: float = 2.0,
    ) -> None:
        # No hidden retries: a failure must surface at once so sockets can catch up.
        no_retry = Retry(NoBackoff(), 0)
        self._publisher = Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=no_retry
        )
        self._subscriber = Redis.from_url(url, socket_connect_timeout=timeout, retry=no_retry)
        self._prefix = channel_prefix
        self._everyone = f"{channel_prefix}:all".encode()
        self._handler = handler
        self._metrics = metrics
        self._timeout = timeout
        self._max_reconnect_delay = max_reconnect_delay
        self._wanted: set[str] = set()
        self._confirmed: set[bytes] = set()
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._pubsub: PubSub | None = None
        self._up = False
        self._became_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._presence = RedisPresence(url, channel_prefix, ttl=presence_ttl, timeout=timeout)
        self.presence: Presence = self._presence

    def _channel(self, username: str) -> bytes:
        return f"{self._prefix}:user:{username}".encode()

    @property
    def up(self) -> bool:
        return self._up

    async def start(self) -> None:
        await self._presence.start()
        self._task = asyncio.create_task(self._run())
        # Give the first connection a moment, but never refuse to start: sends are
        # stored and sockets catch up once Redis answers.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._became_up.wait(), self._timeout)
        if not self._up:
            logger.warning("redis broker not reachable yet; live delivery waits for it")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._presence.stop()
        await self._publisher.aclose()
        await self._subscriber.aclose()

    async def subscribe(self, username: str) -> None:
        self._wanted.add(username)
        channel = self._channel(username)
        pubsub = self._pubsub
        if pubsub is None or channel in self._confirmed:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(waiter)
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(waiter, self._timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            # The listener sees the same failure, reconnects, and resyncs every socket.
            logger.info("subscribing %s failed: %r", username, exc)

    async def unsubscribe(self, username: str) -> None:
        self._wanted.discard(username)
        channel = self._channel(username)
        self._confirmed.discard(channel)
        pubsub = self._pubsub
        if pubsub is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await pubsub.unsubscribe(channel)

    async def publish(self, messages: Sequence[Addressed]) -> None:
        if not messages:
            return
        try:
            async with self._publisher.pipeline(transaction=False) as pipe:
                for username, envelope in messages:
                    channel = self._everyone if username is None else self._channel(username)
                    pipe.publish(channel, encode(envelope))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning("publish to redis failed (%r); delivering to local sockets only", exc)
            # Other processes catch up from the store once their subscription recovers.
            for _username, envelope in messages:
                self._handler.dispatch(envelope)

    # The subscription connection

    async def _run(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                # redis-py leaves PubSub.connect and PubSub.aclose unannotated.
                await pubsub.connect()  # type: ignore[no-untyped-call]
                self._pubsub = pubsub
                channels = [self._channel(name) for name in self._wanted]
                for start in range(0, len(channels), SUBSCRIBE_BATCH):
                    await pubsub.subscribe(*channels[start : start + SUBSCRIBE_BATCH])
                # Last, so its confirmation means every channel above is live too.
                await pubsub.subscribe(self._everyone)
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("redis subscription lost: %r", exc)
            finally:
                was_up = self._up
                self._set_down()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            delay = 0.1 if was_up else min(delay * 2, self._max_reconnect_delay)
            await asyncio.sleep(delay)

    async def _listen(self, pubsub: PubSub) -> None:
        idle = 0
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                idle += 1
                if idle == IDLE_PING_AFTER:
                    await pubsub.ping()
                elif idle >= IDLE_DEAD_AFTER:
                    raise ConnectionError("redis did not answer a ping")
                continue
            idle = 0
            kind = message["type"]
            if kind == "message":
                self._receive(message["data"])
            elif kind == "subscribe":
                self._confirm(message["channel"])

    def _receive(self, payload: bytes) -> None:
        try:
            envelope = decode(payload)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring a malformed broker message: %r", exc)
            return
        self._handler.dispatch(envelope)

    def _confirm(self, channel: bytes) -> None:
        self._confirmed.add(channel)
        for waiter in self._waiters.pop(channel, ()):
            if not waiter.done():
                waiter.set_result(None)
        if channel == self._everyone and not self._up:
            self._up = True
            self._became_up.set()
            self._metrics.broker_up.set(1)
            # Whatever was published while we were away is in the store.
            self._handler.resync()

    def _set_down(self) -> None:
        self._up = False
        self._pubsub = None
        self._became_up.clear()
        self._confirmed.clear()
        self._metrics.broker_up.set(0)
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._waiters.clear()
