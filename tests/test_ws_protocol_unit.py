"""The slim uvicorn WebSocket protocol, driven through a fake transport.

Real uvicorn and websockets code parses the handshake and frames; only the socket is fake.
"""

import asyncio
import base64
import os
import re
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from notifier.scope_extensions import WRITE_TEXT
from notifier.ws_protocol import NotifierWebSocketProtocol, ReceiveQueue, Writable

pytestmark = pytest.mark.unit


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def server_frames(data: bytes) -> list[Frame]:
    """Frames the server wrote after its handshake response."""
    _head, _, rest = bytes(data).partition(b"\r\n\r\n")
    reader = StreamReader()
    reader.feed_data(rest)
    reader.feed_eof()
    frames = []
    parser = Frame.parse(reader.read_exact, mask=False)
    while True:
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
            parser = Frame.parse(reader.read_exact, mask=False)
        except EOFError:
            return frames


def client_text(text: str) -> bytes:
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=True)


HANDSHAKE = (
    "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
).encode()


async def open_protocol(app: Any) -> tuple[NotifierWebSocketProtocol, FakeTransport]:
    config = Config(app=app, ws=NotifierWebSocketProtocol, ws_ping_interval=None, lifespan="off")
    config.load()
    protocol = NotifierWebSocketProtocol(config, ServerState(), {})
    transport = FakeTransport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    for _ in range(10):
        await asyncio.sleep(0)
    return protocol, transport


async def test_write_text_writes_a_frame_at_once_and_refuses_while_paused():
    ready = asyncio.Event()
    done = asyncio.Event()
    result: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        result["write"] = scope["extensions"][WRITE_TEXT]
        ready.set()
        await done.wait()

    protocol, transport = await open_protocol(app)
    await ready.wait()
    write = result["write"]
    assert "request" not in vars(protocol) and "response" not in vars(protocol)  # freed
    assert write("one") is True
    assert [f.data for f in server_frames(transport.written)] == [b"one"]

    protocol.pause_writing()
    assert write("two") is False
    protocol.resume_writing()
    assert write("two") is True
    transport.closed = True
    assert write("three") is False
    assert [f.data for f in server_frames(transport.written)] == [b"one", b"two"]
    done.set()


async def test_awaited_send_waits_while_paused_and_messages_keep_their_order():
    received: list[dict[str, Any]] = []
    sent = asyncio.Event()
    started = asyncio.Event()
    go = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        started.set()
        await go.wait()
        await send({"type": "websocket.send", "text": "after resume"})
        sent.set()
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.disconnect":
                return

    protocol, transport = await open_protocol(app)
    await started.wait()
    protocol.pause_writing()
    go.set()
    await asyncio.sleep(0.01)
    assert not sent.is_set() and server_frames(transport.written) == []
    protocol.resume_writing()
    await asyncio.wait_for(sent.wait(), 1)
    assert [f.data for f in server_frames(transport.written)] == [b"after resume"]

    # Two messages in one read: reading pauses until the app has taken both.
    protocol.data_received(client_text("a") + client_text("b"))
    assert not transport.reading
    protocol.connection_lost(None)
    for _ in range(10):
        await asyncio.sleep(0)
    assert [m.get("text") for m in received[:2]] == ["a", "b"]
    assert received[-1]["type"] == "websocket.disconnect"
    assert transport.reading


async def test_receive_queue_and_writable_stand_ins():
    accepted, done = asyncio.Event(), asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        accepted.set()
        await done.wait()  # from here the test reads through the protocol itself

    protocol, _transport = await open_protocol(app)
    await accepted.wait()
    queue = protocol.queue
    assert isinstance(queue, ReceiveQueue) and queue.empty()
    getter = asyncio.ensure_future(protocol.receive())
    await asyncio.sleep(0)
    protocol.data_received(client_text("x") + client_text("y"))
    assert (await getter)["text"] == "x"
    assert not queue.empty() and (await protocol.receive())["text"] == "y"
    # A receive cancelled while waiting leaves the queue usable for the next one.
    cancelled = asyncio.ensure_future(protocol.receive())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    protocol.connection_lost(None)
    assert (await protocol.receive())["type"] == "websocket.disconnect"
    done.set()

    writable = Writable()
    assert writable.is_set()
    await writable.wait()
    writable.clear()
    waiters = [asyncio.ensure_future(writable.wait()) for _ in range(2)]
    gone = asyncio.ensure_future(writable.wait())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    writable.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)


def test_the_uvicorn_internals_we_rely_on_are_there() -> None:
    """NotifierWebSocketProtocol overrides and reads uvicorn internals (listed in its module
    docstring); an uvicorn upgrade that renames one fails here, not on a live socket."""
    import inspect
    from pathlib import Path

    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    methods = (
        "handle_connect",
        "handle_ping",
        "send",
        "receive",
        "pause_writing",
        "resume_writing",
        "connection_lost",
    )
    for name in methods:
        assert callable(getattr(WebSocketsSansIOProtocol, name, None)), name
    # The module text, not inspect.getsource (which parses it with ast).
    source = Path(inspect.getfile(WebSocketsSansIOProtocol)).read_text()
    attributes = (
        "conn",
        "queue",
        "writable",
        "request",
        "response",
        "scope",
        "transport",
        "loop",
        "close_sent",
        "close_timer",
        "read_paused",
        "handshake_complete",
        "initial_response",
        "disconnected",
    )
    for name in attributes:
        assert f"self.{name} =" in source or f"self.{name}:" in source, name
    # The stand-ins cover every method uvicorn calls on the objects they replace.
    called_on_queue = set(re.findall(r"self\.queue\.(\w+)\(", source))
    called_on_writable = set(re.findall(r"self\.writable\.(\w+)\(", source))
    # `get` is called only by uvicorn's `receive`, which NotifierWebSocketProtocol replaces.
    assert called_on_queue - {"get"} <= {"put_nowait", "empty"}, called_on_queue
    assert called_on_writable <= {"set", "clear", "is_set", "wait"}, called_on_writable
    for name in ("put_nowait", "empty"):
        assert callable(getattr(ReceiveQueue, name))
    for name in ("set", "clear", "is_set", "wait"):
        assert callable(getattr(Writable, name))
