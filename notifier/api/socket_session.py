"""What an open socket does besides receiving notifications: keep its credentials current
and police what the client sends.

- The socket ends with 1008 "token expired" when its token's `exp` passes, unless the
  client renewed it first with `{"type": "auth", "token": "<access token>"}` (same user),
  which the server answers with `{"type": "auth_ok", "expires_in": s}`.
- `token_expiry_warning` seconds before the deadline the server sends
  `{"type": "token_expiring", "expires_in": s}` once per deadline.
- Every `ws_recheck_interval` seconds the socket's session is checked again in the
  database: a backstop for a revocation whose cross-worker close was lost.
- Client messages are rate limited (token bucket); binary frames, invalid JSON and
  floods close the socket. Unknown message types are ignored, for forward compatibility.
"""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

import orjson
from starlette.types import Message

from notifier import closes
from notifier.auth.accounts import Accounts
from notifier.auth.tokens import TokenClaims
from notifier.closes import Close
from notifier.db.records import StoredUser
from notifier.delivery.connection import Connection
from notifier.errors import TokenError
from notifier.schemas import MAX_SOCKET_TOKEN_LENGTH

MAX_TOKEN_LENGTH = MAX_SOCKET_TOKEN_LENGTH

ReceiveMessage = Callable[[], Awaitable[Message]]

logger = logging.getLogger(__name__)


class MessageRateLimiter:
    """A token bucket: `burst` messages at once, refilled at `rate` per second."""

    __slots__ = ("_burst", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def _frame(kind: str, **fields: object) -> str:
    return orjson.dumps({"type": kind, **fields}).decode()


class SocketSession:
    # Slots: one of these lives as long as each socket.
    __slots__ = (
        "_accounts",
        "_claims",
        "_connection",
        "_interrupted",
        "_last_check",
        "_limiter",
        "_receive",
        "_recheck_interval",
        "_task",
        "_timer",
        "_user",
        "_warned",
        "_warning",
    )

    def __init__(
        self,
        receive: ReceiveMessage,
        connection: Connection,
        accounts: Accounts,
        user: StoredUser,
        claims: TokenClaims,
        *,
        warning_seconds: float,
        recheck_interval: float,
        limiter: MessageRateLimiter,
    ) -> None:
        self._receive = receive
        self._connection = connection
        self._accounts = accounts
        self._user = user
        self._claims = claims
        self._warning = warning_seconds
        self._recheck_interval = recheck_interval
        self._limiter = limiter
        self._warned = False
        self._last_check = time.time()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._interrupted = False
        connection.session_id = claims.session_key

    async def run(self) -> None:
        """Serve the client until it disconnects or the socket must close (closing it).

        One loop in the socket's own task reads the client and wakes for the next deadline
        (expiry, its warning, the recheck): no helper tasks per socket, which would cost
        memory on every idle socket.
        """
        self._task = asyncio.current_task()
        self._connection.on_closed = self._wake_now
        try:
            close = await self._serve()
        finally:
            self._connection.on_closed = None
            self._task = None
        if close is not None and not self._connection.closing:
            await self._connection.close(close)

    def _wake_now(self) -> None:
        # A close begun elsewhere (stuck client, revocation, shutdown): stop reading.
        if self._timer is not None:
            self._timer.cancel()
            self._interrupt()

    def _interrupt(self) -> None:
        self._timer = None
        self._interrupted = True
        if self._task is not None:
            self._task.cancel()

    async def _serve(self) -> Close | None:
        loop = asyncio.get_running_loop()
        task = self._task
        assert task is not None
        while not self._connection.closing:
            close = await self._run_due_deadlines()
            if close is not None:
                return close
            wake_in = self._next_deadline() - time.time()
            # What `asyncio.timeout_at` does, with one timer handle and no other object
            # per idle socket: the timer cancels the read; that cancel is then taken back.
            self._timer = loop.call_at(loop.time() + wake_in, self._interrupt)
            try:
                message = await self._receive()
            except asyncio.CancelledError:
                if self._interrupted and task.uncancel() == 0:
                    continue  # a deadline (or a close begun elsewhere), not a real cancel
                raise
            finally:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._interrupted = False
            if message["type"] == "websocket.disconnect":
                return None
            close = await self._on_message(message)
            if close is not None:
                return close
        return None

    # The client's messages

    async def _on_message(self, message: Message) -> Close | None:
        if not self._limiter.allow():
            return closes.TOO_MANY_MESSAGES
        text = message.get("text")
        if not isinstance(text, str):
            return closes.BINARY_NOT_SUPPORTED
        return await self._handle(text)

    async def _handle(self, text: str) -> Close | None:
        try:
            payload = orjson.loads(text)
        except orjson.JSONDecodeError:
            return closes.INVALID_MESSAGE
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return closes.INVALID_MESSAGE
        if payload["type"] != "auth":
            return None
        token = payload.get("token")
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            return closes.INVALID_MESSAGE
        return await self._renew(token)

    async def _renew(self, token: str) -> Close | None:
        try:
            user, claims = await self._accounts.resolve(token)
        except TokenError as exc:
            return closes.rejected(exc.reason)
        if user.id != self._user.id:
            return closes.WRONG_USER
        self._claims = claims
        self._connection.session_id = claims.session_key
        self._warned = False
        self._connection.offer_event(_frame("auth_ok", expires_in=self._expires_in()))
        return None

    # Deadlines

    def _expires_in(self) -> int:
        return max(0, math.floor(self._claims.expires_at - time.time()))

    def _next_deadline(self) -> float:
        expires_at = self._claims.expires_at
        warn_at = math.inf if self._warned or not self._warning else expires_at - self._warning
        recheck_at = (
            self._last_check + self._recheck_interval if self._recheck_interval else math.inf
        )
        return min(expires_at, warn_at, recheck_at)

    async def _run_due_deadlines(self) -> Close | None:
        now = time.time()
        if now >= self._claims.expires_at:
            return closes.TOKEN_EXPIRED
        if not self._warned and self._warning and now >= self._claims.expires_at - self._warning:
            self._warned = True
            self._connection.offer_event(_frame("token_expiring", expires_in=self._expires_in()))
        if self._recheck_interval and now >= self._last_check + self._recheck_interval:
            self._last_check = now
            try:
                await self._accounts.check_claims(self._claims)
            except TokenError as exc:
                return closes.rejected(exc.reason)
            except Exception:
                # A database blip must not drop every socket; the next check retries.
                logger.warning("could not recheck a socket of %s", self._user.username)
        return None
