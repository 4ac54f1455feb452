"""The error catalog (`notifier/errors.py`): one hierarchy, one handler, the same answers.

Unit checks that every exception the server defines is in the catalog (or listed below
with why not), then the answers a real server gives for catalog errors that no other
test file pins down byte for byte.
"""

import ast
import inspect
from pathlib import Path

import pytest
from clients import bearer
from conftest import USER_PASSWORD, unique_name

from notifier import errors
from notifier.errors import NotifierError

pytestmark = pytest.mark.integration

PACKAGE = Path(errors.__file__).parent

NOT_CATALOGUED = {
    "SocketGone": "delivery: a socket's write found it closed; ends the writer, never answered",
    "BodyTooLargeError": "middleware: unwinds the app; the middleware answers the 413 itself",
    "_DeadBeforeCommitError": "db/units: the writer thread's own signal, retried, never seen",
    "ClientError": "client.py: raised by the CLI's HTTP client, not by the server",
    "Rejected": "client.py: the CLI client's socket refusal, not raised by the server",
}
"""Exception classes defined in the package that are not refusals a client is answered."""


def _catalogue() -> list[type[NotifierError]]:
    return [
        value
        for value in vars(errors).values()
        if inspect.isclass(value) and issubclass(value, NotifierError)
    ]


def test_every_catalogued_error_ends_in_error_and_is_drawn_in_the_docstring() -> None:
    docstring = errors.__doc__ or ""
    for error in _catalogue():
        assert error.__name__.endswith("Error"), error
        assert f" {error.__name__} [{error.status_code}]" in docstring, error


def test_every_exception_the_package_defines_is_in_the_catalog() -> None:
    catalogued = {error.__name__ for error in _catalogue()}
    defined: dict[str, str] = {}
    for source in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id.endswith(("Exception", "Error"))
                for base in node.bases
            ):
                defined[node.name] = str(source.relative_to(PACKAGE))
    assert "UsernameTakenError" in defined, "the scan is broken"
    outside = {
        name: path
        for name, path in defined.items()
        if name not in catalogued and name not in NOT_CATALOGUED
    }
    assert outside == {}, "define domain errors in notifier/errors.py"
    elsewhere = {
        name: path for name, path in defined.items() if name in catalogued and path != "errors.py"
    }
    assert elsewhere == {}, "one definition per error, in the catalog"


def test_errors_carry_their_answer() -> None:
    throttled = errors.LoginThrottledError(0)
    assert (throttled.status_code, throttled.retry_after) == (429, 1)
    assert throttled.headers == {"Retry-After": "1"}
    assert throttled.body() == {"detail": "too many failed logins; retry in 1 seconds"}
    wrong = errors.WrongCurrentPasswordError()
    assert isinstance(wrong, errors.InvalidCredentialsError)
    assert (wrong.status_code, wrong.headers) == (403, {})
    assert errors.InvalidCredentialsError().headers == {"WWW-Authenticate": "Bearer"}
    unknown = errors.UnknownUsersError(["a", "b"])
    assert unknown.body() == {"detail": "unknown users", "usernames": ["a", "b"]}
    token = errors.TokenError("token expired")
    assert (token.reason, token.detail, str(token)) == ("token expired",) * 3
    assert errors.OAuthRequestError("invalid_request", "no").oauth_error == "invalid_request"
    assert errors.TokenError("x").oauth_error is None
    # The CLI prints these.
    assert str(errors.PasswordTooShortError(12)) == "password must be at least 12 characters"
    assert isinstance(errors.KeyConfigError("bad key"), ValueError)


# What a real server answers


async def test_no_credentials_and_bad_ones_answer_401_with_a_challenge(api) -> None:
    for headers, detail in (({}, "not authenticated"), (bearer("x.y.z"), "invalid token")):
        response = await api.client.get("/users/me", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"detail": detail}
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_refusal_on_an_oauth_route_without_an_oauth_code_keeps_the_usual_body(
    api,
) -> None:
    """`/ws-ticket` lives with the token routes, but its 401 is not an OAuth2 refusal."""
    response = await api.client.post("/ws-ticket")
    assert response.status_code == 401
    assert response.json() == {"detail": "not authenticated"}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_wrong_password_on_the_token_route_is_an_oauth_invalid_grant(api) -> None:
    username = await api.create_user()
    response = await api.client.post(
        "/token", data={"username": username, "password": "not-the-password"}
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "incorrect username or password",
        "detail": "incorrect username or password",
    }
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_non_admin_is_refused_and_nothing_is_created(api) -> None:
    _, token = await api.user_with_token()
    username = unique_name()
    response = await api.client.post(
        "/users", json={"username": username, "password": USER_PASSWORD}, headers=bearer(token)
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "admin only"}
    assert "www-authenticate" not in response.headers
    await _assert_no_user(api, username)


async def test_short_password_answers_like_a_field_error_and_creates_nobody(api) -> None:
    username = unique_name()
    response = await api.client.post(
        "/users",
        json={"username": username, "password": "short-1"},
        headers=await api.admin_headers(),
    )
    assert response.status_code == 422
    body = response.json()
    assert body == {
        "detail": [
            {
                "type": "string_too_short",
                "loc": ["body", "password"],
                "msg": body["detail"][0]["msg"],
                "ctx": {"min_length": body["detail"][0]["ctx"]["min_length"]},
            }
        ]
    }
    assert body["detail"][0]["msg"].startswith("password must be at least ")
    assert "short-1" not in response.text
    await _assert_no_user(api, username)


async def test_password_change_refusals_keep_the_old_password(api) -> None:
    username, token = await api.user_with_token()
    short = await api.client.put(
        "/users/me/password",
        json={"current_password": USER_PASSWORD, "new_password": "tiny"},
        headers=bearer(token),
    )
    assert short.status_code == 422
    assert short.json()["detail"][0]["loc"] == ["body", "new_password"]
    assert "tiny" not in short.text
    wrong = await api.client.put(
        "/users/me/password",
        json={"current_password": "not-it-at-all", "new_password": "a-long-new-password"},
        headers=bearer(token),
    )
    assert wrong.status_code == 403
    assert wrong.json() == {"detail": "current password is incorrect"}
    assert "www-authenticate" not in wrong.headers
    # Neither refusal changed anything: the old password and the old token still work.
    assert await api.login(username, USER_PASSWORD)
    assert (await api.client.get("/users/me", headers=bearer(token))).status_code == 200


async def _assert_no_user(api, username: str) -> None:
    response = await api.client.patch(
        f"/users/{username}", json={"disabled": False}, headers=await api.admin_headers()
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "user not found"}


async def test_someone_elses_notification_is_404_and_stays_unread(api) -> None:
    owner, owner_token = await api.user_with_token()
    _, other_token = await api.user_with_token()
    sent = await api.send(owner)
    response = await api.client.post(
        f"/notifications/{sent['id']}/read", headers=bearer(other_token)
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "notification not found"}
    inbox = (await api.client.get("/notifications", headers=bearer(owner_token))).json()
    assert [(item["id"], item["read"]) for item in inbox["items"]] == [(sent["id"], False)]
