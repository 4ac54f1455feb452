"""Logging in: POST /token, the cookie session, and who may use the admin routes."""

import time

import httpx
import pytest
from clients import bearer, cookie, inbox
from conftest import (
    ADMIN_USERNAME,
    TEST_SECRET,
    USER_PASSWORD,
    make_token,
    unique_name,
)
from jose import jwt

from notifier.auth.accounts import Accounts
from notifier.auth.keys import KeySet
from notifier.auth.passwords import PasswordHasher
from notifier.auth.tokens import TokenCodec
from notifier.db.auth_store import Credentials
from notifier.db.records import StoredUser

pytestmark = pytest.mark.integration

WRONG_KEY = "wrong-key-that-is-long-enough-for-hs256"


def _decode(token: str) -> dict:
    return jwt.decode(token, TEST_SECRET, algorithms=["HS256"])


# POST /token


async def test_token_for_user(api) -> None:
    username = await api.create_user()
    before = int(time.time())
    response = await api.client.post(
        "/token", data={"username": username, "password": USER_PASSWORD}
    )
    after = int(time.time())
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["refresh_token"] and body["refresh_token"] != body["access_token"]
    assert response.headers["cache-control"] == "no-store"

    claims = _decode(body["access_token"])
    assert {"sub", "exp", "iat", "jti", "sid"} <= set(claims)
    assert claims["sub"] == username
    assert before <= claims["iat"] <= after
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert claims["jti"]
    assert "admin" not in str(claims.get("scope", "")).split()


async def test_token_for_admin_has_admin_scope(api) -> None:
    claims = _decode(await api.admin_token())
    assert claims["sub"] == ADMIN_USERNAME
    assert "admin" in claims["scope"].split()


async def test_each_login_gets_a_fresh_token_id(api) -> None:
    username = await api.create_user()
    first = _decode(await api.login(username, USER_PASSWORD))
    second = _decode(await api.login(username, USER_PASSWORD))
    assert first["jti"] != second["jti"]


async def test_token_authenticates_me(api) -> None:
    username, token = await api.user_with_token()
    response = await api.client.get("/users/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["username"] == username


async def test_wrong_password_and_unknown_user_look_the_same(api) -> None:
    username = await api.create_user()
    wrong_password = await api.client.post(
        "/token", data={"username": username, "password": USER_PASSWORD + "x"}
    )
    unknown_user = await api.client.post(
        "/token", data={"username": unique_name("nobody"), "password": USER_PASSWORD}
    )
    for response in (wrong_password, unknown_user):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "set-cookie" not in response.headers
    assert wrong_password.content == unknown_user.content
    assert wrong_password.json() == {
        "error": "invalid_grant",
        "error_description": "incorrect username or password",
        "detail": "incorrect username or password",
    }


async def test_password_and_username_are_exact(api) -> None:
    username = await api.create_user()
    for attempt in (
        {"username": username, "password": USER_PASSWORD.upper()},
        {"username": username.upper(), "password": USER_PASSWORD},
        {"username": username + " ", "password": USER_PASSWORD},
    ):
        response = await api.client.post("/token", data=attempt)
        assert response.status_code == 401, attempt


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="empty"),
        pytest.param({"username": "someone"}, id="no-password"),
        pytest.param({"password": "something"}, id="no-username"),
    ],
)
async def test_token_missing_form_fields(api, data: dict) -> None:
    response = await api.client.post("/token", data=data)
    assert response.status_code == 422


async def test_token_rejects_json_body(api) -> None:
    # The OAuth2 password grant is form-encoded; a JSON body is not a login.
    response = await api.client.post(
        "/token", json={"username": ADMIN_USERNAME, "password": "whatever"}
    )
    assert response.status_code == 422


# Unknown users still cost one password verification


class _FakeStore:
    def __init__(self, user: StoredUser | None) -> None:
        self.user = user
        self.lookups: list[str] = []

    async def credentials(self, username: str, session_id: str | None) -> Credentials | None:
        self.lookups.append(username)
        return Credentials(self.user, False, 0, False) if self.user else None


class _SpyHasher(PasswordHasher):
    def __init__(self) -> None:
        # The calls matter here, not argon2's cost.
        super().__init__(schemes=("pbkdf2_sha256",))
        self.calls: list[str] = []

    async def verify_and_update(self, password: str, password_hash: str):
        self.calls.append("verify")
        return await super().verify_and_update(password, password_hash)

    async def dummy_verify(self) -> None:
        self.calls.append("dummy_verify")
        await super().dummy_verify()


def _accounts(user: StoredUser | None) -> tuple[Accounts, _FakeStore, _SpyHasher]:
    store, hasher = _FakeStore(user), _SpyHasher()
    codec = TokenCodec(KeySet.shared_secret(TEST_SECRET), 60)
    accounts = Accounts(None, store, hasher, codec, None, None, None)  # type: ignore[arg-type]
    return accounts, store, hasher


async def test_unknown_user_still_spends_a_verification() -> None:
    accounts, store, hasher = _accounts(None)
    assert await accounts.authenticate("nobody", "some-password") is None
    assert store.lookups == ["nobody"]
    assert hasher.calls == ["dummy_verify"]


async def test_wrong_password_spends_one_verification() -> None:
    password_hash = await _SpyHasher().hash("right-password")
    user = StoredUser(1, "carol", password_hash, False, None)  # type: ignore[arg-type]
    accounts, _store, spy = _accounts(user)
    assert await accounts.authenticate("carol", "wrong-password") is None
    assert spy.calls == ["verify"]
    assert await accounts.authenticate("carol", "right-password") == user


# Cookie session


def _set_cookie_headers(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def _cookie_attributes(header: str) -> tuple[str, str, dict[str, str]]:
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attributes = {}
    for part in rest:
        key, _, attr_value = part.partition("=")
        attributes[key.strip().lower()] = attr_value.strip()
    return name, value, attributes


async def test_session_cookie_round_trip(server, api) -> None:
    username = await api.create_user()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as browser:
        response = await browser.post(
            "/session", data={"username": username, "password": USER_PASSWORD}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
        assert body["token_type"] == "bearer"
        assert _decode(body["access_token"])["sub"] == username

        [header] = _set_cookie_headers(response)
        name, value, attributes = _cookie_attributes(header)
        assert name == "access_token"
        assert value.strip('"') == body["access_token"]
        assert "httponly" in attributes
        assert attributes.get("samesite", "").lower() == "lax"
        assert attributes.get("path") == "/"
        assert int(attributes["max-age"]) == body["expires_in"]

        # The client's cookie jar now carries the session.
        me = await browser.get("/users/me")
        assert me.status_code == 200, me.text
        assert me.json()["username"] == username

        logout = await browser.delete("/session")
        assert logout.status_code == 204
        assert logout.content == b""
        [cleared] = _set_cookie_headers(logout)
        name, value, attributes = _cookie_attributes(cleared)
        assert name == "access_token"
        assert value.strip('"') == ""
        assert attributes.get("max-age") == "0"
        assert "httponly" in attributes
        assert attributes.get("path") == "/"

        assert "access_token" not in browser.cookies
        after = await browser.get("/users/me")
        assert after.status_code == 401


async def test_session_cookie_sent_by_hand(api) -> None:
    username = await api.create_user()
    response = await api.client.post(
        "/session", data={"username": username, "password": USER_PASSWORD}
    )
    token = response.json()["access_token"]
    api.client.cookies.clear()
    me = await api.client.get("/users/me", headers=cookie(token))
    assert me.status_code == 200
    assert me.json()["username"] == username


async def test_session_bad_login_sets_no_cookie(api) -> None:
    username = await api.create_user()
    response = await api.client.post(
        "/session", data={"username": username, "password": "wrong-password"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert _set_cookie_headers(response) == []


async def test_forged_cookie_is_rejected(api) -> None:
    username = await api.create_user()
    forged = make_token(username, key="not-the-server-secret-but-long-enough-anyway")
    response = await api.client.get("/users/me", headers=cookie(forged))
    assert response.status_code == 401


async def test_no_credentials_is_401(api) -> None:
    response = await api.client.get("/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


# Admin routes


def _admin_requests(target: str, new_user: str) -> list[tuple[str, str, dict]]:
    content = {"title": "should not be stored"}
    return [
        ("POST", "/users", {"username": new_user, "password": "long-enough-pw"}),
        ("POST", f"/users/{target}/notifications", content),
        ("POST", "/notifications", {**content, "usernames": [target]}),
        ("POST", "/notifications/broadcast", content),
    ]


def _bad_tokens() -> dict[str, str]:
    return {
        "garbage": "not-a-token",
        "wrong-key": make_token(ADMIN_USERNAME, key=WRONG_KEY, scope="admin"),
        "expired": make_token(ADMIN_USERNAME, expires_in=-60, scope="admin"),
        "unknown-user": make_token(unique_name("ghost"), scope="admin"),
    }


async def _target(api) -> tuple[str, str]:
    """A user to aim the sends at, and a token (signed like the server's) to read its inbox."""
    username = await api.create_user()
    return username, make_token(username)


async def _assert_nothing_stored(api, target_token: str, new_user: str) -> None:
    assert await inbox(api, target_token) == {"items": [], "unread_count": 0}
    # A well-signed token for the name POST /users was asked to create: still nobody.
    missing = await api.client.get("/users/me", headers=bearer(make_token(new_user)))
    assert missing.status_code == 401


async def test_admin_routes_without_token(api) -> None:
    target, target_token = await _target(api)
    new_user = unique_name("made")
    for method, path, body in _admin_requests(target, new_user):
        response = await api.client.request(method, path, json=body)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    await _assert_nothing_stored(api, target_token, new_user)


async def test_admin_routes_with_bad_tokens(api) -> None:
    target, target_token = await _target(api)
    new_user = unique_name("made")
    for kind, token in _bad_tokens().items():
        for method, path, body in _admin_requests(target, new_user):
            response = await api.client.request(method, path, json=body, headers=bearer(token))
            assert response.status_code == 401, (kind, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
    await _assert_nothing_stored(api, target_token, new_user)


async def test_admin_routes_with_bad_cookie(api) -> None:
    target, target_token = await _target(api)
    new_user = unique_name("made")
    forged = make_token(ADMIN_USERNAME, key=WRONG_KEY)
    api.client.cookies.clear()
    for method, path, body in _admin_requests(target, new_user):
        response = await api.client.request(method, path, json=body, headers=cookie(forged))
        assert response.status_code == 401, (path, response.text)
    await _assert_nothing_stored(api, target_token, new_user)


async def test_admin_routes_for_non_admin(api) -> None:
    target, target_token = await _target(api)
    _caller, caller_token = await api.user_with_token()
    assert "admin" not in _decode(caller_token).get("scope", "").split()
    new_user = unique_name("made")
    for method, path, body in _admin_requests(target, new_user):
        response = await api.client.request(method, path, json=body, headers=bearer(caller_token))
        assert response.status_code == 403, (path, response.text)
        assert response.json() == {"detail": "admin only"}
    await _assert_nothing_stored(api, target_token, new_user)
    await _assert_nothing_stored(api, caller_token, new_user)


async def test_non_admin_cannot_forge_admin_scope(api) -> None:
    # Admin rights come from the user record, not from the token's scope claim.
    target, target_token = await _target(api)
    caller = await api.create_user()
    token = make_token(caller, scope="admin")
    new_user = unique_name("made")
    for method, path, body in _admin_requests(target, new_user):
        response = await api.client.request(method, path, json=body, headers=bearer(token))
        assert response.status_code == 403, (path, response.text)
    await _assert_nothing_stored(api, target_token, new_user)


async def test_admin_routes_work_for_admin(api) -> None:
    # The positive control for the checks above: the same requests succeed for an admin.
    target, target_token = await _target(api)
    new_user = unique_name("made")
    headers = await api.admin_headers()
    for method, path, body in _admin_requests(target, new_user):
        response = await api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 201, (path, response.text)
    # One direct, one multi-send, one broadcast.
    assert (await inbox(api, target_token))["unread_count"] == 3
    me = await api.client.get("/users/me", headers=bearer(make_token(new_user)))
    assert me.status_code == 200


async def test_token_for_missing_user_is_401(api) -> None:
    token = make_token(unique_name("ghost"))
    response = await api.client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_admin_claim_for_missing_user_is_401(api) -> None:
    # A validly signed token that claims admin scope still needs a real user behind it.
    token = make_token(unique_name("ghost"), scope="admin")
    response = await api.client.post(
        "/users",
        json={"username": unique_name(), "password": "long-enough-password"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
