"""Settings that harden a deployment: password length and hash upgrades, the cookie's
`Secure` flag, CORS (off unless configured) and list-size limits."""

import sqlite3

import httpx
import pytest
from clients import bearer, inbox
from conftest import USER_PASSWORD, make_token, unique_name
from sessions import login_pair

pytestmark = pytest.mark.integration

HARDENED = {
    "NOTIFIER_PASSWORD_MIN_LENGTH": "12",
    "NOTIFIER_COOKIE_SECURE": "true",
    "NOTIFIER_CORS_ORIGINS": "https://app.example",
    "NOTIFIER_CORS_ALLOW_CREDENTIALS": "true",
    "NOTIFIER_MAX_RECIPIENTS": "3",
}


SERVER_SETTINGS = HARDENED


def password_hash(proc, username: str) -> str:
    with sqlite3.connect(proc.workdir / "notifier.db") as connection:
        [(value,)] = connection.execute(
            "SELECT password_hash FROM users WHERE username = ?", (username,)
        ).fetchall()
    return value


# Passwords


async def test_minimum_password_length_is_a_setting(module_api) -> None:
    headers = await module_api.admin_headers()
    short_name, ok_name = unique_name(), unique_name()
    short = await module_api.client.post(
        "/users", json={"username": short_name, "password": "x" * 11}, headers=headers
    )
    assert short.status_code == 422
    [error] = short.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert error["msg"] == "password must be at least 12 characters"
    assert "x" * 11 not in short.text
    assert (
        await module_api.client.get("/users/me", headers=bearer(make_token(short_name)))
    ).status_code == 401
    created = await module_api.client.post(
        "/users", json={"username": ok_name, "password": "y" * 12}, headers=headers
    )
    assert created.status_code == 201, created.text
    pair = await login_pair(module_api, ok_name, "y" * 12)
    change = await module_api.client.put(
        "/users/me/password",
        json={"current_password": "y" * 12, "new_password": "z" * 11},
        headers=bearer(pair["access_token"]),
    )
    assert change.status_code == 422
    assert change.json()["detail"][0]["loc"] == ["body", "new_password"]


async def test_outdated_hashes_are_upgraded_at_login(server_factory, api_for) -> None:
    proc = server_factory(NOTIFIER_PASSWORD_SCHEMES="pbkdf2_sha256")
    async with api_for(proc) as api:
        username = await api.create_user()
    assert password_hash(proc, username).startswith("$pbkdf2-sha256$")

    proc.env_overrides["NOTIFIER_PASSWORD_SCHEMES"] = "argon2,pbkdf2_sha256"
    proc.restart()
    async with api_for(proc) as api:
        # A wrong password changes nothing.
        wrong = await api.client.post("/token", data={"username": username, "password": "nope"})
        assert wrong.status_code == 401
        assert password_hash(proc, username).startswith("$pbkdf2-sha256$")
        await login_pair(api, username)
        assert password_hash(proc, username).startswith("$argon2")
        # The upgraded hash keeps working.
        await login_pair(api, username)


# Cookie and CORS


def _cookie_attributes(response: httpx.Response) -> set[str]:
    [header] = response.headers.get_list("set-cookie")
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


async def test_cookie_secure_flag_is_a_setting(module_api, api) -> None:
    hardened_user = await module_api.create_user()
    secure = await module_api.client.post(
        "/session", data={"username": hardened_user, "password": USER_PASSWORD}
    )
    assert {"secure", "httponly", "samesite"} <= _cookie_attributes(secure)
    logout = await module_api.client.delete("/session")
    assert "secure" in _cookie_attributes(logout)
    # The default server (plain HTTP in development) leaves it off.
    plain_user = await api.create_user()
    plain = await api.client.post(
        "/session", data={"username": plain_user, "password": USER_PASSWORD}
    )
    assert "secure" not in _cookie_attributes(plain)
    assert "httponly" in _cookie_attributes(plain)


def _preflight(client: httpx.AsyncClient, origin: str):
    return client.options(
        "/users/me",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


async def test_cors_is_off_by_default(api) -> None:
    preflight = await _preflight(api.client, "https://app.example")
    assert "access-control-allow-origin" not in preflight.headers
    simple = await api.client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_allows_only_configured_origins(module_api) -> None:
    allowed = await _preflight(module_api.client, "https://app.example")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = await _preflight(module_api.client, "https://evil.example")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = await module_api.client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


# List sizes


async def test_recipient_list_limit_is_a_setting(module_api) -> None:
    headers = await module_api.admin_headers()
    names = [await module_api.create_user() for _ in range(4)]
    too_many = await module_api.client.post(
        "/notifications", json={"title": "t", "usernames": names}, headers=headers
    )
    assert too_many.status_code == 422
    [error] = too_many.json()["detail"]
    assert error["loc"] == ["body", "usernames"]
    assert error["msg"] == "List should have at most 3 items"
    # Nothing was stored for anyone.
    for name in names:
        assert (await inbox(module_api, make_token(name)))["items"] == []
    ok = await module_api.client.post(
        "/notifications", json={"title": "t", "usernames": names[:3]}, headers=headers
    )
    assert ok.status_code == 201, ok.text
