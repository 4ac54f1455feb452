"""`GET /session`: whether the caller's cookie (or bearer token) still speaks for someone.

Always 200, so the page can ask without a failed request in the browser's console.
"""

import pytest
from clients import bearer, cookie
from conftest import USER_PASSWORD, make_token, unique_name

pytestmark = pytest.mark.integration


async def test_no_credentials(api):
    response = await api.client.get("/session")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "authenticated": False,
        "username": None,
        "is_admin": False,
        "expires_in": None,
        "reason": "no token",
    }


async def test_cookie_session(api):
    username = await api.create_user()
    login = await api.client.post(
        "/session", data={"username": username, "password": USER_PASSWORD}
    )
    token = login.json()["access_token"]
    api.client.cookies.clear()
    for headers in (cookie(token), bearer(token)):
        body = (await api.client.get("/session", headers=headers)).json()
        assert body["authenticated"] is True
        assert body["username"] == username
        assert body["is_admin"] is False
        assert 0 < body["expires_in"] <= login.json()["expires_in"]
        assert body["reason"] is None


async def test_admin_session(api):
    body = (await api.client.get("/session", headers=await api.admin_headers())).json()
    assert (body["authenticated"], body["is_admin"]) == (True, True)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda name: make_token(name, expires_in=-10), "token expired", id="expired"),
        pytest.param(
            lambda name: make_token(name, key="another-key-that-is-long-enough-000000"),
            "invalid token",
            id="bad-signature",
        ),
        pytest.param(lambda name: "not-a-jwt", "invalid token", id="garbage"),
        pytest.param(lambda name: make_token(unique_name("ghost")), "unknown user", id="ghost"),
    ],
)
async def test_unusable_tokens_say_why(api, make, reason):
    username = await api.create_user()
    response = await api.client.get("/session", headers=cookie(make(username)))
    assert response.status_code == 200
    body = response.json()
    assert (body["authenticated"], body["username"], body["reason"]) == (False, None, reason)
