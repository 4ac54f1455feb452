"""`/ws`: one authenticated socket per device, receiving that user's notifications.

The token is checked before the socket joins anything. A rejected socket is still
accepted and then closed with 1008 and a reason: closing before `accept()` turns into
an HTTP 403 under uvicorn, which a browser cannot tell from a network failure.
"""

from urllib.parse import urlsplit

from fastapi import WebSocket
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from notifier.api.socket_session import MessageRateLimiter, SocketSession
from notifier.auth.deps import COOKIE_NAME, runtime_of
from notifier.auth.tokens import TokenClaims, TokenError
from notifier.db.store import StoredUser
from notifier.delivery import closes
from notifier.delivery.closes import Close
from notifier.delivery.connection import Connection, SocketGone
from notifier.middleware import socket_opened
from notifier.runtime import Runtime
from notifier.ws_protocol import WRITE_TEXT

PATH = "/ws"


class SocketRouteMiddleware:
    """Serves `/ws` ahead of the HTTP middleware and FastAPI's routing.

    A socket lives for hours and holds every layer it passed through (each middleware's
    frame, FastAPI's exit stacks and dependency state) for its whole life; none of them
    does anything for a socket, and skipping them saves several KiB per open socket.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == scope.get("root_path", "") + PATH:
            await notification_socket(WebSocket(scope, receive, send))
            return
        await self.app(scope, receive, send)


def _origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        # Only browsers send cookies on their own, and browsers always send Origin.
        return True
    if origin.rstrip("/") in allowed:
        return True
    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def _authenticate(
    websocket: WebSocket, runtime: Runtime
) -> tuple[StoredUser, TokenClaims] | Close:
    params = websocket.query_params
    if "ticket" in params:
        try:
            return await runtime.accounts.tickets.redeem(
                params["ticket"], websocket.headers.get("origin")
            )
        except TokenError as exc:
            return closes.rejected(exc.reason)
    if "token" in params and not runtime.settings.ws_allow_query_token:
        return closes.QUERY_TOKEN_NOT_ALLOWED
    token = params.get("token") or _bearer(websocket)
    if not token:
        token = websocket.cookies.get(COOKIE_NAME)
        if token and not _origin_allowed(websocket, runtime.settings.allowed_origins):
            return closes.ORIGIN_NOT_ALLOWED
    if not token:
        return closes.NO_TOKEN
    try:
        return await runtime.accounts.resolve(token)
    except TokenError as exc:
        return closes.rejected(exc.reason)


def _parse_since(websocket: WebSocket) -> int | Close | None:
    raw = websocket.query_params.get("since")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return closes.INVALID_SINCE
    return int(raw)


async def notification_socket(websocket: WebSocket) -> None:
    runtime = runtime_of(websocket)
    auth = await _authenticate(websocket, runtime)
    since = _parse_since(websocket)
    await websocket.accept()
    if isinstance(auth, Close):
        await _reject(websocket, runtime, auth)
    elif isinstance(since, Close):
        await _reject(websocket, runtime, since)
    else:
        user, claims = auth
        await _serve(websocket, runtime, user, claims, since)


async def _reject(websocket: WebSocket, runtime: Runtime, close: Close) -> None:
    runtime.metrics.sockets_rejected.labels(close.reason).inc()
    await websocket.close(*close)


async def _serve(
    websocket: WebSocket, runtime: Runtime, user: StoredUser, claims: TokenClaims, since: int | None
) -> None:
    settings = runtime.settings
    service = runtime.notifications

    async def send_text(frame: str) -> None:
        try:
            await websocket.send_text(frame)
        except (WebSocketDisconnect, WebSocketDisconnected, OSError) as exc:
            raise SocketGone from exc

    connection = Connection(
        user.username,
        send_text,
        websocket.close,
        service.replay(user.id),
        queue_size=settings.ws_queue_size,
        close_timeout=settings.ws_close_timeout,
        stuck_timeout=settings.ws_stuck_timeout,
        metrics=runtime.metrics,
        write_now=websocket.scope.get("extensions", {}).get(WRITE_TEXT),
    )
    if runtime.hub.count(user.username) >= settings.ws_max_sockets_per_user:
        await _reject(websocket, runtime, closes.TOO_MANY_SOCKETS)
        return
    # Before attaching: from then on a revocation may pick this socket by its session.
    session = SocketSession(
        websocket,
        connection,
        runtime.accounts,
        user,
        claims,
        warning_seconds=settings.token_expiry_warning,
        recheck_interval=settings.ws_recheck_interval,
        limiter=MessageRateLimiter(
            settings.ws_client_message_rate, settings.ws_client_message_burst
        ),
    )
    # Attach before reading where the stream starts: anything stored from here on is
    # either after the start point or queued live, and the cursor drops the copy that
    # comes second.
    if not await service.attach(connection):
        await websocket.close(*closes.shutdown(settings.shutdown_reconnect_spread_ms))
        return
    socket_opened(websocket.scope, user.username, since)
    try:
        cursor, catch_up = await service.start_point(user.id, since)
        connection.start(cursor, catch_up)
        # Reads client messages and keeps the credentials current until the socket ends:
        # token expiry, renewal, and closes begun elsewhere (stuck client, revocation,
        # shutdown).
        await session.run()
    finally:
        await service.detach(connection)
        await connection.stop_writer()
