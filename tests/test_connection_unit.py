"""Unit tests of the hub and of one connection's cursor, catch-up and close logic."""

import asyncio

import pytest

from notifier.delivery import closes
from notifier.delivery.connection import Connection, SocketGone
from notifier.delivery.frames import CloseRequest, Publication, Recipient, UserFrame
from notifier.delivery.hub import Hub
from notifier.delivery.redis_broker import decode, encode
from notifier.metrics import Metrics

pytestmark = pytest.mark.unit


class FakeSocket:
    def __init__(self, block: bool = False) -> None:
        self.sent: list[str] = []
        self.closes: list[tuple[int, str]] = []
        self.unblocked = asyncio.Event()
        if not block:
            self.unblocked.set()

    async def send_text(self, frame: str) -> None:
        await self.unblocked.wait()
        self.sent.append(frame)

    async def close(self, code: int, reason: str) -> None:
        await self.unblocked.wait()
        self.closes.append((code, reason))


class FakeStore:
    """One user's stored stream; `page` answers like `NotificationService.replay`."""

    def __init__(self, ids: list[int] | None = None, page_size: int = 3) -> None:
        self.ids = list(ids or [])
        self.page_size = page_size
        self.reads = 0

    async def page(self, after_id: int) -> tuple[list[tuple[int, str]], bool]:
        self.reads += 1
        await asyncio.sleep(0)
        rows = [i for i in self.ids if i > after_id][: self.page_size]
        return [(i, f"n{i}") for i in rows], len(rows) < self.page_size


def make_connection(
    socket: FakeSocket,
    store: FakeStore | None = None,
    queue_size: int = 4,
    user: str = "u",
    stuck_timeout: float = 5.0,
    metrics: Metrics | None = None,
) -> Connection:
    return Connection(
        user,
        socket.send_text,
        socket.close,
        (store or FakeStore()).page,
        queue_size=queue_size,
        close_timeout=0.2,
        stuck_timeout=stuck_timeout,
        metrics=metrics or Metrics(),
    )


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_replay_then_live_without_duplicates():
    socket, store = FakeSocket(), FakeStore([1, 2, 3, 4, 5])
    connection = make_connection(socket, store, queue_size=10)
    # Live frames 5 and 6 arrive while the replay (which also has 5) is pending.
    connection.offer(5, 4, "live-5", 0.0)
    store.ids.append(6)
    connection.offer(6, 5, "live-6", 0.0)
    connection.start(1, catch_up=True)
    await settle()
    assert socket.sent == ["n2", "n3", "n4", "n5", "n6"]
    assert connection.cursor == 6
    await connection.stop_writer()


async def test_without_since_only_new_frames_are_written():
    socket = FakeSocket()
    connection = make_connection(socket, FakeStore([1, 2]))
    connection.start(2, catch_up=False)
    connection.offer(2, 1, "old-2", 0.0)
    connection.offer(7, 2, "live-7", 0.0)
    await settle()
    assert socket.sent == ["live-7"]
    await connection.stop_writer()


async def test_frames_out_of_order_are_put_back_in_order_from_the_store():
    # Two workers committed 10 then 11, but 11's frame arrives first.
    socket, store = FakeSocket(), FakeStore([9, 10, 11])
    connection = make_connection(socket, store)
    connection.start(9, catch_up=False)
    connection.offer(11, 10, "live-11", 0.0)
    await settle()
    connection.offer(10, 9, "live-10", 0.0)
    await settle()
    assert socket.sent == ["n10", "n11"]
    assert connection.cursor == 11
    await connection.stop_writer()


async def test_overflow_catches_up_from_the_store_without_loss_or_disconnect():
    socket = FakeSocket(block=True)
    store = FakeStore(page_size=4)
    metrics = Metrics()
    connection = make_connection(socket, store, queue_size=3, metrics=metrics)
    connection.start(0, catch_up=False)
    for notification_id in range(1, 21):
        store.ids.append(notification_id)
        connection.offer(notification_id, notification_id - 1, f"live-{notification_id}", 0.0)
    assert not connection.closing
    assert metrics.queue_overflows._value.get() >= 1
    socket.unblocked.set()
    await settle()
    # Every id exactly once, in order; what the queue dropped came from the store.
    numbers = [int(frame.split("-")[-1].lstrip("n")) for frame in socket.sent]
    assert numbers == list(range(1, 21))
    assert any(frame.startswith("n") for frame in socket.sent)
    assert not connection.closing
    await connection.stop_writer()


async def test_a_socket_stuck_past_the_timeout_is_closed_with_1013():
    socket, store = FakeSocket(block=True), FakeStore()
    connection = make_connection(socket, store, queue_size=2, stuck_timeout=0.1)
    woken = asyncio.Event()
    connection.on_closed = woken.set
    connection.start(0, catch_up=False)

    def offer(notification_id: int) -> None:
        store.ids.append(notification_id)
        connection.offer(notification_id, notification_id - 1, f"live-{notification_id}", 0.0)

    for notification_id in range(1, 4):  # overflows, but no write has waited long yet
        offer(notification_id)
    await settle()
    assert not connection.closing
    await asyncio.sleep(0.15)
    for notification_id in range(4, 7):  # overflows again, a write now stuck too long
        offer(notification_id)
    await asyncio.wait_for(woken.wait(), 2)
    assert connection.closing
    assert socket.sent == []


async def test_close_of_a_stuck_socket_gives_up_and_wakes_the_reader():
    socket = FakeSocket(block=True)
    connection = make_connection(socket)
    woken = asyncio.Event()
    connection.on_closed = woken.set
    await asyncio.wait_for(connection.close(closes.shutdown(5000)), timeout=2)
    assert woken.is_set()
    assert socket.closes == []


async def test_store_failure_closes_with_1011():
    socket = FakeSocket()

    async def failing_page(after_id: int) -> tuple[list[tuple[int, str]], bool]:
        raise RuntimeError("database gone")

    connection = Connection(
        "u",
        socket.send_text,
        socket.close,
        failing_page,
        queue_size=4,
        close_timeout=0.2,
        stuck_timeout=5,
        metrics=Metrics(),
    )
    connection.start(0, catch_up=True)
    await settle()
    await asyncio.wait_for(connection.close(closes.shutdown(5000)), timeout=2)
    assert socket.closes == [(1011, "internal error")]


async def test_gone_socket_is_not_an_error():
    async def gone(frame: str) -> None:
        raise SocketGone

    closed: list[tuple[int, str]] = []

    async def close(code: int, reason: str) -> None:
        closed.append((code, reason))

    connection = Connection(
        "u",
        gone,
        close,
        FakeStore().page,
        queue_size=4,
        close_timeout=0.2,
        stuck_timeout=5,
        metrics=Metrics(),
    )
    connection.start(0, catch_up=False)
    connection.offer(1, 0, "x", 0.0)
    await settle()
    assert not connection.closing
    assert closed == []


async def test_hub_delivers_to_every_socket_of_the_recipient_only():
    hub = Hub(Metrics())
    a1, a2, b = FakeSocket(), FakeSocket(), FakeSocket()
    connections = [
        make_connection(a1, user="a"),
        make_connection(a2, user="a"),
        make_connection(b, user="b"),
    ]
    for connection in connections:
        assert hub.add(connection)
        connection.start(0, catch_up=False)
    hub.dispatch(Publication('"title":"t"', [Recipient("a", 1, 0, 1)], 0.0))
    hub.dispatch(UserFrame("b", "read-event"))
    await settle()
    assert (
        a1.sent
        == a2.sent
        == [
            '{"type":"notification","notification":{"id":1,"username":"a",'
            '"title":"t"},"unread_count":1}'
        ]
    )
    assert b.sent == ["read-event"]
    assert hub.count("a") == 2 and hub.count("b") == 1
    assert not hub.remove(connections[0])
    assert hub.remove(connections[1])
    assert not hub.has_user("a")
    await hub.close_all(lambda: closes.shutdown(1000))
    [(code, reason)] = b.closes
    assert code == 1012 and reason.startswith("server restarting; retry_after_ms=")
    assert not hub.add(make_connection(FakeSocket(), user="c"))


async def test_hub_closes_only_the_named_sessions():
    hub = Hub(Metrics())
    kept, revoked = FakeSocket(), FakeSocket()
    first, second = make_connection(kept, user="a"), make_connection(revoked, user="a")
    first.session_id, second.session_id = "s1", "s2"
    for connection in (first, second):
        hub.add(connection)
        connection.start(0, catch_up=False)
    hub.dispatch(CloseRequest("a", 1008, "token revoked", ("s2",)))
    await settle()
    assert revoked.closes == [(1008, "token revoked")]
    assert kept.closes == []
    await first.stop_writer()


@pytest.mark.parametrize(
    "envelope",
    [
        Publication('"title":"x"', [Recipient("a", 5, 3, 2), Recipient("b", 6, 0, 1)], 12.5),
        UserFrame("a", '{"type":"read","ids":[1],"unread_count":0}'),
        CloseRequest("a", 1008, "token revoked", ("s1", "s2")),
        CloseRequest("a", 1008, "user disabled", None),
    ],
)
def test_broker_messages_round_trip(envelope):
    assert decode(encode(envelope)) == envelope


def test_shutdown_hint_is_jittered_within_the_spread():
    hints = {int(closes.shutdown(5000).reason.rsplit("=", 1)[1]) for _ in range(200)}
    assert min(hints) >= 500 and max(hints) <= 5000
    assert len(hints) > 50


class FastSocket(FakeSocket):
    """A socket with the synchronous write: takes frames at once unless `paused`."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.written_now: list[str] = []

    def write_now(self, frame: str) -> bool:
        if self.paused:
            return False
        self.sent.append(frame)
        self.written_now.append(frame)
        return True


def fast_connection(socket: FastSocket, store: FakeStore, metrics: Metrics | None = None):
    return Connection(
        "u",
        socket.send_text,
        socket.close,
        store.page,
        queue_size=4,
        close_timeout=0.2,
        stuck_timeout=5,
        metrics=metrics or Metrics(),
        write_now=socket.write_now,
    )


async def test_an_idle_live_socket_is_written_at_once_without_a_task():
    socket, store = FastSocket(), FakeStore([1])
    connection = fast_connection(socket, store)
    connection.start(1, catch_up=False)
    assert connection.offer(2, 1, "live-2", 0.0) is True
    assert socket.written_now == ["live-2"] and connection.cursor == 2
    assert connection._writer is None
    connection.offer_event("read-event")
    assert socket.written_now == ["live-2", "read-event"]
    assert connection.offer(2, 1, "live-2", 0.0) is False  # a duplicate
    assert socket.sent == ["live-2", "read-event"]
    await connection.stop_writer()


async def test_a_paused_transport_falls_back_to_the_queue_in_order():
    socket, store = FastSocket(), FakeStore()
    connection = fast_connection(socket, store)
    connection.start(0, catch_up=False)
    socket.paused = True
    socket.unblocked.clear()  # the awaited send waits too, as a paused transport's does
    assert connection.offer(1, 0, "live-1", 0.0) is False
    socket.paused = False
    # The writer has frame 1 in flight: frame 2 must queue behind it, not overtake it.
    assert connection.offer(2, 1, "live-2", 0.0) is False
    socket.unblocked.set()
    await settle()
    assert socket.sent == ["live-1", "live-2"] and socket.written_now == []
    assert connection._writer is None
    assert connection.offer(3, 2, "live-3", 0.0) is True
    await connection.stop_writer()


async def test_a_slow_reader_gets_every_frame_once_in_order():
    """Writes that go through, pause, overflow the queue and resume, in a fixed random mix."""
    import random

    rng = random.Random(7)
    socket, store = FastSocket(), FakeStore(page_size=3)
    metrics = Metrics()
    connection = fast_connection(socket, store, metrics)
    connection.start(0, catch_up=False)
    for notification_id in range(1, 301):
        store.ids.append(notification_id)
        socket.paused = rng.random() < 0.3
        if rng.random() < 0.2:
            socket.unblocked.clear()
        elif rng.random() < 0.5:
            socket.unblocked.set()
        connection.offer(notification_id, notification_id - 1, f"live-{notification_id}", 0.0)
        if rng.random() < 0.3:
            await settle()
    socket.paused = False
    socket.unblocked.set()
    await settle()
    numbers = [int(frame.split("-")[-1].lstrip("n")) for frame in socket.sent]
    assert numbers == list(range(1, 301))
    assert socket.written_now and len(socket.written_now) < 300
    assert metrics.queue_overflows._value.get() >= 1
    await connection.stop_writer()


async def test_the_hub_counts_frames_written_at_once_per_publication():
    metrics = Metrics()
    hub = Hub(metrics)
    sockets = [FastSocket() for _ in range(3)]
    for i, socket in enumerate(sockets):
        connection = fast_connection(socket, FakeStore())
        connection.username = f"u{i}"
        hub.add(connection)
        connection.start(0, catch_up=False)
    recipients = [Recipient(f"u{i}", 10 + i, 0, 1) for i in range(3)]
    hub.dispatch(Publication('"title":"t"', recipients, 0.0))
    assert all(len(socket.written_now) == 1 for socket in sockets)
    assert metrics.live_deliveries._value.get() == 3
    assert metrics.delivery_latency._sum.get() > 0
    [count] = [
        s.value for s in metrics.delivery_latency.collect()[0].samples if s.name.endswith("_count")
    ]
    assert count == 1
    await hub.close_all(lambda: closes.shutdown(1000))
