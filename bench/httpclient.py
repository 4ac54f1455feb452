"""A small keep-alive HTTP/1.1 client pool for the load generator.

httpx spends a few hundred microseconds of CPU per request, so at 2,000+ POSTs/s it would
saturate the load generator's core before the server's. This pool writes requests by
hand over keep-alive connections and parses only what uvicorn answers (status line,
headers, a Content-Length body).
"""

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self.usable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).decode("latin-1")
        status_line, _, header_text = head.partition("\r\n")
        length = 0
        for line in header_text.split("\r\n"):
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                self.usable = False
            elif name == "transfer-encoding":
                self._fail(ValueError("chunked responses are not supported"))
                return
        if len(buffer) < end + 4 + length:
            return
        body = bytes(buffer[end + 4 : end + 4 + length])
        del buffer[: end + 4 + length]
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(int(status_line.split(" ", 2)[1]), body))

    def _fail(self, exc: BaseException) -> None:
        self.usable = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc or ConnectionError("connection closed"))

    def send(self, request: bytes) -> asyncio.Future[Response]:
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)  # type: ignore[union-attr]
        return self._waiter


class HttpPool:
    """Up to `size` keep-alive connections to one host; requests wait for a free one."""

    def __init__(self, host: str, port: int, size: int, headers: dict[str, str]) -> None:
        self._host = host
        self._port = port
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._open: set[_Connection] = set()
        fixed = {"Host": f"{host}:{port}", **headers}
        self._fixed_headers = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())

    async def _acquire(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable and not connection.transport.is_closing():  # type: ignore[union-attr]
                return connection
            self._open.discard(connection)
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self._host, self._port)
        self._open.add(connection)
        return connection

    async def request(
        self, method: str, path: str, body: bytes = b"", timeout: float = 10.0
    ) -> Response:
        """Send one request; raises TimeoutError or OSError. A failed connection is dropped."""
        async with self._slots:
            connection = await self._acquire()
            head = (
                f"{method} {path} HTTP/1.1\r\n{self._fixed_headers}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            try:
                response = await asyncio.wait_for(connection.send(head.encode() + body), timeout)
            except BaseException:
                connection.usable = False
                connection.transport.abort()  # type: ignore[union-attr]
                self._open.discard(connection)
                raise
            if connection.usable:
                self._idle.append(connection)
            else:
                connection.transport.close()  # type: ignore[union-attr]
                self._open.discard(connection)
            return response

    def close(self) -> None:
        for connection in self._open:
            with contextlib.suppress(Exception):
                connection.transport.abort()  # type: ignore[union-attr]
        self._open.clear()
        self._idle.clear()
