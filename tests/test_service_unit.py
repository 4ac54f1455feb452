"""Unit tests of `NotificationService` batching (group commit) with a fake store and broker.

Sends that wait while a batch is being stored go together in the next one, in the order
they were sent, at most `max_batch` at a time; they are published in commit order; a send
that fails alone fails only its caller; a batch whose transaction fails fails all its
callers, publishes nothing, and the next batch is stored as usual.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import pytest

from notifier.db.records import MessageContent
from notifier.db.sending import SendOutcome, SendRequest, SendResult, StreamEntry
from notifier.delivery.broker import Addressed
from notifier.delivery.frames import Publication
from notifier.delivery.hub import Hub
from notifier.delivery.presence import LocalPresence, Presence
from notifier.delivery.service import NotificationService
from notifier.errors import UnknownUsersError
from notifier.metrics import Metrics

pytestmark = pytest.mark.unit

WAIT = 10.0


class FakeStore:
    """Stores sends in memory, one stream per user; `gate` holds a batch mid-transaction."""

    def __init__(self) -> None:
        self.batches: list[list[SendRequest]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next: Exception | None = None
        self.users = {"alice", "bob", "carol"}
        self.heads: dict[str, int] = {}
        self._next_id = 0

    async def send_batch(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        self.batches.append(list(requests))
        await self.gate.wait()
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure
        return [self._store(request) for request in requests]

    def _store(self, request: SendRequest) -> SendOutcome:
        names = sorted(self.users) if request.usernames is None else list(request.usernames)
        unknown = [name for name in names if name not in self.users]
        if unknown:
            return UnknownUsersError(unknown)
        entries = []
        for name in names:
            self._next_id += 1
            entries.append(
                StreamEntry(
                    self._next_id,
                    name,
                    request.content,
                    datetime(2026, 1, 1, tzinfo=UTC),
                    self.heads.get(name, 0),
                    1,
                )
            )
            self.heads[name] = self._next_id
        return SendResult(entries, None, replayed=False)


class FakeBroker:
    """Records each publish call; nothing crosses processes."""

    def __init__(self) -> None:
        self.presence: Presence = LocalPresence()
        self.published: list[list[Addressed]] = []
        self.up = True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def subscribe(self, username: str) -> None:
        return None

    async def unsubscribe(self, username: str) -> None:
        return None

    async def publish(self, messages: Sequence[Addressed]) -> None:
        self.published.append(list(messages))


def request(title: str, *usernames: str, everyone: bool = False) -> SendRequest:
    return SendRequest(
        usernames=None if everyone else list(usernames),
        content=MessageContent(title=title, body="", data={}),
        sender_id=1,
    )


def titles(messages: list[Addressed]) -> list[tuple[str | None, list[int]]]:
    """(address, notification ids) of each published publication."""
    out = []
    for username, envelope in messages:
        assert isinstance(envelope, Publication)
        out.append((username, [r.notification_id for r in envelope.recipients]))
    return out


async def wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110 (polling state the code under test owns)
            await asyncio.sleep(0)


@pytest.fixture
async def parts() -> AsyncIterator[tuple[NotificationService, FakeStore, FakeBroker, Metrics]]:
    store, broker, metrics = FakeStore(), FakeBroker(), Metrics()
    service = NotificationService(store, Hub(metrics), broker, metrics, max_batch=3)
    await service.start()
    yield service, store, broker, metrics
    await service.stop()


async def test_sends_waiting_on_a_batch_are_stored_together_in_order(parts) -> None:
    service, store, broker, metrics = parts
    store.gate.clear()
    first = asyncio.create_task(service.send(request("1", "alice")))
    await wait_for(lambda: len(store.batches) == 1)
    # While the first batch is in its transaction, five more arrive: max_batch is 3.
    waiting = [
        asyncio.create_task(service.send(request(str(n), "bob" if n % 2 else "alice")))
        for n in range(2, 7)
    ]
    await asyncio.sleep(0)
    store.gate.set()
    results = await asyncio.gather(first, *waiting)

    assert [[r.content.title for r in batch] for batch in store.batches] == [
        ["1"],
        ["2", "3", "4"],
        ["5", "6"],
    ]
    # Each caller gets its own send; ids follow the order of the sends.
    assert [result.entries[0].content.title for result in results] == [str(n) for n in range(1, 7)]
    assert [result.entries[0].notification_id for result in results] == [1, 2, 3, 4, 5, 6]
    # One publish per batch, in commit order, each send addressed to its user.
    assert [titles(call) for call in broker.published] == [
        [("alice", [1])],
        [("alice", [2]), ("bob", [3]), ("alice", [4])],
        [("bob", [5]), ("alice", [6])],
    ]
    assert metrics.registry.get_sample_value("notifier_notifications_stored_total") == 6


async def test_a_send_to_unknown_users_fails_alone(parts) -> None:
    service, store, broker, _metrics = parts
    store.gate.clear()
    blocker = asyncio.create_task(service.send(request("0", "carol")))
    await wait_for(lambda: len(store.batches) == 1)
    good = asyncio.create_task(service.send(request("ok", "alice", "bob")))
    bad = asyncio.create_task(service.send(request("bad", "alice", "nobody")))
    store.gate.set()
    await blocker
    stored = await good
    with pytest.raises(UnknownUsersError) as raised:
        await bad
    assert raised.value.usernames == ["nobody"]
    assert len(store.batches) == 2 and len(store.batches[1]) == 2
    assert [e.username for e in stored.entries] == ["alice", "bob"]
    # Nothing of the failed send was published, nor stored for alice.
    assert titles(broker.published[1]) == [("alice", [2]), ("bob", [3])]
    assert store.heads == {"carol": 1, "alice": 2, "bob": 3}


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_is_stored(parts) -> None:
    service, store, broker, _metrics = parts
    store.gate.clear()
    store.fail_next = RuntimeError("database went away")
    doomed = [asyncio.create_task(service.send(request("lost", "alice")))]
    await wait_for(lambda: len(store.batches) == 1)
    doomed.append(asyncio.create_task(service.send(request("second", "bob"))))
    store.gate.set()
    with pytest.raises(RuntimeError, match="database went away"):
        await doomed[0]
    # The second send was in the next batch, which the failure did not touch.
    assert (await doomed[1]).entries[0].username == "bob"
    assert [titles(call) for call in broker.published] == [[("bob", [1])]]
    # The sender task survived: a later send is stored and published.
    later = await service.send(request("later", "carol"))
    assert later.entries[0].notification_id == 2
    assert titles(broker.published[-1]) == [("carol", [2])]


async def test_a_broadcast_is_published_once_for_everyone(parts) -> None:
    service, _store, broker, _metrics = parts
    result = await service.send(request("all", everyone=True))
    assert [e.username for e in result.entries] == ["alice", "bob", "carol"]
    assert titles(broker.published[0]) == [(None, [1, 2, 3])]


async def test_a_caller_that_went_away_does_not_stop_the_others(parts) -> None:
    service, store, broker, _metrics = parts
    store.gate.clear()
    blocker = asyncio.create_task(service.send(request("0", "carol")))
    await wait_for(lambda: len(store.batches) == 1)
    gone = asyncio.create_task(service.send(request("gone", "alice")))
    kept = asyncio.create_task(service.send(request("kept", "bob")))
    await asyncio.sleep(0)
    gone.cancel()
    store.gate.set()
    await blocker
    assert (await kept).entries[0].username == "bob"
    # Its send was stored all the same (it had been queued) and is delivered live.
    assert titles(broker.published[1]) == [("alice", [2]), ("bob", [3])]
    assert gone.cancelled()


async def test_stop_cancels_sends_still_waiting() -> None:
    store, broker, metrics = FakeStore(), FakeBroker(), Metrics()
    service = NotificationService(store, Hub(metrics), broker, metrics)
    await service.start()
    store.gate.clear()
    first = asyncio.create_task(service.send(request("in flight", "alice")))
    await wait_for(lambda: len(store.batches) == 1)
    queued = asyncio.create_task(service.send(request("queued", "bob")))
    await asyncio.sleep(0)
    await service.stop()
    for task in (first, queued):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert broker.published == []
