"""The Redis broker in-process, against a real Redis, with a fake event handler.

Publishing, per-user routing, broadcasts, close requests, a malformed message, and an
outage: the broker reports itself down, keeps local delivery, and once Redis is back it
resubscribes and asks its handler to resync. Each test uses its own channel prefix; the
outage tests start their own `redis-server` (conftest's `redis_server`) so they can kill it.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import redis.asyncio
from conftest import RUN_ID, RedisServer

from notifier.delivery.broker import Addressed, BrokerEventHandler, MemoryBroker
from notifier.delivery.frames import CloseRequest, Envelope, Publication, Recipient, UserFrame
from notifier.delivery.redis_broker import RedisBroker, encode
from notifier.metrics import Metrics

pytestmark = pytest.mark.integration

WAIT = 10.0  # seconds: generous, the test machine may be loaded


class FakeHandler:
    """Records what the broker hands this process."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.resyncs = 0
        self._changed = asyncio.Event()

    def dispatch(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)
        self._changed.set()

    def resync(self) -> None:
        self.resyncs += 1
        self._changed.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


def prefix() -> str:
    return f"notifier-test-{RUN_ID}-{uuid.uuid4().hex[:8]}"


def publication(username: str, notification_id: int) -> Publication:
    return Publication(
        f'"title":"n{notification_id}"', [Recipient(username, notification_id, 0, 1)], 1.0
    )


def broker_up(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("notifier_broker_up")


async def wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110 (polling state the code under test owns)
            await asyncio.sleep(0.02)


@asynccontextmanager
async def running_broker(
    url: str, channel_prefix: str, handler: BrokerEventHandler, metrics: Metrics | None = None
) -> AsyncIterator[RedisBroker]:
    broker = RedisBroker(
        url,
        channel_prefix,
        handler,
        metrics or Metrics(),
        presence_ttl=3.0,
        timeout=1.0,
        max_reconnect_delay=0.2,
    )
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def test_the_memory_broker_hands_every_envelope_to_its_handler() -> None:
    handler = FakeHandler()
    broker = MemoryBroker(handler)
    messages: list[Addressed] = [
        ("alice", publication("alice", 1)),
        (None, publication("bob", 2)),
        ("alice", CloseRequest("alice", 1008, "token revoked", None)),
    ]
    await broker.publish(messages)
    assert handler.envelopes == [envelope for _username, envelope in messages]
    assert broker.up and handler.resyncs == 0


async def test_publish_routes_per_user_and_broadcasts_to_every_process(redis_url: str) -> None:
    channels = prefix()
    alice_side, bob_side = FakeHandler(), FakeHandler()
    async with (
        running_broker(redis_url, channels, alice_side) as alice_broker,
        running_broker(redis_url, channels, bob_side) as bob_broker,
    ):
        assert alice_broker.up and bob_broker.up
        # Each handler was asked to resync once, when its subscription first went live.
        assert alice_side.resyncs == bob_side.resyncs == 1
        await alice_broker.subscribe("alice")
        await bob_broker.subscribe("bob")
        everyone = Publication(
            '"title":"all"', [Recipient("alice", 3, 1, 2), Recipient("bob", 4, 2, 2)], 2.0
        )
        read = UserFrame("bob", '{"type":"read","ids":[2],"unread_count":0}')
        await alice_broker.publish(
            [("alice", publication("alice", 1)), ("bob", read), (None, everyone)]
        )
        # The broadcast was published last: once it arrives, anything misrouted before it
        # would have arrived too (one connection, one order).
        await alice_side.wait_until(lambda: everyone in alice_side.envelopes)
        await bob_side.wait_until(lambda: everyone in bob_side.envelopes)
        assert alice_side.envelopes == [publication("alice", 1), everyone]
        assert bob_side.envelopes == [read, everyone]


async def test_close_requests_reach_the_users_process_with_their_sessions(redis_url: str) -> None:
    channels = prefix()
    sender, holder = FakeHandler(), FakeHandler()
    async with (
        running_broker(redis_url, channels, sender) as sending_broker,
        running_broker(redis_url, channels, holder) as holding_broker,
    ):
        await holding_broker.subscribe("carol")
        some = CloseRequest("carol", 1008, "token revoked", ("s1", "s2"))
        every = CloseRequest("carol", 1008, "user disabled", None)
        await sending_broker.publish([("carol", some), ("carol", every)])
        await holder.wait_until(lambda: len(holder.envelopes) == 2)
        assert holder.envelopes == [some, every]
        assert sender.envelopes == []  # not subscribed to carol


async def test_after_unsubscribe_only_broadcasts_arrive(redis_url: str) -> None:
    handler = FakeHandler()
    async with running_broker(redis_url, prefix(), handler) as broker:
        await broker.subscribe("dave")
        await broker.publish([("dave", publication("dave", 1))])
        await handler.wait_until(lambda: len(handler.envelopes) == 1)
        await broker.unsubscribe("dave")
        last = publication("dave", 3)
        await broker.publish([("dave", publication("dave", 2)), (None, last)])
        await handler.wait_until(lambda: last in handler.envelopes)
        assert handler.envelopes == [publication("dave", 1), last]


async def test_a_malformed_message_is_skipped_and_the_next_one_arrives(redis_url: str) -> None:
    channels = prefix()
    handler = FakeHandler()
    async with running_broker(redis_url, channels, handler) as broker:
        await broker.subscribe("erin")
        after = publication("erin", 7)
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            channel = f"{channels}:user:erin"
            for garbage in (b"not json", b'{"k":"?"}', b'{"k":"n"}', b"[]"):
                await client.publish(channel, garbage)
            await client.publish(channel, encode(after))
        finally:
            await client.aclose()
        await handler.wait_until(lambda: after in handler.envelopes)
        assert handler.envelopes == [after]
        assert broker.up


async def test_an_outage_delivers_locally_then_resubscribes_and_resyncs(
    redis_server: RedisServer,
) -> None:
    handler = FakeHandler()
    metrics = Metrics()
    async with running_broker(redis_server.url, prefix(), handler, metrics) as broker:
        await broker.subscribe("frank")
        assert broker.up and handler.resyncs == 1
        assert broker_up(metrics) == 1

        redis_server.kill()
        await wait_for(lambda: not broker.up)
        assert broker_up(metrics) == 0
        # Subscribing while down returns at once; the reconnect subscribes it.
        async with asyncio.timeout(WAIT):
            await broker.subscribe("grace")
        # Publishing while down never raises: this process's sockets still get it.
        local = publication("frank", 1)
        await broker.publish([("frank", local)])
        assert handler.envelopes == [local]

        redis_server.start()
        await handler.wait_until(lambda: handler.resyncs == 2)
        assert broker.up
        assert broker_up(metrics) == 1
        # Both users' channels are live again: the broadcast channel is subscribed last.
        for_frank, for_grace = publication("frank", 2), publication("grace", 3)
        await broker.publish([("frank", for_frank), ("grace", for_grace)])
        await handler.wait_until(lambda: for_grace in handler.envelopes)
        assert handler.envelopes == [local, for_frank, for_grace]


async def test_start_without_redis_waits_then_comes_up_and_resyncs(
    redis_server: RedisServer,
) -> None:
    redis_server.kill()
    handler = FakeHandler()
    async with running_broker(redis_server.url, prefix(), handler) as broker:
        # start() gave up waiting without failing: sends are stored meanwhile.
        assert not broker.up and handler.resyncs == 0
        await broker.subscribe("heidi")  # returns at once while down
        redis_server.start()
        await handler.wait_until(lambda: handler.resyncs == 1)
        assert broker.up
        message = publication("heidi", 1)
        await broker.publish([("heidi", message)])
        await handler.wait_until(lambda: message in handler.envelopes)


async def test_publishing_nothing_sends_nothing(redis_url: str) -> None:
    handler = FakeHandler()
    async with running_broker(redis_url, prefix(), handler) as broker:
        await broker.subscribe("ivan")
        await broker.publish([])
        last = publication("ivan", 9)
        await broker.publish([(None, last)])
        await handler.wait_until(lambda: last in handler.envelopes)
        assert handler.envelopes == [last]
