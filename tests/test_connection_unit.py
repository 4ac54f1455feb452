"""Unit tests of the hub and of one connection's queue, cursor and close logic."""

import asyncio

from notifier.delivery import closes
from notifier.delivery.connection import Connection, SocketGone
from notifier.delivery.frames import Delivery
from notifier.delivery.hub import Hub


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


def make_connection(socket: FakeSocket, queue_size: int = 4, user: str = "u") -> Connection:
    return Connection(user, socket.send_text, socket.close, queue_size, close_timeout=0.2)


def replay_of(stored: list[int]):
    async def frames_after(after_id: int):
        for notification_id in stored:
            if notification_id > after_id:
                yield notification_id, f"stored-{notification_id}"

    return frames_after


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_replay_then_live_without_duplicates():
    socket = FakeSocket()
    connection = make_connection(socket, queue_size=10)
    # Live frames 3 and 4 arrive while the replay (which also has 3) is pending.
    connection.offer(3, "live-3")
    connection.offer(4, "live-4")
    connection.start(1, replay_of([1, 2, 3]))
    await settle()
    assert socket.sent == ["stored-2", "stored-3", "live-4"]
    assert connection.cursor == 4
    await connection.stop_writer()


async def test_no_since_means_live_only():
    socket = FakeSocket()
    connection = make_connection(socket)
    connection.start(None, replay_of([1, 2]))
    connection.offer(7, "live-7")
    await settle()
    assert socket.sent == ["live-7"]
    await connection.stop_writer()


async def test_overflow_closes_with_1013_and_drops_later_frames():
    socket = FakeSocket(block=True)
    connection = make_connection(socket, queue_size=2)
    connection.start(None, replay_of([]))
    for notification_id in range(1, 6):
        connection.offer(notification_id, f"live-{notification_id}")
    assert connection.closing
    socket.unblocked.set()
    await connection.close(closes.QUEUE_OVERFLOW)
    assert socket.closes == [(1013, "slow consumer")]
    # Only frames that fit the queue were ever written, in order; the rest were dropped.
    assert socket.sent == ["live-1", "live-2"][: len(socket.sent)]
    connection.offer(9, "after-close")
    await settle()
    assert "after-close" not in socket.sent


async def test_close_of_a_stuck_socket_gives_up_and_wakes_the_reader():
    socket = FakeSocket(block=True)
    connection = make_connection(socket)
    woken = asyncio.Event()
    connection.on_closed = woken.set
    await asyncio.wait_for(connection.close(closes.SHUTDOWN), timeout=2)
    assert woken.is_set()
    assert socket.closes == []


async def test_writer_failure_closes_with_1011():
    socket = FakeSocket()

    async def failing_replay(after_id: int):
        raise RuntimeError("database gone")
        yield  # pragma: no cover

    connection = make_connection(socket)
    connection.start(0, failing_replay)
    await settle()
    await asyncio.wait_for(connection.close(closes.SHUTDOWN), timeout=2)
    assert socket.closes == [(1011, "internal error")]


async def test_gone_socket_is_not_an_error():
    async def gone(frame: str) -> None:
        raise SocketGone

    closed: list[tuple[int, str]] = []

    async def close(code: int, reason: str) -> None:
        closed.append((code, reason))

    connection = Connection("u", gone, close, 4, close_timeout=0.2)
    connection.start(None, replay_of([]))
    connection.offer(1, "x")
    await settle()
    assert not connection.closing
    assert closed == []


async def test_hub_delivers_to_every_socket_of_the_recipient_only():
    hub = Hub()
    a1, a2, b = FakeSocket(), FakeSocket(), FakeSocket()
    connections = [
        make_connection(a1, user="a"),
        make_connection(a2, user="a"),
        make_connection(b, user="b"),
    ]
    for connection in connections:
        assert hub.register(connection)
        connection.start(None, replay_of([]))
    hub.deliver([Delivery("a", 1, "for-a")])
    await settle()
    assert a1.sent == ["for-a"] and a2.sent == ["for-a"] and b.sent == []
    assert hub.count("a") == 2 and hub.count("b") == 1
    hub.unregister(connections[0])
    assert hub.count("a") == 1
    await hub.close_all(closes.SHUTDOWN)
    assert a2.closes == [(1012, "server restarting")] and b.closes == [(1012, "server restarting")]
    assert not hub.register(make_connection(FakeSocket(), user="c"))
