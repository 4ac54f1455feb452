"""A small RFC 6455 WebSocket client built on `asyncio.Protocol`, for the load generator.

Why not the `websockets` client: its asyncio client wakes a task for every message, which
costs about as much CPU per frame as the servers under test spend sending it, so one load
generator core could not tell a 25,000 deliveries/s server from a 50,000 one. This client
parses frames inside `data_received` and hands each message to a callback: a few
microseconds per frame. It speaks what the benchmark needs and nothing more: the client
handshake (with the accept-key check), text and binary messages, fragmentation,
permessage-deflate (offered as browsers do), answering pings, and close frames.
"""

import asyncio
import base64
import hashlib
import os
import zlib
from collections.abc import Callable

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
DEFLATE_TAIL = b"\x00\x00\xff\xff"

OnMessage = Callable[["WsClient", bytes], None]


class HandshakeError(Exception):
    """The server answered the upgrade with something other than a valid 101."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: always masked (RFC 6455 5.3). Only small control frames are sent."""
    mask = os.urandom(4)
    length = len(payload)
    header = bytes([0x80 | opcode])
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 65536:
        header += bytes([0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header += bytes([0x80 | 127]) + length.to_bytes(8, "big")
    repeated = (mask * (length // 4 + 1))[:length]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        length, "big"
    )
    return header + mask + body


class WsClient(asyncio.Protocol):
    """One client connection. `opened` resolves after the 101, `closed` when the TCP link ends."""

    def __init__(self, on_message: OnMessage, tag: object = None) -> None:
        self.on_message = on_message
        self.tag = tag
        """Whatever the caller wants to find again in `on_message` (a user index, say)."""
        self.transport: asyncio.Transport | None = None
        self.deflate = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.messages = 0
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._key = base64.b64encode(os.urandom(16))
        self._handshaking = True
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_compressed = False
        self._inflater: zlib._Decompress | None = None
        self._reset_inflater = False
        self._request = b""

    # Opening

    def request(self, host: str, port: int, path: str, offer_deflate: bool) -> bytes:
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if offer_deflate:
            lines.append(f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}")
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        return self._request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self._request:
            self.transport.write(self._request)  # type: ignore[union-attr]

    def _finish_handshake(self, head: bytes) -> None:
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 101:
            raise HandshakeError(status, parts[2] if len(parts) > 2 else "")
        expected = base64.b64encode(hashlib.sha1(self._key + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise HandshakeError(status, "bad Sec-WebSocket-Accept")
        extensions = headers.get("sec-websocket-extensions", "")
        if extensions:
            params = [p.strip() for p in extensions.split(";")]
            if params[0] != "permessage-deflate":
                raise HandshakeError(status, f"unexpected extension {extensions!r}")
            self.deflate = True
            self._reset_inflater = "server_no_context_takeover" in params
            self._inflater = zlib.decompressobj(-15)

    # Receiving

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._handshaking:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            try:
                self._finish_handshake(head)
            except HandshakeError as exc:
                if not self.opened.done():
                    self.opened.set_exception(exc)
                self.transport.abort()  # type: ignore[union-attr]
                return
            self._handshaking = False
            if not self.opened.done():
                self.opened.set_result(None)
        self._parse_frames()

    def _parse_frames(self) -> None:
        buffer = self._buffer
        size = len(buffer)
        position = 0
        while size - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            length = second & 0x7F
            start = position + 2
            if length == 126:
                if size - start < 2:
                    break
                length = int.from_bytes(buffer[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - start < 8:
                    break
                length = int.from_bytes(buffer[start : start + 8], "big")
                start += 8
            if second & 0x80:
                self._protocol_error("masked server frame")
                return
            end = start + length
            if end > size:
                break
            payload = bytes(buffer[start:end])
            position = end
            self._frame(first, payload)
            if self.transport is None or self.transport.is_closing():
                break
        if position:
            del buffer[:position]

    def _frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        final = first & 0x80
        if opcode in (1, 2):
            if not final:
                self._fragments = [payload]
                self._fragment_compressed = bool(first & 0x40)
                return
            self._message(payload, bool(first & 0x40))
        elif opcode == 0:
            self._fragments.append(payload)
            if final:
                message, self._fragments = b"".join(self._fragments), []
                self._message(message, self._fragment_compressed)
        elif opcode == 8:
            self._close_frame(payload)
        elif opcode == 9:
            self.transport.write(_masked_frame(10, payload))  # type: ignore[union-attr]
        # opcode 10 (pong): nothing to do.

    def _message(self, payload: bytes, compressed: bool) -> None:
        if compressed:
            if self._inflater is None:
                self._protocol_error("compressed frame without permessage-deflate")
                return
            payload = self._inflater.decompress(payload + DEFLATE_TAIL)
            if self._reset_inflater:
                self._inflater = zlib.decompressobj(-15)
        self.messages += 1
        self.on_message(self, payload)

    def _close_frame(self, payload: bytes) -> None:
        if len(payload) >= 2:
            self.close_code = int.from_bytes(payload[:2], "big")
            self.close_reason = payload[2:].decode("utf-8", "replace")
        else:
            self.close_code = 1005
        # Echo the close, then let the server end the TCP connection (RFC 6455 7.1.1).
        self.transport.write(_masked_frame(8, payload[:2]))  # type: ignore[union-attr]
        self.transport.close()  # type: ignore[union-attr]

    def _protocol_error(self, reason: str) -> None:
        self.close_code = 1002
        self.close_reason = reason
        self.transport.abort()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        if self.close_code is None:
            self.close_code = 1006
        if not self.closed.done():
            self.closed.set_result(None)

    # Control

    @property
    def open(self) -> bool:
        return not self._handshaking and not self.closed.done() and self.close_code is None

    def pause(self) -> None:
        """Stop reading: the client looks stuck to the server once the buffers fill."""
        self.transport.pause_reading()  # type: ignore[union-attr]

    def resume(self) -> None:
        self.transport.resume_reading()  # type: ignore[union-attr]

    def drop(self) -> None:
        """Lose the connection without a close handshake, like a phone going offline."""
        if self.transport is not None:
            self.transport.abort()

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_masked_frame(8, code.to_bytes(2, "big")))


async def connect(
    host: str,
    port: int,
    path: str,
    on_message: OnMessage,
    *,
    tag: object = None,
    offer_deflate: bool = False,
    timeout: float = 30.0,
    receive_buffer: int | None = None,
) -> WsClient:
    """Open a socket and complete the handshake; raises HandshakeError or OSError."""
    loop = asyncio.get_running_loop()
    client = WsClient(on_message, tag)
    client.request(host, port, path, offer_deflate)
    sock = None
    if receive_buffer is not None:
        import socket

        # A small receive buffer makes a client that stops reading look stuck sooner.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        await loop.create_connection(lambda: client, sock=sock)
    else:
        await loop.create_connection(lambda: client, host, port)
    try:
        await asyncio.wait_for(asyncio.shield(client.opened), timeout)
    except BaseException:
        client.drop()
        raise
    return client
