"""The OAuth2 client libraries Notifier's users run, against the real server: Authlib
(httpx) and requests-oauthlib (`LegacyApplicationClient`, the password grant).

Every refusal of `POST /token` must raise the library's OAuth error with the RFC 6749
`error` code and the server's text as its description, never be stored as a token; the
happy paths (login, requests, refresh, revocation) keep working.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from conftest import USER_PASSWORD, Api, ServerProcess, unique_name
from oauthlib.oauth2 import InvalidGrantError, LegacyApplicationClient
from requests_oauthlib import OAuth2Session
from sessions import status_with

pytestmark = pytest.mark.integration

MAX_FAILURES = 2
GRACE = 1
REUSED = "refresh token reused; the session is revoked"


SERVER_SETTINGS = {
    "NOTIFIER_LOGIN_MAX_FAILURES_PER_USER": str(MAX_FAILURES),
    # Each test fails logins for users of its own; the address limit is not tested here.
    "NOTIFIER_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000",
    "NOTIFIER_REFRESH_REUSE_GRACE": str(GRACE),
}


@pytest.fixture
def api(module_api: Api) -> Api:
    """The tests here talk to the module's own server."""
    return module_api


@pytest.fixture
async def authlib_client(module_server) -> AsyncIterator[AsyncOAuth2Client]:
    async with AsyncOAuth2Client(
        base_url=module_server.base_url, token_endpoint=f"{module_server.base_url}/token"
    ) as client:
        yield client


def _token_url(proc: ServerProcess) -> str:
    return f"{proc.base_url}/token"


@pytest.fixture
def plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """oauthlib refuses http:// unless told this is a local test (its documented switch)."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _requests_session() -> OAuth2Session:
    return OAuth2Session(client=LegacyApplicationClient(client_id="notifier-tests"))


async def _wrong_password(api: Api) -> tuple[str, str]:
    return await api.create_user(), USER_PASSWORD + "-wrong"


async def _unknown_user(_api: Api) -> tuple[str, str]:
    return unique_name("nobody"), USER_PASSWORD


async def _disabled_user(api: Api) -> tuple[str, str]:
    username = await api.create_user()
    response = await api.client.patch(
        f"/users/{username}", json={"disabled": True}, headers=await api.admin_headers()
    )
    assert response.status_code == 200, response.text
    return username, USER_PASSWORD


async def _throttled_user(api: Api) -> tuple[str, str]:
    username = await api.create_user()
    for _ in range(MAX_FAILURES):
        failed = await api.client.post("/token", data={"username": username, "password": "nope"})
        assert failed.status_code == 401, failed.text
    return username, USER_PASSWORD  # even the right password waits


LOGIN_REFUSALS = {
    "wrong password": (_wrong_password, 401, "incorrect username or password"),
    "unknown user": (_unknown_user, 401, "incorrect username or password"),
    "disabled user": (_disabled_user, 403, "user disabled"),
    "throttled": (_throttled_user, 429, "too many failed logins; retry in "),
}


async def _login_pair(api: Api, username: str) -> dict[str, Any]:
    response = await api.client.post(
        "/token", data={"username": username, "password": USER_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
async def spent_refresh_token(module_server) -> str:
    """A refresh token used once, now past the reuse grace (its reuse revokes its session,
    and every later one is refused the same way)."""
    async with httpx.AsyncClient(base_url=module_server.base_url, timeout=30) as client:
        api = Api(module_server, client)
        pair = await _login_pair(api, await api.create_user())
        data = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
        assert (await api.client.post("/token", data=data)).status_code == 200
    await asyncio.sleep(GRACE + 1.2)
    return pair["refresh_token"]


# --- Authlib ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", LOGIN_REFUSALS)
async def test_authlib_raises_its_oauth_error_for_each_login_refusal(
    api, authlib_client, case
) -> None:
    make_user, status, description = LOGIN_REFUSALS[case]
    username, password = await make_user(api)
    with pytest.raises(OAuthError) as refused:
        await authlib_client.fetch_token(username=username, password=password)
    exc = refused.value
    print(f"Authlib, {case}: {type(exc)} error={exc.error!r} description={exc.description!r}")
    assert refused.value.error == "invalid_grant"
    assert refused.value.description.startswith(description)
    assert not authlib_client.token  # nothing was stored as a token
    # And the raw answer keeps its status and headers.
    raw = await api.client.post("/token", data={"username": username, "password": password})
    assert raw.status_code == status
    assert raw.headers["cache-control"] == "no-store"
    if status == 401:
        assert raw.headers["www-authenticate"] == "Bearer"
    if status == 429:
        assert int(raw.headers["retry-after"]) > 0


async def test_authlib_raises_for_bad_and_reused_refresh_tokens(
    api, authlib_client, spent_refresh_token
) -> None:
    url = _token_url(api.server)
    with pytest.raises(OAuthError) as bad:
        await authlib_client.refresh_token(url, refresh_token="not-a-refresh-token")
    assert (bad.value.error, bad.value.description) == ("invalid_grant", "invalid refresh token")

    with pytest.raises(OAuthError) as reused:
        await authlib_client.refresh_token(url, refresh_token=spent_refresh_token)
    assert (reused.value.error, reused.value.description) == ("invalid_grant", REUSED)


async def test_authlib_logs_in_refreshes_and_revokes(api, authlib_client) -> None:
    username = await api.create_user()
    token = await authlib_client.fetch_token(username=username, password=USER_PASSWORD)
    assert token["token_type"] == "bearer" and token["refresh_token"]
    assert (await authlib_client.get("/users/me")).json()["username"] == username

    renewed = await authlib_client.refresh_token(_token_url(api.server))
    assert renewed["access_token"] != token["access_token"]
    assert (await authlib_client.get("/users/me")).json()["username"] == username

    revoked = await authlib_client.revoke_token(
        f"{api.server.base_url}/token/revoke",
        token=renewed["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert revoked.status_code == 200
    assert await status_with(api, renewed["access_token"]) == (401, "token revoked")
    with pytest.raises(OAuthError) as after:
        await authlib_client.refresh_token(_token_url(api.server))
    assert (after.value.error, after.value.description) == ("invalid_grant", "token revoked")


async def test_authlib_sees_invalid_request_for_a_malformed_login(api, authlib_client) -> None:
    with pytest.raises(OAuthError) as malformed:
        await authlib_client.fetch_token(username="x" * 300, password="whatever")
    assert malformed.value.error == "invalid_request"
    assert malformed.value.description == "username: String should have at most 200 characters"
    raw = await api.client.post("/token", data={"username": "someone"})
    assert raw.status_code == 422
    body = raw.json()
    assert body["error"] == "invalid_request"
    assert body["error_description"] == "password: Field required"
    assert body["detail"] == [
        {"type": "missing", "loc": ["body", "password"], "msg": "Field required"}
    ]


async def test_the_cookie_login_refuses_with_the_same_bodies(api) -> None:
    username = await api.create_user()
    wrong = await api.client.post("/session", data={"username": username, "password": "nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": "invalid_grant",
        "error_description": "incorrect username or password",
        "detail": "incorrect username or password",
    }
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "set-cookie" not in wrong.headers
    malformed = await api.client.post("/session", data={"grant_type": "refresh_token"})
    assert malformed.status_code == 422
    assert malformed.json()["error"] == "invalid_request"
    assert malformed.json()["error_description"] == "refresh_token: Field required"
    assert "set-cookie" not in malformed.headers
    # The failures above did not lock the user out (the limit is per username).
    assert (await _login_pair(api, username))["access_token"]


# --- requests-oauthlib -----------------------------------------------------------------


@pytest.mark.parametrize("case", LOGIN_REFUSALS)
async def test_requests_oauthlib_raises_invalid_grant_for_each_login_refusal(
    api, plain_http, case
) -> None:
    make_user, _status, description = LOGIN_REFUSALS[case]
    username, password = await make_user(api)
    session = _requests_session()
    with pytest.raises(InvalidGrantError) as refused:
        await asyncio.to_thread(
            session.fetch_token, _token_url(api.server), username=username, password=password
        )
    assert refused.value.error == "invalid_grant"
    assert refused.value.description.startswith(description)
    assert not session.token


async def test_requests_oauthlib_raises_for_bad_and_reused_refresh_tokens(
    api, plain_http, spent_refresh_token
) -> None:
    session = _requests_session()
    with pytest.raises(InvalidGrantError) as bad:
        await asyncio.to_thread(
            session.refresh_token, _token_url(api.server), refresh_token="not-a-refresh-token"
        )
    assert bad.value.description == "invalid refresh token"

    with pytest.raises(InvalidGrantError) as reused:
        await asyncio.to_thread(
            session.refresh_token, _token_url(api.server), refresh_token=spent_refresh_token
        )
    assert reused.value.description == REUSED


async def test_requests_oauthlib_logs_in_refreshes_and_revokes(api, plain_http) -> None:
    username = await api.create_user()
    session = _requests_session()
    url = _token_url(api.server)
    me_url = f"{api.server.base_url}/users/me"
    token = await asyncio.to_thread(
        session.fetch_token, url, username=username, password=USER_PASSWORD
    )
    me = await asyncio.to_thread(session.get, me_url)
    assert me.status_code == 200 and me.json()["username"] == username

    renewed = await asyncio.to_thread(session.refresh_token, url)
    assert renewed["access_token"] != token["access_token"]
    assert (await asyncio.to_thread(session.get, me_url)).json()["username"] == username

    revoked = await api.client.post("/token/revoke", data={"token": renewed["access_token"]})
    assert revoked.status_code == 200
    assert (await asyncio.to_thread(session.get, me_url)).status_code == 401
    with pytest.raises(InvalidGrantError) as after:
        await asyncio.to_thread(session.refresh_token, url)
    assert after.value.description == "token revoked"
