"""Fakes for a connection's socket and stored stream, shared by the delivery unit tests."""

import asyncio

from notifier.delivery.connection import Connection
from notifier.metrics import Metrics


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


def fast_connection(
    socket: FastSocket, store: FakeStore, metrics: Metrics | None = None
) -> Connection:
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
