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

And it bounds what a hostile client costs, logged in or not (uvicorn's answers every
ping and keeps reading, so a client that pings and never reads grows the write buffer
without limit):

- When the transport's write buffer passes `WRITE_HIGH_WATER` (set on the connection by
  `notifier.http_protocol`, which the upgrade hands over), the socket stops reading
  until it drains; a socket whose output stays blocked is aborted (after the close
  timeout once closing or before accept; open sockets first get the app's stuck-client
  close, `ws_stuck_timeout`).
- Pings count toward the client's message rate, one token bucket with its data messages
  (`scope["extensions"]["notifier.message_limiter"]`): over it, the socket closes with
  1008 "too many messages" (or is dropped, before accept). Pings are answered only on an
  open socket, never before the handshake or while closing.
- A close that the peer does not answer in `ws_close_timeout` aborts the transport (a
  graceful close would wait forever to flush to a client that reads nothing).

No task or timer per idle socket: the only timer is armed while output is blocked.

What it relies on in uvicorn 0.54 beyond the public `WebSocketsSansIOProtocol` class
(`tests/test_ws_protocol_unit.py::test_the_uvicorn_internals_we_rely_on_are_there`
fails when an upgrade changes them): the attributes `conn`, `queue`, `writable`,
`request`, `response`, `scope`, `transport`, `loop`, `close_sent`, `close_timer`,
`read_paused`, `handshake_complete`, `initial_response`, `disconnected`; the methods
`handle_connect`, `handle_ping`, `send`, `receive`, `pause_writing`, `resume_writing`,
`connection_lost`; and that uvicorn reads `request`/`response` only during the handshake
and uses only `put_nowait`/`empty`/`get` of its queue and `set`/`clear`/`is_set`/`wait`
of its `writable` event (`receive` is overridden, so `get` is never called).
"""

import asyncio
from typing import Any, cast

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent, WWWScope
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from notifier import closes
from notifier.api.socket_session import MessageRateLimiter
from notifier.scope_extensions import MESSAGE_LIMITER, WRITE_TEXT
from notifier.transport_limits import TRANSPORT_LIMITS, TransportLimits


class RateLimitedServerProtocol(ServerProtocol):
    """websockets' server protocol that answers a ping only on an open socket and within
    the client's message rate; a ping over the rate marks the client `flooding`."""

    def __init__(self, *args: Any, limiter: MessageRateLimiter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limiter = limiter
        self.flooding = False

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is not Opcode.PING:
            super().recv_frame(frame)
            return
        if not self.limiter.allow():
            self.flooding = True
        elif self.state is State.OPEN:
            self.send_frame(Frame(Opcode.PONG, frame.data))
        self.events.append(frame)


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

    conn: RateLimitedServerProtocol

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.receive_queue = ReceiveQueue()
        self.writable_flag = Writable()
        # uvicorn annotates these with the asyncio classes; the stand-ins have every method
        # it calls on them (see the module docstring), so they replace its objects untyped.
        vars(self).update(queue=self.receive_queue, writable=self.writable_flag)
        limits = TransportLimits.of(app_state)
        self.close_timeout = limits.ws_close_timeout
        self.open_blocked_timeout = limits.ws_stuck_timeout + limits.ws_close_timeout
        self.limiter = MessageRateLimiter(limits.ws_message_rate, limits.ws_message_burst)
        self.conn = RateLimitedServerProtocol(
            extensions=self.conn.available_extensions,
            max_size=config.ws_max_size,
            logger=self.conn.logger,
            limiter=self.limiter,
        )
        self.output_blocked = False
        self.drop_timer: asyncio.TimerHandle | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.drop_timer is not None:
            self.drop_timer.cancel()
            self.drop_timer = None
        super().connection_lost(exc)

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent:
            scope = self.scope
            # The app's task is created but has not run yet: it sees the extensions.
            set_extension(scope, WRITE_TEXT, self.write_text)
            set_extension(scope, MESSAGE_LIMITER, self.limiter)
            # The limits reached us; an idle socket need not keep a copy in its scope.
            scope["state"] = {k: v for k, v in scope["state"].items() if k != TRANSPORT_LIMITS}

    # Output flow: stop reading while the client does not read what it is sent.

    def pause_writing(self) -> None:
        self.writable.clear()
        self.output_blocked = True
        self.transport.pause_reading()
        if self.drop_timer is None:
            blocked_for = (
                self.open_blocked_timeout if self.conn.state is State.OPEN else self.close_timeout
            )
            self.drop_timer = self.loop.call_later(blocked_for, self.drop)

    def resume_writing(self) -> None:
        self.writable.set()
        self.output_blocked = False
        if self.drop_timer is not None:
            self.drop_timer.cancel()
            self.drop_timer = None
        if not self.read_paused and not self.transport.is_closing():
            self.transport.resume_reading()

    def drop(self) -> None:
        """Abort the connection: its output stayed blocked, or its close went unanswered."""
        self.drop_timer = None
        if not self.disconnected:
            self.transport.abort()

    # Pings over the rate

    def handle_ping(self) -> None:
        if self.conn.flooding:
            self.close_flooding()
            return
        output = self.conn.data_to_send()
        if output:
            self.transport.write(b"".join(output))

    def close_flooding(self) -> None:
        if self.close_sent or self.disconnected:
            return
        if not self.handshake_complete:
            # Not accepted yet (the app is still authenticating): no frame can be sent.
            self.close_sent = True
            self.transport.abort()
            return
        code, reason = closes.TOO_MANY_MESSAGES
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused and not self.output_blocked:
            # Read the client's close reply (messages are discarded from now on).
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.drop)

    def write_text(self, text: str) -> bool:
        """Write one text frame now; False if it must wait (the caller then awaits `send`)."""
        if (
            not self.writable_flag.flag
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
        if message["type"] == "websocket.close" and self.output_blocked:
            # The app closes a socket whose output is blocked (a refused token, a stuck
            # client): its close frame waits behind that output for the close timeout only.
            if self.drop_timer is not None:
                self.drop_timer.cancel()
            self.drop_timer = self.loop.call_later(self.close_timeout, self.drop)
        close_timer = self.close_timer
        await super().send(message)
        if self.close_timer is not close_timer and self.close_timer is not None:
            # uvicorn's timer closes gracefully, which waits forever to flush to a peer
            # that reads nothing: abort instead.
            self.close_timer.cancel()
            self.close_timer = self.loop.call_later(self.close_timeout, self.drop)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # Only the handshake read these; uvicorn would keep them as long as the socket.
            # websockets' parser generator still holds the request: empty its headers.
            self.request.headers.clear()
            del self.request, self.response

    async def receive(self) -> ASGIReceiveEvent:
        # uvicorn's, minus one coroutine frame per idle socket (its awaits `queue.get()`).
        queue = self.receive_queue
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
            if not self.output_blocked:
                self.transport.resume_reading()
        return message


def set_extension(scope: WWWScope, name: str, value: object) -> None:
    """Put a Notifier extension in the scope. ASGI (and uvicorn's types) declare every
    extension a dict; these two are a callable and an object only Notifier's app reads."""
    extensions = cast(dict[str, object], scope.setdefault("extensions", {}))
    extensions[name] = value
