"""ASGI middleware."""

import time
from collections.abc import MutableMapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from notifier.logs import log_event

_SOCKET_USER = "notifier.socket_user"


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


def socket_opened(scope: MutableMapping[str, object], username: str, since: int | None) -> None:
    """Log that an authenticated socket joined, and name its user for its closing line."""
    state = scope.setdefault("state", {})
    if isinstance(state, dict):
        state[_SOCKET_USER] = username
    log_event("socket.opened", user=username, since=since, client=_client(scope))


def _client(scope: MutableMapping[str, object]) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if isinstance(client, tuple | list) else None


class SocketEventLog:
    """Logs one line when each WebSocket ends: `socket.closed` with its close code, reason,
    which side closed it and how long it lived, or `socket.rejected` for a socket that was
    refused (closed with 1008 before any user joined)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        ended: dict[str, object] = {}
        scope.setdefault("state", {})  # shared with the endpoint, which names the user in it

        async def watching_send(message: Message) -> None:
            if message["type"] == "websocket.close" and not ended:
                ended.update(by="server", code=message.get("code", 1000))
                ended["reason"] = message.get("reason") or ""
            await send(message)

        async def watching_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect" and not ended:
                ended.update(by="client", code=message.get("code", 1005))
                ended["reason"] = message.get("reason") or ""
            return message

        try:
            await self.app(scope, watching_receive, watching_send)
        finally:
            self._log(scope, ended, time.monotonic() - started)

    @staticmethod
    def _log(scope: Scope, ended: dict[str, object], seconds: float) -> None:
        state = scope.get("state")
        username = state.get(_SOCKET_USER) if isinstance(state, dict) else None
        client = _client(scope)
        if username is None and ended.get("code") == 1008:
            log_event("socket.rejected", reason=ended.get("reason"), client=client)
            return
        log_event(
            "socket.closed",
            user=username,
            code=ended.get("code"),
            reason=ended.get("reason"),
            by=ended.get("by", "server"),
            duration_s=round(seconds, 3),
            client=client,
        )
