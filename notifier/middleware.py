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


class SecurityHeadersMiddleware:
    """Headers every HTTP answer needs, added as the response starts (no body buffering).

    - `X-Content-Type-Options: nosniff` on every response.
    - `Cache-Control: no-store` on answers to requests that carry credentials (an
      `Authorization` header or the session cookie), outside `/static/`, unless the route
      set its own `Cache-Control`: what one user was shown must not be kept by a shared
      cache or the browser's history.
    """

    def __init__(self, app: ASGIApp, cookie_name: str, static_prefix: str = "/static/") -> None:
        self.app = app
        self._cookie = f"{cookie_name}=".encode()
        self._static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = self._carries_credentials(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if private and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _carries_credentials(self, scope: Scope) -> bool:
        if scope["path"].startswith(self._static_prefix):
            return False
        for name, value in scope["headers"]:
            if name == b"authorization" or (name == b"cookie" and self._cookie in value):
                return True
        return False
