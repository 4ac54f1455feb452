"""One accepted socket as the hub sees it: a bounded queue drained by its own writer.

Each socket gets its own writer task so that a client that stops reading only ever
blocks its own writes; `offer()` never awaits, so delivery to other sockets goes on.
The writer only exists while there is something to write: an idle socket (most of them,
most of the time) costs no task.

An idle socket that is live and whose transport takes data is written to at once, inside
`offer()` (`write_now`): no task, no queue. Anything else (a writer already running,
frames queued, catching up, a transport that pushes back, closing) takes the queue, so
frames still go out one at a time, in order.

The writer keeps a cursor, the id of the last notification written, and is always in
one of two modes. Live: it writes queued frames that continue the user's stream
(a frame's `previous_id` is at or below the cursor). Catching up: it pages through the
store after the cursor. It catches up when the socket opens with `since`, when a live
frame shows a gap (frames from several workers can arrive out of order), when its queue
overflowed (the queue is dropped rather than grown), and when the broker reconnects
after an outage. Frames at or below the cursor are duplicates and are skipped, so
every notification reaches the socket once, in id order.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from notifier.closes import INTERNAL_ERROR, QUEUE_OVERFLOW, Close
from notifier.metrics import Metrics

SendText = Callable[[str], Awaitable[None]]
WriteNow = Callable[[str], bool]
"""Writes a text frame synchronously; False when it cannot now (the caller awaits instead)."""
CloseSocket = Callable[[int, str], Awaitable[None]]
ReplayPage = Callable[[int], Awaitable[tuple[list[tuple[int, str]], bool]]]
"""`page(after_id)` -> (frames after that id as (id, frame), oldest first; True if that
was the last page)."""

EVENT = -1
"""Queue entries with this id (read events) bypass the cursor."""

logger = logging.getLogger(__name__)


class SocketGone(Exception):
    """Raised by a `SendText` when the peer has already disconnected."""


class Connection:
    def __init__(
        self,
        username: str,
        send_text: SendText,
        close_socket: CloseSocket,
        replay: ReplayPage,
        *,
        queue_size: int,
        close_timeout: float,
        stuck_timeout: float,
        metrics: Metrics,
        write_now: WriteNow | None = None,
    ) -> None:
        self.username = username
        self.session_id: str | None = None
        """The token family this socket authenticated with, for revocation."""
        self.cursor = 0
        self._send_text = send_text
        self._write_now = write_now
        self._close_socket = close_socket
        self._replay = replay
        # A list, not a deque: an empty deque allocates a 64-slot block, and most sockets
        # have nothing queued most of the time. Queues are short (NOTIFIER_WS_QUEUE_SIZE).
        self._queue: list[tuple[int, int, str, float]] = []
        self._queue_size = queue_size
        self._close_timeout = close_timeout
        self._stuck_timeout = stuck_timeout
        self._metrics = metrics
        self._catching_up = False
        self._started = False
        self._stopped = False
        self._writer: asyncio.Task[None] | None = None
        self._sending_since: float | None = None
        self._closing: asyncio.Task[None] | None = None
        self.on_closed: Callable[[], None] | None = None
        """Called once the close frame is sent or abandoned, to wake the socket's reader."""

    # Feeding the writer (never awaits)

    def offer(
        self, notification_id: int, previous_id: int, frame: str, committed_at: float
    ) -> bool:
        """Write a notification frame now, or queue it; True if it was written now.

        A full queue switches the socket to catching up. The caller counts the frames
        written now (metrics); the writer counts the ones it writes.
        """
        cursor = self.cursor
        if notification_id <= cursor and not self._catching_up:
            return False
        if previous_id <= cursor and self._idle() and self._write_now(frame):  # type: ignore[misc]
            self.cursor = notification_id
            return True
        self._enqueue((notification_id, previous_id, frame, committed_at))
        return False

    def offer_event(self, frame: str) -> None:
        """Queue a frame outside the notification stream (a read event)."""
        if self._idle() and self._write_now(frame):  # type: ignore[misc]
            return
        self._enqueue((EVENT, 0, frame, 0.0))

    def _idle(self) -> bool:
        """Live with nothing in flight: a frame written now cannot overtake another."""
        return (
            self._write_now is not None
            and self._writer is None
            and not self._queue
            and not self._catching_up
            and self._started
            and not self._stopped
            and self._closing is None
        )

    def resync(self) -> None:
        """Live frames may have been lost (broker outage): catch up from the store."""
        self._catching_up = True
        self._wake()

    def _enqueue(self, entry: tuple[int, int, str, float]) -> None:
        if self._closing is not None:
            return
        if len(self._queue) >= self._queue_size:
            if self._stuck():
                self.close_soon(QUEUE_OVERFLOW)
                return
            # Dropping the backlog keeps memory bounded; the store still has every
            # notification, and the cursor says where this socket stopped.
            self._queue.clear()
            self._catching_up = True
            self._metrics.queue_overflows.inc()
        self._queue.append(entry)
        self._wake()

    def _stuck(self) -> bool:
        """A write has waited on this client for longer than the stuck timeout."""
        started = self._sending_since
        return started is not None and (
            asyncio.get_running_loop().time() - started > self._stuck_timeout
        )

    # Writing

    def start(self, cursor: int, catch_up: bool) -> None:
        """Write from `cursor` on: first from the store if `catch_up`, then live."""
        self.cursor = cursor
        self._catching_up = catch_up
        self._started = True
        self._wake()

    def _wake(self) -> None:
        if self._writer is not None or not self._started or self._stopped:
            return
        if self._closing is not None or not (self._queue or self._catching_up):
            return
        self._writer = asyncio.create_task(self._write())
        self._writer.add_done_callback(self._writer_done)

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        if self._writer is task:
            self._writer = None
        # A writer only ends on its own when a send or the store failed; a socket that
        # silently stopped receiving would be worse than a closed one.
        if task.cancelled() or isinstance(task.exception(), SocketGone | None):
            return
        exc = task.exception()
        logger.warning("writer for %s failed: %r", self.username, exc)
        self.close_soon(INTERNAL_ERROR)

    async def _write(self) -> None:
        """Write until there is nothing left; a later frame starts a new writer."""
        while True:
            if self._catching_up:
                await self._catch_up()
                continue
            if not self._queue:
                self._writer = None  # before returning: an offer from here on starts another
                return
            notification_id, previous_id, frame, committed_at = self._queue.pop(0)
            if notification_id == EVENT:
                await self._send(frame)
            elif notification_id <= self.cursor:
                continue
            elif previous_id > self.cursor:
                self._catching_up = True
            else:
                await self._send(frame)
                self.cursor = notification_id
                self._metrics.live_deliveries.inc()
                self._metrics.delivery_latency.observe(max(0.0, time.time() - committed_at))

    async def _catch_up(self) -> None:
        while True:
            # Cleared before reading, so an overflow or a gap seen meanwhile asks again.
            self._catching_up = False
            frames, last_page = await self._replay(self.cursor)
            for notification_id, frame in frames:
                await self._send(frame)
                self.cursor = notification_id
            self._metrics.store_deliveries.inc(len(frames))
            if last_page and not self._catching_up:
                return

    async def _send(self, frame: str) -> None:
        self._sending_since = asyncio.get_running_loop().time()
        await self._send_text(frame)
        self._sending_since = None

    # Closing

    def close_soon(self, close: Close) -> asyncio.Task[None]:
        """Close once, from any caller; later calls get the same closing task."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._close(close))
        return self._closing

    async def close(self, close: Close) -> None:
        await self.close_soon(close)

    @property
    def closing(self) -> bool:
        return self._closing is not None

    async def _close(self, close: Close) -> None:
        self._queue.clear()
        await self.stop_writer()
        # A client that stopped reading cannot take the close frame either: give up after
        # a while and let the transport go.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._close_socket(*close), self._close_timeout)
        if self.on_closed is not None:
            self.on_closed()

    async def stop_writer(self) -> None:
        self._stopped = True
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
