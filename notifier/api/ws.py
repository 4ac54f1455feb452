"""`/ws`: one authenticated socket per device, receiving that user's notifications.

The token is checked before the socket joins anything. A rejected socket is still
accepted and then closed with 1008 and a reason: closing before `accept()` turns into
an HTTP 403 under uvicorn, which a browser cannot tell from a network failure.

A socket lives for hours and holds every layer it passed through for its whole life, so
`/ws` is served from the app's own `__call__` (see `notifier.app.NotifierApp`), ahead
of every middleware and FastAPI's routing, none of which does anything for a socket.
It logs one line when each socket ends: `socket.closed` with its close code, reason,
which side closed it and how long it lived, or `socket.rejected` for a socket refused
(closed with 1008 before any user joined).
"""

import time

from fastapi import WebSocket
from starlette.types import Message, Receive, Scope, Send

from notifier import closes
from notifier.api.cross_site import origin_allowed
from notifier.api.deps import Services, Source, client_address, find_credential
from notifier.api.socket_session import MessageRateLimiter, SocketSession
from notifier.auth.tokens import TokenClaims
from notifier.closes import Close
from notifier.db.records import StoredUser
from notifier.delivery.connection import Connection, SocketGone
from notifier.delivery.service import Admission
from notifier.errors import TokenError
from notifier.logs import log_event
from notifier.scope_extensions import MESSAGE_LIMITER, WRITE_TEXT

PATH = "/ws"


class Socket:
    """An accepted socket past its handshake: ASGI receive and send, and how it ended.

    The Starlette `WebSocket` (its parsed headers, query and cookies) only serves the
    handshake; an idle socket holds this instead. It also records the close for the
    socket's one closing log line: the first close seen, from either side, is the one.
    """

    __slots__ = ("_receive", "_send", "by", "code", "reason", "started", "username")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.started = time.monotonic()
        self.username: str | None = None
        self.by: str | None = None
        self.code: int | None = None
        self.reason: str | None = None

    def ended(self, by: str, code: int, reason: str | None) -> None:
        if self.by is None:
            self.by, self.code, self.reason = by, code, reason or ""

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.ended("client", message.get("code", 1005), message.get("reason"))
        return message

    async def send_text(self, frame: str) -> None:
        try:
            await self._send({"type": "websocket.send", "text": frame})
        except (OSError, RuntimeError) as exc:  # gone, or our close already sent
            raise SocketGone from exc

    async def close(self, code: int, reason: str) -> None:
        self.ended("server", code, reason)
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


def _origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        # Only browsers send cookies on their own, and browsers always send Origin.
        return True
    return origin_allowed(origin, websocket.headers.get("host", ""), allowed)


async def _authenticate(
    websocket: WebSocket, runtime: Services
) -> tuple[StoredUser, TokenClaims] | Close:
    settings = runtime.settings
    params = websocket.query_params
    # A ticket wins over a query token (as `find_credential` looks), even a refused one.
    if "token" in params and "ticket" not in params and not settings.ws_allow_query_token:
        return closes.QUERY_TOKEN_NOT_ALLOWED
    credential = find_credential(websocket, in_query=True)
    if credential is None:
        return closes.NO_TOKEN
    try:
        if credential.source is Source.TICKET:
            origin = websocket.headers.get("origin")
            return await runtime.accounts.tickets.redeem(credential.value, origin)
        if credential.source is Source.COOKIE and not _origin_allowed(
            websocket, settings.allowed_origins
        ):
            return closes.ORIGIN_NOT_ALLOWED
        return await runtime.accounts.resolve(credential.value)
    except TokenError as exc:
        return closes.rejected(exc.reason)


def _parse_since(websocket: WebSocket) -> int | Close | None:
    raw = websocket.query_params.get("since")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return closes.INVALID_SINCE
    return int(raw)


async def serve_socket(scope: Scope, receive: Receive, send: Send, runtime: Services) -> None:
    """Serve one `/ws` socket to its end, then log how it ended."""
    socket = Socket(receive, send)
    try:
        opened = await _open(WebSocket(scope, receive, send), socket, runtime)
        if opened is not None:
            await _serve(runtime, opened)
    finally:
        _log_end(scope, socket)


def _log_end(scope: Scope, socket: Socket) -> None:
    client = client_address(scope, with_port=True)
    if socket.username is None and socket.code == 1008:
        log_event("socket.rejected", reason=socket.reason, client=client)
        return
    log_event(
        "socket.closed",
        user=socket.username,
        code=socket.code,
        reason=socket.reason,
        by=socket.by or "server",
        duration_s=round(time.monotonic() - socket.started, 3),
        client=client,
    )


Opened = tuple[Connection, SocketSession, int, int | None]
"""An attached socket: its connection and session, its user's id and where its stream
starts (the client's `since`, or the user's head when the handshake completed)."""


async def _open(websocket: WebSocket, socket: Socket, runtime: Services) -> Opened | None:
    """Authenticate, accept and attach; None if the socket was refused (and closed)."""
    auth = await _authenticate(websocket, runtime)
    since = _parse_since(websocket)
    start_after = since if isinstance(since, int) else None
    if since is None and not isinstance(auth, Close):
        # Without `since` the stream starts where it stood when the handshake completed,
        # not where it stands once the socket has joined its user's broker channel (a
        # round trip or two later, more under a connect storm): what is stored in between
        # is then replayed from the store instead of missed.
        start_after, _ = await runtime.notifications.start_point(auth[0].id, None)
    await websocket.accept()
    # Everything the headers say has been read; uvicorn keeps the scope as long as the
    # socket, and an idle socket need not keep its headers.
    scope = websocket.scope
    scope["headers"] = ()
    if isinstance(auth, Close):
        await _reject(socket, runtime, auth)
        return None
    if isinstance(since, Close):
        await _reject(socket, runtime, since)
        return None
    user, claims = auth
    settings = runtime.settings
    service = runtime.notifications
    connection = Connection(
        user.username,
        socket.send_text,
        socket.close,
        service.replay(user.id),
        queue_size=settings.ws_queue_size,
        close_timeout=settings.ws_close_timeout,
        stuck_timeout=settings.ws_stuck_timeout,
        metrics=runtime.metrics,
        write_now=scope.get("extensions", {}).get(WRITE_TEXT),
    )
    # Before attaching: from then on a revocation may pick this socket by its session.
    session = SocketSession(
        socket.receive,
        connection,
        runtime.accounts,
        user,
        claims,
        warning_seconds=settings.token_expiry_warning,
        recheck_interval=settings.ws_recheck_interval,
        # The protocol's limiter, which its pings already draw on (one budget per client).
        limiter=scope.get("extensions", {}).get(MESSAGE_LIMITER)
        or MessageRateLimiter(settings.ws_client_message_rate, settings.ws_client_message_burst),
    )
    # Attach before reading where the stream starts: anything stored from here on is
    # either after the start point or queued live, and the cursor drops the copy that
    # comes second.
    admission = await service.attach(connection, settings.ws_max_sockets_per_user)
    if admission is Admission.TOO_MANY:
        await _reject(socket, runtime, closes.TOO_MANY_SOCKETS)
        return None
    if admission is Admission.CLOSING:
        await socket.close(*closes.shutdown(settings.shutdown_reconnect_spread_ms))
        return None
    socket.username = user.username
    client = client_address(scope, with_port=True)
    log_event("socket.opened", user=user.username, since=since, client=client)
    return connection, session, user.id, start_after


async def _reject(socket: Socket, runtime: Services, close: Close) -> None:
    runtime.metrics.sockets_rejected.labels(close.reason).inc()
    await socket.close(*close)


async def _serve(runtime: Services, opened: Opened) -> None:
    connection, session, user_id, since = opened
    service = runtime.notifications
    try:
        cursor, catch_up = await service.start_point(user_id, since)
        connection.start(cursor, catch_up)
        # Reads client messages and keeps the credentials current until the socket ends:
        # token expiry, renewal, and closes begun elsewhere (stuck client, revocation,
        # shutdown).
        await session.run()
    finally:
        await service.detach(connection)
        await connection.stop_writer()
