"""The per-connection bounds of our uvicorn protocols, driven through a fake transport:
reads stop while output is blocked, pings share the message budget, closes and blocked
sockets are aborted, request heads are bounded in size and time (split across reads,
pipelined, and on the WebSocket upgrade). Real uvicorn, httptools and websockets code
parses everything; only the socket is fake. tests/test_hostile_transport.py does the same
against a real server."""

import asyncio
from typing import Any

import pytest
from test_ws_protocol_unit import HANDSHAKE, FakeTransport, server_frames
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.frames import Close, Frame, Opcode

from notifier.http_protocol import HeadLimitedHttpToolsProtocol
from notifier.scope_extensions import MESSAGE_LIMITER
from notifier.transport_limits import TRANSPORT_LIMITS, TransportLimits
from notifier.ws_protocol import NotifierWebSocketProtocol

pytestmark = pytest.mark.unit

LIMITS = TransportLimits(
    max_header_size=1024,
    header_timeout=0.2,
    ws_message_rate=0.001,  # no refill during a test
    ws_message_burst=3,
    ws_close_timeout=0.05,
    ws_stuck_timeout=0.1,
)


class AbortableTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False
        self.protocol: Any = None

    def abort(self) -> None:
        self.aborted = self.closed = True
        if self.protocol is not None:
            self.protocol.connection_lost(None)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high_water = high

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol


def ping(payload: bytes = b"p") -> bytes:
    return Frame(Opcode.PING, payload).serialize(mask=True)


def text(message: str) -> bytes:
    return Frame(Opcode.TEXT, message.encode()).serialize(mask=True)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def open_socket(
    accept: bool = True, close_at_once: bool = False, close_when: asyncio.Event | None = None
) -> tuple[NotifierWebSocketProtocol, AbortableTransport, dict[str, Any]]:
    seen: dict[str, Any] = {"messages": []}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen["scope"] = scope
        await receive()
        if not accept:
            await asyncio.Event().wait()  # still "authenticating"
        await send({"type": "websocket.accept"})
        if close_when is not None:
            await close_when.wait()
        if close_at_once or close_when is not None:
            await send({"type": "websocket.close", "code": 1008, "reason": "invalid token"})
        while True:
            message = await receive()
            seen["messages"].append(message)
            if message["type"] == "websocket.disconnect":
                return

    config = Config(app=app, ws=NotifierWebSocketProtocol, ws_ping_interval=None, lifespan="off")
    config.load()
    protocol = NotifierWebSocketProtocol(config, ServerState(), {TRANSPORT_LIMITS: LIMITS})
    transport = AbortableTransport()
    transport.protocol = protocol
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    await settle()
    return protocol, transport, seen


async def test_pings_draw_on_the_message_budget_and_over_it_close_1008():
    protocol, transport, seen = await open_socket()
    # One budget per client: the app's limiter is the protocol's, and the limits reached it
    # without staying in every socket's scope.
    assert seen["scope"]["extensions"][MESSAGE_LIMITER] is protocol.limiter
    assert TRANSPORT_LIMITS not in seen["scope"]["state"]
    protocol.data_received(ping(b"1") + ping(b"2"))
    pongs = [f for f in server_frames(transport.written) if f.opcode is Opcode.PONG]
    assert [f.data for f in pongs] == [b"1", b"2"]
    assert protocol.limiter.allow()  # a message spends the last token
    protocol.data_received(ping(b"3") + ping(b"4"))
    await settle()
    frames = server_frames(transport.written)
    assert [f.opcode for f in frames] == [Opcode.PONG, Opcode.PONG, Opcode.CLOSE]
    assert Close.parse(frames[-1].data) == Close(1008, "too many messages")
    assert seen["messages"][-1] == {
        "type": "websocket.disconnect",
        "code": 1008,
        "reason": "too many messages",
    }
    # The client does not answer the close: the connection is aborted, not left to flush.
    await asyncio.sleep(LIMITS.ws_close_timeout * 3)
    assert transport.aborted


async def test_pings_before_accept_are_not_answered_and_a_flood_drops_the_connection():
    protocol, transport, _seen = await open_socket(accept=False)
    protocol.data_received(ping() * 2)
    assert transport.written == b"" and not transport.closed
    protocol.data_received(ping() * 5)
    assert transport.aborted


async def test_a_refused_socket_that_reads_nothing_is_aborted_after_the_close_timeout():
    protocol, transport, _seen = await open_socket(close_at_once=True)
    assert not transport.closed  # waiting for the client's close reply
    protocol.data_received(ping())  # pings on a closing socket get no pong
    assert [f.opcode for f in server_frames(transport.written)] == [Opcode.CLOSE]
    await asyncio.sleep(LIMITS.ws_close_timeout * 3)
    assert transport.aborted


async def test_a_close_behind_blocked_output_waits_for_the_close_timeout_only():
    close_now = asyncio.Event()
    protocol, transport, _seen = await open_socket(close_when=close_now)
    protocol.pause_writing()  # pongs filled the buffer before the app refused the token
    close_now.set()
    await asyncio.sleep(LIMITS.ws_close_timeout * 2)
    assert transport.aborted  # before the stuck timeout (plus the close timeout) passed


async def test_reading_stops_while_output_is_blocked_and_a_blocked_socket_is_dropped():
    protocol, transport, seen = await open_socket()
    protocol.pause_writing()
    assert not transport.reading
    # A message taken by the app does not resume reading while output is blocked.
    protocol.data_received(text("a"))
    await settle()
    assert seen["messages"][-1]["text"] == "a" and not transport.reading
    protocol.resume_writing()
    assert transport.reading
    # Blocked for the stuck timeout plus the close timeout while open: dropped.
    protocol.pause_writing()
    await asyncio.sleep(LIMITS.ws_stuck_timeout + LIMITS.ws_close_timeout * 3)
    assert transport.aborted
    assert seen["messages"][-1]["type"] == "websocket.disconnect"


async def test_output_that_drains_in_time_keeps_the_socket():
    protocol, transport, _seen = await open_socket()
    protocol.pause_writing()
    await asyncio.sleep(LIMITS.ws_stuck_timeout / 2)
    protocol.resume_writing()
    await asyncio.sleep(LIMITS.ws_stuck_timeout + LIMITS.ws_close_timeout * 3)
    assert not transport.aborted and transport.reading


# Request heads


def open_http(
    app: Any = None,
) -> tuple[HeadLimitedHttpToolsProtocol, AbortableTransport, list[dict[str, Any]]]:
    scopes: list[dict[str, Any]] = []

    async def ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await asyncio.Event().wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    config = Config(app=app or ok, ws=NotifierWebSocketProtocol, lifespan="off")
    config.load()
    protocol = HeadLimitedHttpToolsProtocol(config, ServerState(), {TRANSPORT_LIMITS: LIMITS})
    transport = AbortableTransport()
    protocol.connection_made(transport)
    return protocol, transport, scopes


GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"


async def test_a_head_under_the_limit_is_served_even_split_across_reads():
    protocol, transport, scopes = open_http()
    assert transport.high_water == 64 * 1024
    head = GET + b"X-Fill: " + b"a" * (LIMITS.max_header_size - len(GET) - 12) + b"\r\n\r\n"
    assert len(head) == LIMITS.max_header_size
    # The end of the head straddles two reads, and the second read goes past the limit.
    cut = len(head) - 2
    protocol.data_received(head[:cut])
    protocol.data_received(head[cut:] + GET)
    await settle()
    assert transport.written.startswith(b"HTTP/1.1 200 OK") and len(scopes) == 1


async def test_a_head_over_the_limit_answers_431_and_closes():
    protocol, transport, scopes = open_http()
    protocol.data_received(GET)
    protocol.data_received(b"X-Fill: " + b"a" * LIMITS.max_header_size)
    assert transport.written.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
    assert transport.closed and scopes == []
    protocol.data_received(b"more")  # ignored once refused


async def test_each_pipelined_head_is_counted_on_its_own():
    protocol, transport, scopes = open_http()
    for _ in range(3):
        protocol.data_received(GET + b"X-Fill: " + b"a" * (LIMITS.max_header_size // 2) + b"\r\n")
        protocol.data_received(b"\r\n")
        await settle()
    assert len(scopes) == 3 and b"431" not in transport.written


async def test_a_websocket_upgrade_head_is_bounded_too():
    protocol, transport, scopes = open_http()
    head, _, _ = HANDSHAKE.partition(b"\r\n\r\n")
    protocol.data_received(head + b"\r\nX-Fill: " + b"a" * LIMITS.max_header_size)
    assert transport.written.startswith(b"HTTP/1.1 431 ")
    assert scopes == []


async def test_heads_that_never_complete_are_closed_after_the_header_timeout():
    _silent, silent_transport, _ = open_http()
    slow, slow_transport, _ = open_http()
    slow.data_received(GET)
    await asyncio.sleep(LIMITS.header_timeout / 2)
    slow.data_received(b"X-Slow: 1\r\n")  # a trickle does not extend the deadline
    assert not slow_transport.closed
    await asyncio.sleep(LIMITS.header_timeout)
    assert slow_transport.closed and silent_transport.closed
    assert slow_transport.written == b"" and silent_transport.written == b""


async def test_a_complete_head_is_not_timed_and_the_next_one_is():
    protocol, transport, scopes = open_http()
    protocol.data_received(GET + b"\r\n")
    await asyncio.sleep(LIMITS.header_timeout * 1.5)
    assert len(scopes) == 1 and not transport.closed  # idle: uvicorn's keep-alive timer
    protocol.data_received(GET)
    await asyncio.sleep(LIMITS.header_timeout * 1.5)
    assert transport.closed


async def test_a_head_in_one_read_costs_no_timer_and_stray_bytes_are_timed():
    protocol, transport, scopes = open_http()
    protocol.data_received(GET + b"\r\n")
    await settle()
    protocol.data_received(GET + b"\r\n")
    await settle()
    assert len(scopes) == 2 and protocol.head_timer is None
    # Bytes that begin no request still cancel uvicorn's keep-alive timer: timed instead.
    protocol.data_received(b"\r\n")
    assert protocol.head_timer is not None
    await asyncio.sleep(LIMITS.header_timeout * 1.5)
    assert transport.closed
