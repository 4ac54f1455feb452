"""Property (hypothesis): whatever the interleaving of users, sessions, sockets, sends,
revocations, closes and reconnects, a socket never receives another user's notification,
never receives one sent after its session was revoked (and is closed with 1008 "token
revoked"), and a socket of a live session receives every notification of its user after
its `since`, once, in order.

One real server; the examples are few and short, so the suite stays fast.
"""

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

import httpx
import pytest
import websockets
from conftest import USER_PASSWORD, Api, ServerProcess
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

USERS = 2
SLOTS = 2  # logins (sessions) per user
MAX_SOCKETS = 6

actions = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.integers(0, USERS - 1), st.integers(0, SLOTS - 1)),
        st.tuples(st.just("send"), st.integers(0, USERS - 1)),
        st.tuples(st.just("revoke"), st.integers(0, USERS - 1), st.integers(0, SLOTS - 1)),
        st.tuples(st.just("close"), st.integers(0, MAX_SOCKETS - 1)),
        st.tuples(st.just("reconnect"), st.integers(0, MAX_SOCKETS - 1)),
    ),
    min_size=1,
    max_size=12,
)


@dataclass
class Session:
    access_token: str
    revoked_after: int | None = None
    """How many sends had happened when the revocation was answered."""


@dataclass
class Socket:
    user: int
    slot: int
    since: int
    ws: websockets.ClientConnection
    frames: list[dict] = field(default_factory=list)
    close: tuple[int, str] | None = None
    closed_by_client: bool = False
    reader: asyncio.Task | None = None

    def start(self) -> None:
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
            rcvd = self.ws.protocol.close_rcvd
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
        self.close = (rcvd.code, rcvd.reason) if rcvd else (1006, "")

    @property
    def notifications(self) -> list[dict]:
        return [f["notification"] for f in self.frames if f["type"] == "notification"]


@dataclass
class World:
    api: Api
    names: list[str]
    sessions: dict[tuple[int, int], Session] = field(default_factory=dict)
    sockets: list[Socket] = field(default_factory=list)
    sent: list[tuple[int, int]] = field(default_factory=list)
    """(user, id) of every send, in order."""

    def last_id(self, user: int) -> int:
        return max((i for u, i in self.sent if u == user), default=0)

    async def session(self, user: int, slot: int) -> Session:
        if (user, slot) not in self.sessions:
            response = await self.api.client.post(
                "/token", data={"username": self.names[user], "password": USER_PASSWORD}
            )
            assert response.status_code == 200, response.text
            self.sessions[user, slot] = Session(response.json()["access_token"])
        return self.sessions[user, slot]

    async def open(self, user: int, slot: int, since: int) -> None:
        session = await self.session(user, slot)
        url = f"{self.api.server.ws_url}?token={session.access_token}&since={since}"
        socket = Socket(user, slot, since, await websockets.connect(url))
        socket.start()
        self.sockets.append(socket)

    async def run(self, action: tuple) -> None:
        match action:
            case ("open", user, slot) if len(self.sockets) < MAX_SOCKETS:
                await self.open(user, slot, self.last_id(user))
            case ("send", user):
                sent = await self.api.send(self.names[user], f"to {user}")
                self.sent.append((user, sent["id"]))
            case ("revoke", user, slot):
                session = await self.session(user, slot)
                response = await self.api.client.post(
                    "/token/revoke", data={"token": session.access_token}
                )
                assert response.status_code == 200
                if session.revoked_after is None:
                    session.revoked_after = len(self.sent)
            case ("close", index) if index < len(self.sockets):
                socket = self.sockets[index]
                socket.closed_by_client = True
                await socket.ws.close()
            case ("reconnect", index) if index < len(self.sockets):
                socket = self.sockets[index]
                socket.closed_by_client = True
                await socket.ws.close()
                ids = [n["id"] for n in socket.notifications]
                if len(self.sockets) < MAX_SOCKETS:
                    await self.open(socket.user, socket.slot, max(ids, default=socket.since))

    def expected_ids(self, socket: Socket, session: Session) -> list[int]:
        limit = len(self.sent) if session.revoked_after is None else session.revoked_after
        return [i for u, i in self.sent[:limit] if u == socket.user and i > socket.since]

    async def settle(self) -> None:
        """Wait until live sockets have everything and revoked ones are closed (or give up
        after a while and let `check` say what is missing)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled(), 15)

    async def _settled(self) -> None:
        while any(self._waiting_for(socket) for socket in self.sockets):  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    def _waiting_for(self, socket: Socket) -> bool:
        if socket.closed_by_client:
            return False
        session = self.sessions[socket.user, socket.slot]
        if session.revoked_after is not None:
            return socket.close is None
        return len(socket.notifications) < len(self.expected_ids(socket, session))

    def check(self) -> None:
        owner = {i: u for u, i in self.sent}
        sent_at = {i: index for index, (_u, i) in enumerate(self.sent)}
        for socket in self.sockets:
            session = self.sessions[socket.user, socket.slot]
            ids = [n["id"] for n in socket.notifications]
            # Never another user's notification.
            assert all(n["username"] == self.names[socket.user] for n in socket.notifications)
            assert all(owner[i] == socket.user for i in ids)
            # In order, once each.
            assert ids == sorted(set(ids)), ids
            if session.revoked_after is not None:
                # Nothing sent after the revocation was answered.
                assert all(sent_at[i] < session.revoked_after for i in ids), (ids, session)
                if not socket.closed_by_client:
                    assert socket.close == (1008, "token revoked"), socket.close
            elif not socket.closed_by_client:
                assert ids == self.expected_ids(socket, session)
                assert socket.close is None, socket.close

    async def shutdown(self) -> None:
        for socket in self.sockets:
            await socket.ws.close()
        await asyncio.gather(*(s.reader for s in self.sockets if s.reader))


async def scenario(server: ServerProcess, steps: list[tuple]) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        api = Api(server, client)
        world = World(api, [await api.create_user() for _ in range(USERS)])
        try:
            for step in steps:
                await world.run(step)
            await world.settle()
            world.check()
        finally:
            await world.shutdown()


@settings(
    max_examples=8,
    deadline=None,
    database=None,
    # Shrinking a failure against a live server can take many minutes; the failing
    # example is printed as generated instead.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=actions)
# Always run the shapes that matter most, whatever the random examples turn out to be.
@example(
    steps=[
        ("open", 0, 0),
        ("open", 1, 0),
        ("open", 0, 1),
        ("send", 0),
        ("send", 1),
        ("revoke", 0, 0),
        ("send", 0),
        ("send", 1),
    ]
)
@example(
    steps=[
        ("open", 0, 0),
        ("send", 0),
        ("reconnect", 0),
        ("revoke", 0, 0),
        ("open", 0, 0),
        ("send", 0),
        ("open", 1, 1),
        ("send", 1),
    ]
)
def test_no_delivery_to_another_user_or_after_revocation(server, steps) -> None:
    asyncio.run(scenario(server, steps))
