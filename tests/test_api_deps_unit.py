"""`api/deps.py`: the one credential finder (HTTP and sockets) and the one peer address."""

from urllib.parse import urlencode

import pytest
from starlette.requests import HTTPConnection

from notifier.api.deps import COOKIE_NAME, Credential, Source, client_address, find_credential

pytestmark = pytest.mark.unit


def _connection(
    query: dict[str, str] | None = None,
    authorization: str | None = None,
    cookie: str | None = None,
    client: tuple[str, int] | None = ("203.0.113.7", 51234),
) -> HTTPConnection:
    headers = []
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{COOKIE_NAME}={cookie}".encode()))
    scope = {
        "type": "http",
        "path": "/",
        "query_string": urlencode(query or {}).encode(),
        "headers": headers,
        "client": client,
    }
    return HTTPConnection(scope)


def test_sockets_look_for_a_ticket_then_a_query_token_then_bearer_then_cookie() -> None:
    every = {"query": {"ticket": "t", "token": "q"}, "authorization": "Bearer b", "cookie": "c"}
    assert find_credential(_connection(**every), in_query=True) == Credential(Source.TICKET, "t")
    no_ticket = {**every, "query": {"token": "q"}}
    found = find_credential(_connection(**no_ticket), in_query=True)
    assert found == Credential(Source.QUERY_TOKEN, "q")
    no_query = {**every, "query": {}}
    assert find_credential(_connection(**no_query), in_query=True) == Credential(Source.BEARER, "b")
    found = find_credential(_connection(cookie="c"), in_query=True)
    assert found == Credential(Source.COOKIE, "c")


def test_http_ignores_the_query() -> None:
    connection = _connection(query={"ticket": "t", "token": "q"}, cookie="c")
    assert find_credential(connection) == Credential(Source.COOKIE, "c")
    assert find_credential(_connection(query={"token": "q"})) is None


def test_an_empty_ticket_is_still_the_credential_presented() -> None:
    # Refused as "invalid ticket", rather than falling back to another credential.
    found = find_credential(_connection(query={"ticket": ""}, cookie="c"), in_query=True)
    assert found == Credential(Source.TICKET, "")


def test_blank_and_foreign_authorization_headers_are_not_bearer_tokens() -> None:
    for header in ("Basic eDp5", "Bearer", "Bearer   ", "bearer", "Token abc"):
        assert find_credential(_connection(authorization=header)) is None, header
    assert find_credential(_connection(authorization="bearer  abc ")) == Credential(
        Source.BEARER, "abc"
    )
    found = find_credential(_connection(authorization="Basic eDp5", cookie="c"))
    assert found == Credential(Source.COOKIE, "c")
    assert find_credential(_connection(query={"token": ""}), in_query=True) is None


def test_client_address_is_the_host_or_host_and_port() -> None:
    scope = _connection().scope
    assert client_address(scope) == "203.0.113.7"
    assert client_address(scope, with_port=True) == "203.0.113.7:51234"
    assert client_address(_connection(client=None).scope) is None
