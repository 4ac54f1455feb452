"""ASGI middleware."""

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(Exception):
    pass


class BodySizeLimitMiddleware:
    """Answer 413 to any HTTP request whose body is larger than `max_bytes`.

    Checks the declared Content-Length up front and counts chunked bodies as they
    arrive, so an oversized upload is refused without buffering it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send)
            return

        received = 0
        overflowed = False
        response_started = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    overflowed = True
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            # FastAPI catches any error raised while it reads the body and answers 400
            # itself, so the error may never reach us: once the body has overflowed,
            # whatever the app answers instead is replaced with the 413.
            nonlocal response_started, replaced
            if message["type"] == "http.response.start":
                response_started = True
                if overflowed:
                    replaced = True
                    await self._reject(scope, receive, send)
                    return
            if not replaced:
                await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if response_started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"},
            status_code=413,
            # No `Connection: close`: closing with the rest of the upload unread makes
            # the kernel reset the connection, and a client still writing its body
            # (httpx, browsers) then never reads this answer. Kept alive, the server
            # discards the rest of the body unbuffered and the client sees the 413.
        )
        await response(scope, receive, send)


def client_address(scope: Scope) -> str | None:
    """`host:port` of the peer, for log lines."""
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if isinstance(client, tuple | list) else None
