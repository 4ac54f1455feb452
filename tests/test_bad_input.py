"""Bad input gets a clear error, nothing is stored or delivered, and the server stays up."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import websockets
from clients import inbox, recv_notification
from conftest import USER_PASSWORD, unique_name

pytestmark = pytest.mark.integration

MAX_BODY = 1024 * 1024
MAX_DATA = 16 * 1024


@pytest.fixture(autouse=True)
async def server_stays_healthy(api) -> AsyncIterator[None]:
    yield
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def error_locs(response: httpx.Response) -> list[list]:
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    for error in detail:
        assert error["msg"], error
    return [error["loc"] for error in detail]


def data_of_json_size(size: int) -> dict[str, str]:
    """A dict whose compact JSON encoding is exactly `size` bytes."""
    data = {"k": "x" * (size - len('{"k":""}'))}
    assert len(json.dumps(data, separators=(",", ":"))) == size
    return data


@asynccontextmanager
async def watched_recipient(api) -> AsyncIterator[tuple[str, str, object]]:
    """A fresh user with an open socket; on exit, proves nothing but a marker arrived.

    Everything the test body sends is supposed to fail. Afterwards a valid marker
    notification is sent: it must be the first frame on the socket and the only item
    in the inbox.
    """
    username, token = await api.user_with_token()
    async with websockets.connect(f"{api.server.ws_url}?token={token}") as ws:
        yield username, token, ws
        marker = await api.send(username, "marker")
        assert await recv_notification(ws) == marker
    assert await inbox(api, token) == {"items": [marker], "unread_count": 1}


async def post_one(api, username: str, **kwargs) -> httpx.Response:
    return await api.client.post(
        f"/users/{username}/notifications", headers=await api.admin_headers(), **kwargs
    )


# Sending to one user


async def test_bad_title_is_422_naming_title(api):
    async with watched_recipient(api) as (username, _token, _ws):
        for payload in ({}, {"body": "no title"}, {"title": ""}, {"title": "t" * 201}):
            response = await post_one(api, username, json=payload)
            assert response.status_code == 422, (payload, response.text)
            assert ["body", "title"] in error_locs(response), response.text
        for wrong_type in (None, 5, ["a"]):
            response = await post_one(api, username, json={"title": wrong_type})
            assert response.status_code == 422, (wrong_type, response.text)
            assert ["body", "title"] in error_locs(response)


async def test_body_too_long_is_422(api):
    async with watched_recipient(api) as (username, _token, _ws):
        response = await post_one(api, username, json={"title": "t", "body": "b" * 4001})
        assert response.status_code == 422
        assert ["body", "body"] in error_locs(response)


async def test_data_not_an_object_is_422(api):
    async with watched_recipient(api) as (username, _token, _ws):
        for data in ([1, 2], "text", 3, None):
            response = await post_one(api, username, json={"title": "t", "data": data})
            assert response.status_code == 422, (data, response.text)
            assert ["body", "data"] in error_locs(response)


async def test_data_over_16_kib_is_422(api):
    async with watched_recipient(api) as (username, _token, _ws):
        response = await post_one(
            api, username, json={"title": "t", "data": data_of_json_size(MAX_DATA + 1)}
        )
        assert response.status_code == 422
        assert ["body", "data"] in error_locs(response)
        assert str(MAX_DATA) in response.text


async def test_unknown_field_is_422(api):
    async with watched_recipient(api) as (username, _token, _ws):
        response = await post_one(api, username, json={"title": "t", "priority": "high"})
        assert response.status_code == 422
        assert ["body", "priority"] in error_locs(response)


async def test_invalid_json_is_422(api):
    async with watched_recipient(api) as (username, _token, _ws):
        for raw in (b'{"title": "t",', b"not json", b'{"title": "t"}}'):
            response = await api.client.post(
                f"/users/{username}/notifications",
                content=raw,
                headers={**await api.admin_headers(), "Content-Type": "application/json"},
            )
            assert response.status_code == 422, (raw, response.text)
            assert response.json()["detail"][0]["type"] == "json_invalid"
        # A JSON body that is not an object at all.
        response = await post_one(api, username, json=["title"])
        assert response.status_code == 422


async def test_boundary_values_are_accepted(api):
    username, token = await api.user_with_token()
    payload = {"title": "t" * 200, "body": "b" * 4000, "data": data_of_json_size(MAX_DATA)}
    async with websockets.connect(f"{api.server.ws_url}?token={token}") as ws:
        response = await post_one(api, username, json=payload)
        assert response.status_code == 201, response.text
        stored = response.json()
        assert {k: stored[k] for k in payload} == payload
        assert await recv_notification(ws) == stored
    assert (await inbox(api, token))["items"] == [stored]

    just_under = data_of_json_size(MAX_DATA - 1)
    response = await post_one(api, username, json={"title": "t", "data": just_under})
    assert response.status_code == 201, response.text
    assert response.json()["data"] == just_under


# Sending to several users


async def test_bad_username_lists_are_422(api):
    async with watched_recipient(api) as (username, _token, _ws):
        headers = await api.admin_headers()
        cases = {
            "empty": [],
            "too many": [username] + [unique_name() for _ in range(1000)],
            "duplicates": [username, username],
            "invalid name": [username, "not a valid name!"],
            "too long name": [username, "n" * 65],
        }
        for label, usernames in cases.items():
            response = await api.client.post(
                "/notifications", json={"title": "t", "usernames": usernames}, headers=headers
            )
            assert response.status_code == 422, (label, response.text)
            assert any(loc[:2] == ["body", "usernames"] for loc in error_locs(response)), label
        duplicate = await api.client.post(
            "/notifications",
            json={"title": "t", "usernames": [username, username]},
            headers=headers,
        )
        assert username in duplicate.text
        missing = await api.client.post("/notifications", json={"title": "t"}, headers=headers)
        assert missing.status_code == 422
        bad_title = await api.client.post(
            "/notifications", json={"title": "", "usernames": [username]}, headers=headers
        )
        assert bad_title.status_code == 422
        assert ["body", "title"] in error_locs(bad_title)


async def test_invalid_path_username_is_422(api):
    response = await post_one(api, "bad name!", json={"title": "t"})
    assert response.status_code == 422
    assert error_locs(response) == [["path", "username"]]


# Oversized bodies


async def test_body_over_1_mib_with_content_length_is_413(api):
    async with watched_recipient(api) as (username, _token, _ws):
        raw = json.dumps({"title": "t", "body": "b" * (MAX_BODY + 10)}).encode()
        response = await api.client.post(
            f"/users/{username}/notifications",
            content=raw,
            headers={**await api.admin_headers(), "Content-Type": "application/json"},
        )
        assert response.status_code == 413, response.text
        assert str(MAX_BODY) in response.json()["detail"]
        # The server still answers, on a fresh connection too.
        assert (await api.client.get("/healthz")).status_code == 200


async def test_chunked_body_over_1_mib_is_413(api):
    async def stream() -> AsyncIterator[bytes]:
        yield b'{"title": "t", "body": "'
        for _ in range(17):  # 17 * 64 KiB > 1 MiB
            yield b"b" * (64 * 1024)
        yield b'"}'

    async with watched_recipient(api) as (username, _token, _ws):
        request = api.client.build_request(
            "POST",
            f"/users/{username}/notifications",
            content=stream(),
            headers={**await api.admin_headers(), "Content-Type": "application/json"},
        )
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        response = await api.client.send(request)
        assert response.status_code == 413, response.text
        assert str(MAX_BODY) in response.json()["detail"]
        assert (await api.client.get("/healthz")).status_code == 200


async def test_chunked_body_under_limit_is_accepted(api):
    username, token = await api.user_with_token()

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"title": "chunked", '
        yield b'"body": "' + b"b" * 3000 + b'"}'

    response = await api.client.post(
        f"/users/{username}/notifications",
        content=stream(),
        headers={**await api.admin_headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["title"] == "chunked"
    assert stored["body"] == "b" * 3000
    assert (await inbox(api, token))["items"] == [stored]


# Creating users


async def test_bad_user_creation_is_422_and_stores_nothing(api):
    headers = await api.admin_headers()
    name = unique_name()
    cases = {
        "short password": {"username": name, "password": "short"},
        "missing password": {"username": name},
        "missing username": {"password": USER_PASSWORD},
        "invalid username": {"username": "bad name!", "password": USER_PASSWORD},
        "long username": {"username": "u" * 65, "password": USER_PASSWORD},
        "extra field": {"username": name, "password": USER_PASSWORD, "role": "root"},
        "is_admin not bool": {"username": name, "password": USER_PASSWORD, "is_admin": "maybe"},
        "not an object": [name, USER_PASSWORD],
    }
    for label, payload in cases.items():
        response = await api.client.post("/users", json=payload, headers=headers)
        assert response.status_code == 422, (label, response.text)
        error_locs(response)

    for raw in (b"{", b'{"username": "x", "password": }'):
        response = await api.client.post(
            "/users", content=raw, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 422, (raw, response.text)
        assert response.json()["detail"][0]["type"] == "json_invalid"

    # None of the failed attempts created the user: the name is still free.
    login = await api.client.post("/token", data={"username": name, "password": USER_PASSWORD})
    assert login.status_code == 401
    assert await api.create_user(name) == name
