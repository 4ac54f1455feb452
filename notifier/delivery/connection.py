"""One accepted socket as the hub sees it: a bounded frame queue drained by its own writer.

Each socket gets its own writer task so that a client that stops reading only ever
blocks its own writes; `offer()` never awaits, so delivery to other sockets goes on.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from notifier.delivery.closes import INTERNAL_ERROR, QUEUE_OVERFLOW, Close

SendText = Callable[[str], Awaitable[None]]
CloseSocket = Callable[[int, str], Awaitable[None]]
Replay = Callable[[int], AsyncIterator[tuple[int, str]]]

EVENT = -1
"""Queue entries with this id bypass the cursor."""

logger = logging.getLogger(__name__)


class SocketGone(Exception):
    """Raised by a `SendText` when the peer has already disconnected."""


class Connection:
    def __init__(
        self,
        username: str,
        send_text: SendText,
        close_socket: CloseSocket,
        queue_size: int,
        close_timeout: float,
    ) -> None:
        self.username = username
        self.session_id: str | None = None
        """The token family this socket authenticated with, for revocation."""
        self.cursor = 0
        """Id of the last notification written to this socket; later frames at or below it are
        duplicates of what replay already sent."""
        self._send_text = send_text
        self._close_socket = close_socket
        self._queue: deque[tuple[int, str]] = deque()
        self._queue_size = queue_size
        self._close_timeout = close_timeout
        self._ready = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self.on_closed: Callable[[], None] | None = None
        """Called once the close frame is sent or abandoned, to wake the socket's reader."""

    def offer(self, notification_id: int, frame: str) -> None:
        """Queue a frame without waiting; a full queue closes the socket instead."""
        if self._closing is not None:
            return
        if len(self._queue) >= self._queue_size:
            self.close_soon(QUEUE_OVERFLOW)
            return
        self._queue.append((notification_id, frame))
        self._ready.set()

    def offer_event(self, frame: str) -> None:
        """Queue a frame outside the notification stream (a control message)."""
        self.offer(EVENT, frame)

    def start(self, replay_after: int | None, replay: Replay) -> None:
        """Start writing: first what `replay` yields after `replay_after` (if given), then live."""
        self._writer = asyncio.create_task(self._write(replay_after, replay))
        self._writer.add_done_callback(self._writer_done)

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        # A writer only ends on its own when a send or the replay failed; a socket that
        # silently stopped receiving would be worse than a closed one.
        if task.cancelled() or isinstance(task.exception(), SocketGone | None):
            return
        logger.warning("writer for %s failed: %r", self.username, task.exception())
        self.close_soon(INTERNAL_ERROR)

    async def _write(self, replay_after: int | None, replay: Replay) -> None:
        if replay_after is not None:
            self.cursor = replay_after
            async for notification_id, frame in replay(replay_after):
                await self._send_text(frame)
                self.cursor = notification_id
        while True:
            await self._ready.wait()
            while self._queue:
                notification_id, frame = self._queue.popleft()
                if notification_id == EVENT:
                    await self._send_text(frame)
                    continue
                if notification_id <= self.cursor:
                    continue
                await self._send_text(frame)
                self.cursor = notification_id
            self._ready.clear()

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
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
