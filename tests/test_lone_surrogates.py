"""A lone surrogate anywhere in a JSON body answers 422 at its field, never 500.

Python's JSON parser accepts `"\\ud800"` (and the raw UTF-8 bytes of a surrogate), but
such a string can be neither stored, sent nor echoed back. Hypothesis puts one into
every string (and `data` key, and non-string field) of a valid body for each route that
takes JSON, against the real server, written as an escape or as raw UTF-8 or UTF-16.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from clients import bearer
from conftest import ADMIN_PASSWORD, ADMIN_USERNAME, USER_PASSWORD, unique_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

Path = tuple[str | int, ...]
LONE_SURROGATE = "invalid unicode: lone surrogate"


@dataclass
class Route:
    method: str
    path: str
    body: dict[str, Any]
    token: str


@dataclass
class Site:
    client: httpx.Client
    admin: str
    recipient: str
    recipient_token: str


def _login(client: httpx.Client, username: str, password: str) -> str:
    response = client.post("/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture(scope="module")
def site(server) -> Iterator[Site]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        admin = _login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
        recipient = unique_name("surrogates")
        created = client.post(
            "/users", json={"username": recipient, "password": USER_PASSWORD}, headers=bearer(admin)
        )
        assert created.status_code == 201, created.text
        yield Site(client, admin, recipient, _login(client, recipient, USER_PASSWORD))


def routes(site: Site) -> list[Route]:
    content = {"title": "t", "body": "b", "data": {"k": "v", "list": ["x", {"deep": "y"}]}}
    return [
        Route("POST", f"/users/{site.recipient}/notifications", content, site.admin),
        Route("POST", "/notifications", {**content, "usernames": [site.recipient]}, site.admin),
        Route("POST", "/notifications/broadcast", content, site.admin),
        Route(
            "POST",
            "/users",
            {"username": unique_name(), "password": "a-long-password", "is_admin": False},
            site.admin,
        ),
        Route(
            "PUT",
            "/users/me/password",
            {"current_password": USER_PASSWORD, "new_password": "another-password-1"},
            site.recipient_token,
        ),
        Route("PATCH", f"/users/{site.recipient}", {"disabled": True}, site.admin),
    ]


def targets(value: object, path: Path = ()) -> Iterator[tuple[str, Path]]:
    """("value", path) for every leaf, ("key", path) for every key of a dict."""
    if isinstance(value, dict):
        for key, item in value.items():
            if path:  # keys of nested objects (`data`); top-level keys are field names
                yield "key", (*path, key)
            yield from targets(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from targets(item, (*path, index))
    else:
        yield "value", path


def replaced(value: Any, path: Path, kind: str, text: str) -> Any:
    head, *rest = path
    if isinstance(value, list):
        copy = list(value)
        copy[head] = (
            text if not rest and kind == "value" else replaced(value[head], tuple(rest), kind, text)
        )  # type: ignore[index]
        return copy
    if not rest and kind == "key":
        return {(text if key == head else key): item for key, item in value.items()}
    if not rest:
        return {**value, head: text}
    return {**value, head: replaced(value[head], tuple(rest), kind, text)}


def readable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode()


lone_surrogates = st.builds(
    lambda before, code, after: before + chr(code) + after,
    st.text(max_size=4),
    st.integers(0xD800, 0xDFFF),
    st.text(max_size=4),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(), text=lone_surrogates, encoding=st.sampled_from(["escape", "utf-8", "utf-16-le"])
)
def test_lone_surrogates_anywhere_answer_422_at_their_field(site, data, text, encoding) -> None:
    route = data.draw(st.sampled_from(routes(site)), label="route")
    kind, path = data.draw(st.sampled_from(list(targets(route.body))), label="target")
    body = replaced(route.body, path, kind, text)
    content = (
        json.dumps(body).encode()  # \udxxx escapes
        if encoding == "escape"
        # Raw code units: json.loads decodes bodies with `surrogatepass`, in any UTF.
        else json.dumps(body, ensure_ascii=False).encode(encoding, "surrogatepass")
    )
    response = site.client.request(
        route.method,
        route.path,
        content=content,
        headers=bearer(route.token) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    loc = ["body", *path[:-1], readable(text)] if kind == "key" else ["body", *path]
    assert response.json() == {
        "detail": [{"type": "string_unicode", "loc": loc, "msg": LONE_SURROGATE}]
    }


def test_nothing_was_stored_or_changed(site) -> None:
    """Runs after the property test: no notification, password change or lock got through."""
    inbox = site.client.get("/notifications", headers=bearer(site.recipient_token))
    assert inbox.status_code == 200
    assert inbox.json() == {"items": [], "unread_count": 0}
    assert site.client.get("/healthz").status_code == 200


def test_surrogate_pairs_are_ordinary_text(site) -> None:
    """An escaped pair is one character (an emoji): stored and sent like any other."""
    username = unique_name("emoji")
    created = site.client.post(
        "/users", json={"username": username, "password": USER_PASSWORD}, headers=bearer(site.admin)
    )
    assert created.status_code == 201
    response = site.client.post(
        f"/users/{username}/notifications",
        content=b'{"title": "\\ud83d\\ude00", "data": {"\\ud83d\\ude00": "\\ud83d\\ude00"}}',
        headers=bearer(site.admin) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["title"], response.json()["data"]) == (
        "\U0001f600",
        {"\U0001f600": "\U0001f600"},
    )
