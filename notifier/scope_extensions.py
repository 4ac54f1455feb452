"""The ASGI scope extensions Notifier's WebSocket protocol hands its app.

The transport (`notifier.ws_protocol`, wiring) sets them in `scope["extensions"]` when a
handshake arrives; the socket endpoint (`notifier.api.ws`) reads them. They live here, in
the protocol layer, so the app needs nothing from the transport but these two names.
A server without them (another ASGI server) still works: the app then uses plain ASGI.
"""

WRITE_TEXT = "notifier.write_text"
"""`write_text(text) -> bool`: the frame is written now (True) or the caller awaits `send`."""

MESSAGE_LIMITER = "notifier.message_limiter"
"""The socket's `MessageRateLimiter`, one token bucket shared by pings and messages."""
