"""Read state is shared live: every socket of the user gets a read event, and every
notification frame carries the user's unread count, so badges never drift."""

import asyncio
import json
from contextlib import AsyncExitStack

import pytest
from clients import bearer, connect

pytestmark = [pytest.mark.integration, pytest.mark.backends]


async def next_frame(ws, within: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), within))


async def assert_silent(ws, seconds: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        frame = await asyncio.wait_for(ws.recv(), seconds)
        pytest.fail(f"unexpected frame {frame}")


async def test_read_events_reach_every_socket_of_the_user_only(api):
    username, token = await api.user_with_token()
    _other, other_token = await api.user_with_token()
    async with AsyncExitStack() as stack:
        phone = await connect(api, token, stack, since=0)
        laptop = await connect(api, token, stack, since=0)
        bystander = await connect(api, other_token, stack, since=0)

        sent = [await api.send(username, f"n{i}") for i in range(3)]
        for ws in (phone, laptop):
            frames = [await next_frame(ws) for _ in sent]
            assert [f["notification"]["id"] for f in frames] == [n["id"] for n in sent]
            assert [f["unread_count"] for f in frames] == [1, 2, 3]

        response = await api.client.post(
            f"/notifications/{sent[1]['id']}/read", headers=bearer(token)
        )
        assert response.status_code == 200
        for ws in (phone, laptop):
            assert await next_frame(ws) == {
                "type": "read",
                "ids": [sent[1]["id"]],
                "unread_count": 2,
            }

        # Marking it again changes nothing, so nobody is told anything.
        again = await api.client.post(f"/notifications/{sent[1]['id']}/read", headers=bearer(token))
        assert again.status_code == 200 and again.json()["read"] is True

        newer = await api.send(username, "newer")
        for ws in (phone, laptop):
            frame = await next_frame(ws)
            assert frame["notification"]["id"] == newer["id"] and frame["unread_count"] == 3

        everything = await api.client.post("/notifications/read-all", headers=bearer(token))
        assert everything.json() == {"updated": 3}
        expected = {
            "type": "read",
            "ids": [sent[0]["id"], sent[2]["id"], newer["id"]],
            "unread_count": 0,
        }
        for ws in (phone, laptop):
            assert await next_frame(ws) == expected

        # Another user's read never reaches these sockets, and theirs never reach the bystander.
        await assert_silent(bystander)
        foreign = await api.client.post(
            f"/notifications/{sent[0]['id']}/read", headers=bearer(other_token)
        )
        assert foreign.status_code == 404
        for ws in (phone, laptop, bystander):
            await assert_silent(ws)

        # A socket opening now replays with the current count.
        async with AsyncExitStack() as later:
            tablet = await connect(api, token, later, since=0)
            replayed = [await next_frame(tablet) for _ in range(4)]
            assert {f["unread_count"] for f in replayed} == {0}
            assert all(f["notification"]["read"] for f in replayed)
