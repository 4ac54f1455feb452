"""uvicorn's httptools HTTP protocol with bounded request heads.

httptools (llhttp) has no limit on a request head: it buffers a header line of any size,
and nothing closes a head that never ends. `HeadLimitedHttpToolsProtocol` counts the
bytes of each head (request line and headers, the WebSocket upgrade request included):

- over `max_header_size` it answers 431 and closes (or just closes, when a response to an
  earlier pipelined request is still being written);
- a head not complete `header_timeout` seconds after the read that began it (or after
  the connection opened) is closed. One timer per connection, armed only while a head is
  incomplete after a read; uvicorn's keep-alive timer still closes idle connections
  between requests.

Everything else (parsing, bodies, keep-alive, the upgrade to WebSocket) is uvicorn's.
"""

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from notifier.transport_limits import WRITE_HIGH_WATER, TransportLimits

HEAD_END = b"\r\n\r\n"
TOO_LARGE_BODY = b"Request header fields too large"

logger = logging.getLogger("uvicorn.error")


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; request heads bounded in size and time."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = TransportLimits.of(app_state)
        self.max_head_size = limits.max_header_size
        self.head_timeout = limits.header_timeout
        # A head is pending from the connection's start and after each complete request.
        self.head_pending = True
        # Bytes of the pending head have arrived (the keep-alive timer no longer runs).
        self.head_started = False
        self.head_size = 0
        # The last bytes of the head so far: its end may straddle two reads.
        self.head_tail = b""
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # The WebSocket protocol takes this transport over on upgrade, with this limit.
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        # A connection that sends nothing at all is closed too.
        self.head_timer = self.loop.call_later(self.head_timeout, self.head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused or timed out: read no more
        if self.head_pending:
            self.head_started = True
            room = self.max_head_size - self.head_size
            if (
                len(data) > room
                and (self.head_tail + data).find(HEAD_END, 0, len(self.head_tail) + room) < 0
            ):
                self.head_too_large()
                return
            self.head_size += len(data)
            self.head_tail = data[-(len(HEAD_END) - 1) :]
        super().data_received(data)
        # Timed only when a read leaves a head begun but incomplete: a head that arrives
        # in one read (nearly all of them) costs no timer.
        if self.head_pending and self.head_started and not self.transport.is_closing():
            self.start_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A pipelined head may begin in the read that ended the previous request.
        self.head_started = True

    def on_headers_complete(self) -> None:
        self.head_pending = False
        self.cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next bytes start the next head (the rest of this read goes uncounted: at
        # most one read). Its timer starts with its first byte; until then the idle
        # connection is uvicorn's keep-alive timer's.
        self.head_pending = True
        self.head_started = False
        self.head_size = 0
        self.head_tail = b""

    def start_head_timer(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_timeout, self.head_timed_out)

    def cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.head_pending and not self.transport.is_closing():
            logger.debug("Request head not complete within %ss: closing.", self.head_timeout)
            self.transport.close()

    def head_too_large(self) -> None:
        self.cancel_head_timer()
        self.head_pending = False
        logger.warning("Request head over %d bytes: closing.", self.max_head_size)
        if self.cycle is None or self.cycle.response_complete:
            content = [STATUS_LINE[431]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend(
                [
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(TOO_LARGE_BODY)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n",
                    b"\r\n",
                    TOO_LARGE_BODY,
                ]
            )
            self.transport.write(b"".join(content))
        self.transport.close()
