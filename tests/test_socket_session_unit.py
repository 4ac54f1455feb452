"""Unit tests of `SocketSession` with a fake client and fake accounts: token renewal, the
client message rate limit, bad client messages, and the deadlines (expiry warning, expiry,
session recheck). Token expiries are whole seconds, so the deadline tests take 1-2 s.
"""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest
from connection_fakes import FakeSocket, make_connection, settle

from notifier import closes
from notifier.api.socket_session import MessageRateLimiter, SocketSession
from notifier.auth.tokens import TokenClaims, TokenError
from notifier.db.records import StoredUser

pytestmark = pytest.mark.unit

WAIT = 10.0
ALICE = StoredUser(1, "alice", "-", False, datetime(2026, 1, 1, tzinfo=UTC))
BOB = StoredUser(2, "bob", "-", False, datetime(2026, 1, 1, tzinfo=UTC))


def claims(user: StoredUser, lifetime: int, session: str = "s1") -> TokenClaims:
    now = int(time.time())
    return TokenClaims(user.username, now + lifetime, now, f"jti-{session}", frozenset(), session)


class FakeAccounts:
    """Tokens are looked up by their text; `check_claims` answers with `recheck`."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[StoredUser, TokenClaims]] = {}
        self.recheck: Exception | None = None
        self.rechecks = 0

    async def resolve(self, token: str) -> tuple[StoredUser, TokenClaims]:
        if token not in self.tokens:
            raise TokenError("invalid token")
        return self.tokens[token]

    async def check_claims(self, checked: TokenClaims) -> None:
        self.rechecks += 1
        if self.recheck is not None:
            raise self.recheck


class FakeClient:
    """The client side: what it sends, as ASGI messages."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def receive(self) -> dict[str, object]:
        return await self.messages.get()

    def send_json(self, payload: object) -> None:
        self.send_text(orjson.dumps(payload).decode())

    def send_text(self, text: str) -> None:
        self.messages.put_nowait({"type": "websocket.receive", "text": text})

    def send_bytes(self, data: bytes) -> None:
        self.messages.put_nowait({"type": "websocket.receive", "bytes": data})

    def disconnect(self) -> None:
        self.messages.put_nowait({"type": "websocket.disconnect", "code": 1000})


class Harness:
    def __init__(
        self,
        lifetime: int = 3600,
        *,
        warning: float = 0,
        recheck: float = 0,
        rate: float = 1000.0,
        burst: int = 100,
    ) -> None:
        self.socket = FakeSocket()
        self.connection = make_connection(self.socket, user="alice")
        self.connection.start(0, catch_up=False)
        self.client = FakeClient()
        self.accounts = FakeAccounts()
        self.claims = claims(ALICE, lifetime)
        self.session = SocketSession(
            self.client.receive,
            self.connection,
            self.accounts,  # type: ignore[arg-type]
            ALICE,
            self.claims,
            warning_seconds=warning,
            recheck_interval=recheck,
            limiter=MessageRateLimiter(rate, burst),
        )

    async def run(self) -> list[tuple[int, str]]:
        """Serve until the session ends; the closes sent to the socket."""
        async with asyncio.timeout(WAIT):
            await self.session.run()
        await settle()
        return self.socket.closes

    def frames(self) -> list[dict[str, object]]:
        return [orjson.loads(frame) for frame in self.socket.sent]


async def wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110 (polling state the code under test owns)
            await asyncio.sleep(0.01)


async def test_renewal_moves_the_deadline_and_answers_auth_ok() -> None:
    harness = Harness(lifetime=1)
    renewed = claims(ALICE, 3600, session="s2")
    harness.accounts.tokens["fresh"] = (ALICE, renewed)
    serving = asyncio.create_task(harness.run())
    harness.client.send_json({"type": "auth", "token": "fresh"})
    await wait_for(lambda: bool(harness.socket.sent))
    [answer] = harness.frames()
    assert answer["type"] == "auth_ok"
    assert 3590 <= answer["expires_in"] <= 3600  # type: ignore[operator]
    assert harness.connection.session_id == "s2"
    # The first token's expiry passes without closing the socket.
    await asyncio.sleep(max(0.0, harness.claims.expires_at - time.time()) + 0.3)
    assert not serving.done()
    harness.client.disconnect()
    assert await serving == []


async def test_renewal_with_another_users_token_closes() -> None:
    harness = Harness()
    harness.accounts.tokens["bobs"] = (BOB, claims(BOB, 3600))
    harness.client.send_json({"type": "auth", "token": "bobs"})
    assert await harness.run() == [tuple(closes.WRONG_USER)]
    assert harness.connection.session_id == "s1"


async def test_renewal_with_a_bad_token_closes_with_its_reason() -> None:
    harness = Harness()
    harness.client.send_json({"type": "auth", "token": "forged"})
    assert await harness.run() == [tuple(closes.INVALID_TOKEN)]
    assert harness.socket.sent == []


async def test_the_token_expires_after_one_warning() -> None:
    harness = Harness(lifetime=2, warning=1.5)
    assert await harness.run() == [tuple(closes.TOKEN_EXPIRED)]
    [warning] = harness.frames()
    assert warning["type"] == "token_expiring"
    assert 0 <= warning["expires_in"] <= 2  # type: ignore[operator]


async def test_a_failed_recheck_closes_with_its_reason() -> None:
    harness = Harness(recheck=0.1)
    harness.accounts.recheck = TokenError("token revoked")
    assert await harness.run() == [tuple(closes.TOKEN_REVOKED)]
    assert harness.accounts.rechecks == 1


async def test_a_recheck_that_cannot_reach_the_database_keeps_the_socket() -> None:
    harness = Harness(recheck=0.05)
    harness.accounts.recheck = ConnectionError("database away")
    serving = asyncio.create_task(harness.run())
    await wait_for(lambda: harness.accounts.rechecks >= 2)  # retried at the next interval
    assert not serving.done()
    harness.client.disconnect()
    assert await serving == []


async def test_messages_past_the_burst_close_the_socket() -> None:
    harness = Harness(rate=0.001, burst=3)
    for n in range(4):
        harness.client.send_json({"type": "future-extension", "n": n})
    assert await harness.run() == [tuple(closes.TOO_MANY_MESSAGES)]
    assert harness.socket.sent == []  # unknown types are ignored, not answered


async def test_bad_client_messages_close_with_their_code() -> None:
    cases: list[tuple[Callable[[FakeClient], None], closes.Close]] = [
        (lambda c: c.send_bytes(b"\x00"), closes.BINARY_NOT_SUPPORTED),
        (lambda c: c.send_text("{not json"), closes.INVALID_MESSAGE),
        (lambda c: c.send_json(["auth"]), closes.INVALID_MESSAGE),
        (lambda c: c.send_json({"type": 1}), closes.INVALID_MESSAGE),
        (lambda c: c.send_json({"type": "auth"}), closes.INVALID_MESSAGE),
        (lambda c: c.send_json({"type": "auth", "token": "x" * 20_000}), closes.INVALID_MESSAGE),
    ]
    for send, expected in cases:
        harness = Harness()
        send(harness.client)
        assert await harness.run() == [tuple(expected)], expected


async def test_a_close_begun_elsewhere_stops_reading() -> None:
    harness = Harness()
    serving = asyncio.create_task(harness.run())
    await settle()
    await harness.connection.close(closes.TOKEN_REVOKED)
    assert await serving == [tuple(closes.TOKEN_REVOKED)]
