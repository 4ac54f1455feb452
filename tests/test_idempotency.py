"""`Idempotency-Key` on every send route: a retry returns the first response and stores and
sends nothing new. Cross-process retries are in test_scale.py."""

import asyncio
import uuid
from contextlib import AsyncExitStack

import pytest
from clients import Collector, bearer, connect, inbox
from conftest import ADMIN_PASSWORD, unique_name

pytestmark = [pytest.mark.integration, pytest.mark.backends]


async def post(api, path: str, body: dict, key: str | None, headers: dict | None = None):
    headers = dict(headers or await api.admin_headers())
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.client.post(path, json=body, headers=headers)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/users/{user}/notifications", {"title": "keyed"}),
        ("/notifications", {"usernames": ["{user}"], "title": "keyed"}),
        ("/notifications/broadcast", {"title": "keyed"}),
    ],
    ids=["one", "several", "broadcast"],
)
async def test_retries_return_the_first_response_and_send_once(api, path, body):
    username, token = await api.user_with_token()
    path = path.format(user=username)
    body = {k: [username] if k == "usernames" else v for k, v in body.items()}
    key = uuid.uuid4().hex
    async with AsyncExitStack() as stack:
        socket = Collector(await connect(api, token, stack, since=0))
        first, *retries = await asyncio.gather(*(post(api, path, body, key) for _ in range(3)))
        retries.append(await post(api, path, body, key))
        for response in [first, *retries]:
            assert response.status_code == 201, response.text
            assert response.content == first.content
        flags = [r.headers.get("Idempotent-Replayed") for r in [first, *retries]]
        assert sorted(flags, key=str) == [None, "true", "true", "true"]

        marker = await api.send(username, "marker")
        await socket.wait_for(2)
        await asyncio.sleep(0.3)
        assert [n["title"] for n in socket.notifications] == ["keyed", "marker"]
        assert socket.ids[-1] == marker["id"]
        await socket.stop()
    stored = await inbox(api, token)
    assert [item["title"] for item in stored["items"]] == ["marker", "keyed"]


async def test_a_key_reused_for_another_request_is_422_and_stores_nothing(api):
    username, token = await api.user_with_token()
    key = uuid.uuid4().hex
    path = f"/users/{username}/notifications"
    assert (await post(api, path, {"title": "first"}, key)).status_code == 201
    for other_path, body in [
        (path, {"title": "different"}),
        ("/notifications/broadcast", {"title": "first"}),
    ]:
        response = await post(api, other_path, body, key)
        assert response.status_code == 422, response.text
        assert response.json() == {
            "detail": "Idempotency-Key was already used for a different request"
        }
    stored = await inbox(api, token)
    assert [item["title"] for item in stored["items"]] == ["first"]


async def test_keys_belong_to_their_sender(api):
    username, token = await api.user_with_token()
    other_admin = unique_name("admin")
    await api.client.post(
        "/users",
        json={"username": other_admin, "password": ADMIN_PASSWORD, "is_admin": True},
        headers=await api.admin_headers(),
    )
    other_headers = bearer(await api.login(other_admin, ADMIN_PASSWORD))
    key = uuid.uuid4().hex
    path = f"/users/{username}/notifications"
    mine = await post(api, path, {"title": "same"}, key)
    theirs = await post(api, path, {"title": "same"}, key, headers=other_headers)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert (await inbox(api, token))["unread_count"] == 2


async def test_a_failed_send_does_not_consume_its_key(api):
    username, token = await api.user_with_token()
    key = uuid.uuid4().hex
    missing = unique_name("nobody")
    body = {"usernames": [username, missing], "title": "retry me"}
    failed = await post(api, "/notifications", body, key)
    assert failed.status_code == 404
    assert failed.json() == {"detail": "unknown users", "usernames": [missing]}
    assert (await inbox(api, token))["items"] == []
    # The same key now works for a corrected request.
    fixed = await post(api, "/notifications", {**body, "usernames": [username]}, key)
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers
    assert [item["title"] for item in (await inbox(api, token))["items"]] == ["retry me"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "naïve"])
async def test_malformed_keys_are_422_and_store_nothing(api, key):
    username, token = await api.user_with_token()
    headers = {**await api.admin_headers(), "Idempotency-Key": key}
    response = await api.client.post(
        f"/users/{username}/notifications",
        json={"title": "x"},
        headers={k: v.encode() if k == "Idempotency-Key" else v for k, v in headers.items()},
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["header", "Idempotency-Key"]
    assert (await inbox(api, token))["items"] == []
