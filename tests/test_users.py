"""POST /users (admin only) and GET /users/me, including the live socket count."""

from datetime import UTC, datetime, timedelta

import pytest
import websockets
from clients import (
    bearer,
    expect_close,
    inbox,
    me,
    open_sockets,
    recv_notification,
    wait_for_open_sockets,
)
from conftest import TEST_SECRET, USER_PASSWORD, make_token, unique_name
from jose import jwt

pytestmark = pytest.mark.integration


async def _create(api, **body: object):
    return await api.client.post("/users", json=body, headers=await api.admin_headers())


# POST /users


async def test_create_user(api) -> None:
    username = unique_name()
    response = await _create(api, username=username, password=USER_PASSWORD)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"username", "is_admin", "disabled", "created_at"}
    assert body["username"] == username
    assert body["is_admin"] is False
    created_at = datetime.fromisoformat(body["created_at"])
    assert created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=5)
    assert "password" not in response.text


async def test_created_user_can_log_in(api) -> None:
    username = unique_name()
    assert (await _create(api, username=username, password=USER_PASSWORD)).status_code == 201
    token = await api.login(username, USER_PASSWORD)
    profile = await me(api, token)
    assert profile["username"] == username
    assert profile["is_admin"] is False
    wrong = await api.client.post("/token", data={"username": username, "password": "nope-nope"})
    assert wrong.status_code == 401


async def test_taken_username_is_409(api) -> None:
    username = await api.create_user()
    response = await _create(api, username=username, password="a-different-password")
    assert response.status_code == 409
    assert response.json() == {"detail": "username taken"}
    # The original password still works: the second create changed nothing.
    await api.login(username, USER_PASSWORD)
    taken = await api.client.post(
        "/token", data={"username": username, "password": "a-different-password"}
    )
    assert taken.status_code == 401


async def test_admin_name_is_taken(api) -> None:
    response = await _create(api, username="admin", password="another-admin-password")
    assert response.status_code == 409


@pytest.mark.parametrize(
    "username",
    [
        pytest.param("", id="empty"),
        pytest.param("a" * 65, id="65-chars"),
        pytest.param("has space", id="space"),
        pytest.param("a/b", id="slash"),
        pytest.param("ünïcödé", id="unicode"),
        pytest.param("bob\n", id="trailing-newline"),
        pytest.param("tab\tname", id="tab"),
        pytest.param("semi;colon", id="semicolon"),
    ],
)
async def test_invalid_usernames_are_422(api, username: str) -> None:
    response = await _create(api, username=username, password=USER_PASSWORD)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "username"]


async def test_username_edges_are_accepted(api) -> None:
    long_name = unique_name("x").ljust(64, "y")
    assert len(long_name) == 64
    odd_name = f"A.b_c-d@{unique_name()}"
    for username in (long_name, odd_name):
        response = await _create(api, username=username, password=USER_PASSWORD)
        assert response.status_code == 201, (username, response.text)
        assert (await me(api, await api.login(username, USER_PASSWORD)))["username"] == username


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"password": "1234567"}, id="short-password"),
        pytest.param({"password": ""}, id="empty-password"),
        pytest.param({}, id="no-password"),
        pytest.param({"password": USER_PASSWORD, "role": "admin"}, id="extra-field"),
        pytest.param({"password": USER_PASSWORD, "is_admin": "maybe"}, id="bad-is-admin"),
    ],
)
async def test_invalid_bodies_are_422(api, body: dict) -> None:
    username = unique_name()
    response = await _create(api, username=username, **body)
    assert response.status_code == 422, response.text
    # Nothing was created: a well-signed token for the name finds no user.
    missing = await api.client.get("/users/me", headers=bearer(make_token(username)))
    assert missing.status_code == 401


async def test_eight_char_password_is_enough(api) -> None:
    username = unique_name()
    assert (await _create(api, username=username, password="12345678")).status_code == 201
    await api.login(username, "12345678")


async def test_created_admin_can_use_admin_routes(api) -> None:
    admin_name = unique_name("boss")
    response = await _create(api, username=admin_name, password=USER_PASSWORD, is_admin=True)
    assert response.status_code == 201, response.text
    assert response.json()["is_admin"] is True

    token = await api.login(admin_name, USER_PASSWORD)
    assert "admin" in jwt.decode(token, TEST_SECRET, algorithms=["HS256"])["scope"].split()
    assert (await me(api, token))["is_admin"] is True

    # The new admin creates a user and sends it a notification.
    target = unique_name()
    created = await api.client.post(
        "/users", json={"username": target, "password": USER_PASSWORD}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    sent = await api.client.post(
        f"/users/{target}/notifications", json={"title": "from boss"}, headers=bearer(token)
    )
    assert sent.status_code == 201, sent.text
    received = await inbox(api, make_token(target))
    assert [item["title"] for item in received["items"]] == ["from boss"]


# GET /users/me


async def test_me_profile(api) -> None:
    username, token = await api.user_with_token()
    profile = await me(api, token)
    assert set(profile) == {"username", "is_admin", "disabled", "created_at", "open_sockets"}
    assert profile["username"] == username
    assert profile["is_admin"] is False
    assert profile["open_sockets"] == 0
    datetime.fromisoformat(profile["created_at"])


async def test_me_counts_open_sockets(api) -> None:
    username = await api.create_user()
    token, other_token = make_token(username), make_token(await api.create_user())
    url = f"{api.server.ws_url}?token={token}"
    async with websockets.connect(url) as first, websockets.connect(url) as second:
        # A delivered notification proves both sockets are registered with the hub.
        sent = await api.send(username, "sync")
        for ws in (first, second):
            assert await recv_notification(ws) == sent
        assert await open_sockets(api, token) == 2
        # Sockets count per user: someone else's profile is unaffected.
        assert await open_sockets(api, other_token) == 0

        await first.close()
        await wait_for_open_sockets(api, token, 1)
    await wait_for_open_sockets(api, token, 0)


async def test_me_socket_count_ignores_rejected_sockets(api) -> None:
    # A valid token with a bad `since` is accepted, then closed: it never counts.
    token = make_token(await api.create_user())
    async with websockets.connect(f"{api.server.ws_url}?token={token}&since=abc") as ws:
        assert await expect_close(ws) == (1008, "invalid since")
    assert await open_sockets(api, token) == 0
