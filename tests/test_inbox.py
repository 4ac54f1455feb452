"""The caller's own inbox: listing, pagination, read state, and isolation between users."""

import pytest
from clients import bearer, inbox

pytestmark = [pytest.mark.integration, pytest.mark.backends]


async def fill(api, username: str, count: int) -> list[dict]:
    return [
        await api.send(username, f"n{i}", body=f"body {i}", data={"i": i}) for i in range(count)
    ]


async def test_healthz(api):
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_inbox_without_token_is_401(api):
    response = await api.client.get("/notifications")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    for path in ("/notifications/read-all", "/notifications/1/read"):
        assert (await api.client.post(path)).status_code == 401


async def test_inbox_with_bad_token_is_401(api):
    response = await api.client.get("/notifications", headers=bearer("not-a-jwt"))
    assert response.status_code == 401


async def test_empty_inbox(api):
    _username, token = await api.user_with_token()
    assert await inbox(api, token) == {"items": [], "unread_count": 0}


async def test_inbox_lists_newest_first_with_full_fields(api):
    username, token = await api.user_with_token()
    sent = await fill(api, username, 3)
    body = await inbox(api, token)
    assert body["items"] == list(reversed(sent))
    assert body["unread_count"] == 3
    first = body["items"][-1]
    assert first["username"] == username
    assert first["title"] == "n0"
    assert first["body"] == "body 0"
    assert first["data"] == {"i": 0}
    assert first["read"] is False
    ids = [item["id"] for item in body["items"]]
    assert ids == sorted(ids, reverse=True)


async def test_default_limit_is_50_and_unread_count_ignores_limit(api):
    username, token = await api.user_with_token()
    sent = await fill(api, username, 55)
    body = await inbox(api, token)
    assert len(body["items"]) == 50
    assert [item["id"] for item in body["items"]] == [n["id"] for n in reversed(sent)][:50]
    assert body["unread_count"] == 55

    small = await inbox(api, token, limit=2)
    assert [item["id"] for item in small["items"]] == [sent[-1]["id"], sent[-2]["id"]]
    assert small["unread_count"] == 55


async def test_limit_bounds(api):
    username, token = await api.user_with_token()
    await fill(api, username, 2)
    assert len((await inbox(api, token, limit=1))["items"]) == 1
    assert len((await inbox(api, token, limit=200))["items"]) == 2
    for bad in (0, 201, -1, "abc"):
        response = await api.client.get(
            "/notifications", params={"limit": bad}, headers=bearer(token)
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_bad_before_is_422(api):
    _username, token = await api.user_with_token()
    for bad in (0, -5, "x"):
        response = await api.client.get(
            "/notifications", params={"before": bad}, headers=bearer(token)
        )
        assert response.status_code == 422, (bad, response.text)


async def test_before_pagination_walks_every_page_without_overlap(api):
    username, token = await api.user_with_token()
    sent = await fill(api, username, 7)
    expected = [n["id"] for n in reversed(sent)]

    seen: list[int] = []
    pages: list[int] = []
    params: dict[str, object] = {"limit": 3}
    for _ in range(10):  # bounded: 7 items in pages of 3 need 3 pages and one empty check
        page = await inbox(api, token, **params)
        ids = [item["id"] for item in page["items"]]
        if not ids:
            break
        pages.append(len(ids))
        seen.extend(ids)
        params["before"] = ids[-1]
    assert pages == [3, 3, 1]
    assert seen == expected
    assert len(set(seen)) == len(seen)

    # `before` is exclusive.
    page = await inbox(api, token, before=sent[3]["id"])
    assert [item["id"] for item in page["items"]] == [sent[2]["id"], sent[1]["id"], sent[0]["id"]]


async def test_unread_filter(api):
    username, token = await api.user_with_token()
    sent = await fill(api, username, 4)
    for index in (0, 2):
        response = await api.client.post(
            f"/notifications/{sent[index]['id']}/read", headers=bearer(token)
        )
        assert response.status_code == 200

    everything = await inbox(api, token)
    assert [item["read"] for item in everything["items"]] == [False, True, False, True]
    assert everything["unread_count"] == 2

    unread = await inbox(api, token, unread="true")
    assert [item["id"] for item in unread["items"]] == [sent[3]["id"], sent[1]["id"]]
    assert all(item["read"] is False for item in unread["items"])
    assert unread["unread_count"] == 2

    limited = await inbox(api, token, unread="true", limit=1)
    assert [item["id"] for item in limited["items"]] == [sent[3]["id"]]
    assert limited["unread_count"] == 2

    explicit_false = await inbox(api, token, unread="false")
    assert len(explicit_false["items"]) == 4


async def test_mark_read_is_idempotent(api):
    username, token = await api.user_with_token()
    [first, second] = await fill(api, username, 2)

    response = await api.client.post(f"/notifications/{first['id']}/read", headers=bearer(token))
    assert response.status_code == 200
    marked = response.json()
    assert marked == {**first, "read": True}

    again = await api.client.post(f"/notifications/{first['id']}/read", headers=bearer(token))
    assert again.status_code == 200
    assert again.json() == marked

    body = await inbox(api, token)
    assert body["unread_count"] == 1
    assert {item["id"]: item["read"] for item in body["items"]} == {
        first["id"]: True,
        second["id"]: False,
    }


async def test_mark_read_of_another_users_notification_is_404(api):
    alice, alice_token = await api.user_with_token()
    _bob, bob_token = await api.user_with_token()
    [note] = await fill(api, alice, 1)

    response = await api.client.post(f"/notifications/{note['id']}/read", headers=bearer(bob_token))
    assert response.status_code == 404
    assert response.json() == {"detail": "notification not found"}

    alice_inbox = await inbox(api, alice_token)
    assert alice_inbox["unread_count"] == 1
    assert alice_inbox["items"][0]["read"] is False
    # Bob's inbox never shows Alice's notification either.
    assert await inbox(api, bob_token) == {"items": [], "unread_count": 0}


async def test_mark_read_unknown_and_malformed_ids(api):
    _username, token = await api.user_with_token()
    response = await api.client.post("/notifications/999999999/read", headers=bearer(token))
    assert response.status_code == 404
    for bad in ("abc", "1.5"):
        response = await api.client.post(f"/notifications/{bad}/read", headers=bearer(token))
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"][0]["loc"] == ["path", "notification_id"]


async def test_read_all_marks_only_own_notifications(api):
    alice, alice_token = await api.user_with_token()
    bob, bob_token = await api.user_with_token()
    alice_notes = await fill(api, alice, 3)
    await fill(api, bob, 2)
    await api.client.post(
        f"/notifications/{alice_notes[0]['id']}/read", headers=bearer(alice_token)
    )

    response = await api.client.post("/notifications/read-all", headers=bearer(alice_token))
    assert response.status_code == 200
    assert response.json() == {"updated": 2}

    again = await api.client.post("/notifications/read-all", headers=bearer(alice_token))
    assert again.status_code == 200
    assert again.json() == {"updated": 0}

    alice_inbox = await inbox(api, alice_token)
    assert alice_inbox["unread_count"] == 0
    assert all(item["read"] for item in alice_inbox["items"])
    assert (await inbox(api, alice_token, unread="true"))["items"] == []

    bob_inbox = await inbox(api, bob_token)
    assert bob_inbox["unread_count"] == 2
    assert not any(item["read"] for item in bob_inbox["items"])


async def test_read_all_on_empty_inbox(api):
    _username, token = await api.user_with_token()
    response = await api.client.post("/notifications/read-all", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"updated": 0}


async def test_new_notification_after_read_all_is_unread(api):
    username, token = await api.user_with_token()
    await fill(api, username, 2)
    await api.client.post("/notifications/read-all", headers=bearer(token))
    fresh = await api.send(username, "later")
    body = await inbox(api, token)
    assert body["unread_count"] == 1
    assert body["items"][0] == fresh
    assert (await inbox(api, token, unread="true"))["items"] == [fresh]
