"""uvicorn's sans-I/O WebSocket protocol, slimmed for many idle sockets and fast broadcasts.

`NotifierWebSocketProtocol` subclasses uvicorn's `WebSocketsSansIOProtocol` and changes
only what costs on every socket; frames, handshakes, keepalive and closes are uvicorn's:

- `scope["extensions"]["notifier.write_text"]`: writes a text frame to the transport at
  once, without a task, an `await` or the ASGI layers; it returns False whenever the
  frame cannot be written now (writing paused by the transport, closing, closed,
  disconnected), and the caller then falls back to the awaited ASGI `send`, which waits.
- The receive queue and the `writable` event are minimal stand-ins (a list and a future,
  a flag and futures) for `asyncio.Queue` and `asyncio.Event`, which allocate three
  deques and a deque per idle socket. Same semantics for everything uvicorn calls.
- The handshake `Request` and `Response` (with their headers) are dropped once accepted:
  uvicorn keeps them for the socket's whole life and never reads them again.
"""

import asyncio
from typing import Any

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.http11 import Request

WRITE_TEXT = "notifier.write_text"
"""The scope extension: `write_text(text) -> bool`, True when the frame was written."""


class ReceiveQueue:
    """What uvicorn uses of `asyncio.Queue` (unbounded) outside `receive`: `put_nowait`
    and `empty`. One list and, only while the app waits on an empty queue, one future;
    `NotifierWebSocketProtocol.receive` is the one place that waits on it.
    """

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: list[ASGIReceiveEvent] = []
        self.waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: ASGIReceiveEvent) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self.items


class Writable:
    """What uvicorn uses of `asyncio.Event`: `set`, `clear`, `is_set`, `wait`.

    A flag; futures only while a writer waits for the transport to drain.
    """

    __slots__ = ("flag", "waiters")

    def __init__(self) -> None:
        self.flag = True
        self.waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self.flag

    def set(self) -> None:
        self.flag = True
        waiters, self.waiters = self.waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self.flag = False

    async def wait(self) -> None:
        if self.flag:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = []
        self.waiters.append(waiter)
        try:
            await waiter
        finally:
            if self.waiters is not None and waiter in self.waiters:
                self.waiters.remove(waiter)


class NotifierWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's protocol with a synchronous text write and less state per socket."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = ReceiveQueue()  # type: ignore[assignment]
        self.writable = Writable()  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent:
            # The app's task is created but has not run yet: it sees the extension.
            self.scope["extensions"][WRITE_TEXT] = self.write_text  # type: ignore[index]

    def write_text(self, text: str) -> bool:
        """Write one text frame now; False if it must wait (the caller then awaits `send`)."""
        if (
            not self.writable.flag  # type: ignore[attr-defined]
            or self.close_sent
            or self.disconnected
            or not self.handshake_complete
            or self.initial_response is not None
            or self.transport.is_closing()
        ):
            return False
        try:
            self.conn.send_text(text.encode())
        except InvalidState:
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # Only the handshake read these; uvicorn would keep them as long as the socket.
            # websockets' parser generator still holds the request: empty its headers.
            self.request.headers.clear()
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]

    async def receive(self) -> ASGIReceiveEvent:
        # uvicorn's, minus one coroutine frame per idle socket (its awaits `queue.get()`).
        queue: ReceiveQueue = self.queue  # type: ignore[assignment]
        items = queue.items
        while not items:
            waiter = queue.waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                queue.waiter = None
        message = items.pop(0)
        if self.read_paused and not items:
            self.read_paused = False
            self.transport.resume_reading()
        return message
