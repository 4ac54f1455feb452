"""Refresh tokens: `grant_type=refresh_token` rotates them. Reuse (theft detection) and
its grace window are in test_refresh_grace.py."""

import httpx
import pytest
from clients import bearer
from conftest import USER_PASSWORD
from sessions import claims, refresh, status_with, user_with_pair

pytestmark = pytest.mark.integration


async def test_refresh_returns_a_new_pair_in_the_same_session(api) -> None:
    username, pair = await user_with_pair(api)
    response = await refresh(api, pair["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    renewed = response.json()
    assert set(renewed) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert renewed["refresh_token"] != pair["refresh_token"]
    assert renewed["access_token"] != pair["access_token"]
    old, new = claims(pair["access_token"]), claims(renewed["access_token"])
    assert new["sub"] == username
    assert new["sid"] == old["sid"] and new["jti"] != old["jti"]
    # Both access tokens of the live family work.
    assert await status_with(api, renewed["access_token"]) == (200, username)
    assert await status_with(api, pair["access_token"]) == (200, username)
    # And the chain goes on.
    again = await refresh(api, renewed["refresh_token"])
    assert again.status_code == 200, again.text


async def test_bad_refresh_requests(api) -> None:
    for token, detail in (
        ("not-a-refresh-token", "invalid refresh token"),
        ("x" * 256, "invalid refresh token"),
    ):
        response = await refresh(api, token)
        assert response.status_code == 400, response.text
        assert response.json() == {
            "error": "invalid_grant",
            "error_description": detail,
            "detail": detail,
        }
    # An access token is not a refresh token.
    _username, pair = await user_with_pair(api)
    response = await refresh(api, pair["access_token"])
    assert response.json()["error_description"] == "invalid refresh token"
    # Missing field: the usual 422, with RFC 6749's code.
    response = await api.client.post("/token", data={"grant_type": "refresh_token"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["detail"][0]["loc"] == ["body", "refresh_token"]
    # Unknown grant type: RFC 6749's error code.
    response = await api.client.post(
        "/token", data={"grant_type": "client_credentials", "username": "a", "password": "b"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    # None of this broke the real pair.
    assert (await refresh(api, pair["refresh_token"])).status_code == 200


async def test_refresh_token_does_not_authenticate_requests(api) -> None:
    _username, pair = await user_with_pair(api)
    response = await api.client.get("/users/me", headers=bearer(pair["refresh_token"]))
    assert response.status_code == 401


async def test_session_cookie_can_be_refreshed(server, api) -> None:
    username = await api.create_user()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as browser:
        login = await browser.post(
            "/session", data={"username": username, "password": USER_PASSWORD}
        )
        assert login.status_code == 200
        renewed = await browser.post(
            "/session",
            data={"grant_type": "refresh_token", "refresh_token": login.json()["refresh_token"]},
        )
        assert renewed.status_code == 200, renewed.text
        assert browser.cookies["access_token"].strip('"') == renewed.json()["access_token"]
        assert (await browser.get("/users/me")).json()["username"] == username
