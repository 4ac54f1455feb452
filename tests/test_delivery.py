"""Live delivery: frame shape, per-user isolation, fan-out to sockets, multi-send, broadcast.

Every check that "nothing arrived" is made by sending a marker afterwards and asserting
that the marker is the next frame, so no test waits on a silence.
"""

import asyncio
import json
from contextlib import AsyncExitStack

import pytest
from clients import (
    RECV_TIMEOUT,
    bearer,
    connect,
    inbox,
    open_sockets,
    recv_notification,
    recv_until,
)
from conftest import USER_PASSWORD, unique_name

pytestmark = [pytest.mark.integration, pytest.mark.backends]


async def inbox_ids(api, token: str) -> list[int]:
    return [item["id"] for item in (await inbox(api, token, limit=200))["items"]]


async def send_many(api, usernames: list[str], title: str = "multi", **fields: object):
    return await api.client.post(
        "/notifications",
        json={"usernames": usernames, "title": title, **fields},
        headers=await api.admin_headers(),
    )


async def test_frame_is_text_and_equals_post_body(api):
    username, token = await api.user_with_token()
    async with AsyncExitStack() as stack:
        ws = await connect(api, token, stack)
        sent = await api.send(
            username, "shape", body="some body", data={"k": [1, 2], "nested": {"x": None}}
        )
        assert set(sent) == {"id", "username", "title", "body", "data", "created_at", "read"}
        assert sent["username"] == username
        assert sent["title"] == "shape"
        assert sent["body"] == "some body"
        assert sent["data"] == {"k": [1, 2], "nested": {"x": None}}
        assert sent["read"] is False

        raw = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        assert isinstance(raw, str)
        assert json.loads(raw) == {"type": "notification", "notification": sent, "unread_count": 1}

        # Defaults: an empty body and empty data are sent as such.
        plain = await api.send(username, "plain")
        assert plain["body"] == "" and plain["data"] == {}
        assert await recv_notification(ws) == plain


async def test_notifications_for_one_user_never_reach_another(api):
    user_a, token_a = await api.user_with_token()
    user_b, token_b = await api.user_with_token()
    async with AsyncExitStack() as stack:
        ws_a = await connect(api, token_a, stack)
        ws_b = await connect(api, token_b, stack)

        for_a = [await api.send(user_a, f"for-a-{i}") for i in range(3)]
        marker_b = await api.send(user_b, "marker-b")

        assert await recv_notification(ws_b) == marker_b
        assert await recv_until(ws_a, for_a[-1]["id"]) == for_a

        # And the other way round.
        for_b = await api.send(user_b, "for-b")
        marker_a = await api.send(user_a, "marker-a")
        assert await recv_notification(ws_a) == marker_a
        assert await recv_notification(ws_b) == for_b

    ids_a = {n["id"] for n in for_a} | {marker_a["id"]}
    ids_b = {marker_b["id"], for_b["id"]}
    assert set(await inbox_ids(api, token_b)) == ids_b
    assert set(await inbox_ids(api, token_a)) == ids_a


async def test_every_socket_of_a_user_gets_each_notification_once(api):
    username, token = await api.user_with_token()
    other, other_token = await api.user_with_token()
    async with AsyncExitStack() as stack:
        sockets = [await connect(api, token, stack) for _ in range(3)]
        other_ws = await connect(api, other_token, stack)
        assert await open_sockets(api, token) == 3

        k = 6
        sent = [await api.send(username, f"n{i}") for i in range(k)]
        marker = await api.send(username, "marker")
        expected = [*sent, marker]

        for ws in sockets:
            received = await recv_until(ws, marker["id"])
            assert len(received) == k + 1
            assert received == expected

        # Nothing stray follows the marker on any socket, and the bystander got none.
        second = await api.send(username, "second-marker")
        for ws in sockets:
            assert await recv_notification(ws) == second
        other_marker = await api.send(other, "other-marker")
        assert await recv_notification(other_ws) == other_marker


async def test_send_to_several_users(api):
    users = [await api.user_with_token() for _ in range(3)]
    names = [name for name, _ in users]
    async with AsyncExitStack() as stack:
        sockets = [await connect(api, token, stack) for _, token in users]
        response = await send_many(api, names, "to-several", body="b", data={"n": 1})
        assert response.status_code == 201, response.text
        payload = response.json()
        assert set(payload) == {"notifications"}
        notifications = payload["notifications"]
        assert [n["username"] for n in notifications] == names
        assert len({n["id"] for n in notifications}) == len(names)
        for notification in notifications:
            assert notification["title"] == "to-several"
            assert notification["body"] == "b"
            assert notification["data"] == {"n": 1}
            assert notification["read"] is False

        for ws, notification in zip(sockets, notifications, strict=True):
            assert await recv_notification(ws) == notification

    for (_, token), notification in zip(users, notifications, strict=True):
        assert (await inbox(api, token))["items"] == [notification]


async def test_send_to_several_is_all_or_nothing(api):
    users = [await api.user_with_token() for _ in range(2)]
    name_a, name_b = (name for name, _ in users)
    before = [await api.send(name, "before") for name, _ in users]
    missing = [unique_name("ghost"), unique_name("ghost")]

    async with AsyncExitStack() as stack:
        sockets = [await connect(api, token, stack) for _, token in users]
        response = await send_many(api, [name_a, missing[0], name_b, missing[1]], "nope")
        assert response.status_code == 404, response.text
        assert response.json() == {"detail": "unknown users", "usernames": missing}

        for (name, _), ws in zip(users, sockets, strict=True):
            marker = await api.send(name, "marker")
            assert await recv_notification(ws) == marker

    for (_, token), earlier in zip(users, before, strict=True):
        items = (await inbox(api, token))["items"]
        assert [n["title"] for n in items] == ["marker", "before"]
        assert items[1] == earlier


async def test_broadcast_reaches_every_user_with_own_read_state(api):
    users = [await api.user_with_token() for _ in range(3)]
    async with AsyncExitStack() as stack:
        sockets = {
            name: [await connect(api, token, stack) for _ in range(2)] for name, token in users
        }
        response = await api.client.post(
            "/notifications/broadcast",
            json={"title": "everyone", "body": "all", "data": {"b": True}},
            headers=await api.admin_headers(),
        )
        assert response.status_code == 201, response.text
        result = response.json()
        assert result["recipients"] >= len(users)
        assert result["title"] == "everyone"
        assert result["body"] == "all"
        assert result["data"] == {"b": True}

        frames = {}
        for name, user_sockets in sockets.items():
            copies = [await recv_notification(ws) for ws in user_sockets]
            assert copies[0] == copies[1]
            frames[name] = copies[0]
            assert copies[0]["username"] == name
            assert copies[0]["title"] == "everyone"
            assert copies[0]["created_at"] is not None
        assert len({n["id"] for n in frames.values()}) == len(users)

    for name, token in users:
        items = (await inbox(api, token))["items"]
        assert items == [frames[name]]

    (name_a, token_a), (name_b, token_b), _ = users
    read = await api.client.post(
        f"/notifications/{frames[name_a]['id']}/read", headers=bearer(token_a)
    )
    assert read.status_code == 200, read.text
    assert read.json()["read"] is True
    # The same message is still unread for everyone else.
    inbox_a = await inbox(api, token_a)
    inbox_b = await inbox(api, token_b)
    assert inbox_a["items"][0]["read"] is True and inbox_a["unread_count"] == 0
    assert inbox_b["items"][0]["read"] is False and inbox_b["unread_count"] == 1
    # And one user cannot mark another's copy.
    other = await api.client.post(
        f"/notifications/{frames[name_b]['id']}/read", headers=bearer(token_a)
    )
    assert other.status_code == 404
    assert (await inbox(api, token_b))["unread_count"] == 1


async def test_send_to_unknown_user_is_404_and_stores_nothing(api):
    ghost = unique_name("ghost")
    response = await api.client.post(
        f"/users/{ghost}/notifications",
        json={"title": "lost"},
        headers=await api.admin_headers(),
    )
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "unknown users", "usernames": [ghost]}

    # Create the user afterwards: nothing was kept for the name, neither in the inbox
    # nor in what a socket would replay.
    await api.create_user(ghost)
    token = await api.login(ghost, USER_PASSWORD)
    assert await inbox(api, token) == {"items": [], "unread_count": 0}
    async with AsyncExitStack() as stack:
        ws = await connect(api, token, stack, since=0)
        marker = await api.send(ghost, "marker")
        assert await recv_notification(ws) == marker


async def test_post_answers_only_after_storing(api):
    username, token = await api.user_with_token()
    for i in range(10):
        sent = await api.send(username, f"stored-{i}")
        items = (await inbox(api, token, limit=1))["items"]
        assert items == [sent]
    names = [username, (await api.user_with_token())[0]]
    response = await send_many(api, names, "multi-stored")
    assert response.status_code == 201, response.text
    mine = response.json()["notifications"][0]
    assert (await inbox(api, token, limit=1))["items"] == [mine]
