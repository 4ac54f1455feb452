"""Credentials in a query string never reach the log, however the name is spelled.

The server decodes parameter names (`/ws?%74oken=` is `/ws?token=`), so the redaction
decodes them too: the live server's log in both formats, a refused socket's lines, and
exception text are checked, and each spelling once more at unit level.
"""

import json
import logging
import sys

import pytest
import websockets
from clients import bearer, expect_close, recv_notification
from test_logs import wait_for_log
from uvicorn.logging import AccessFormatter, DefaultFormatter

from notifier.logs import JsonFormatter, RedactCredentials, redact

pytestmark = pytest.mark.integration

SECRET = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJlLXNlY3JldA"


@pytest.mark.parametrize(
    "query",
    [
        "token={s}",
        "%74oken={s}",
        "tok%65n={s}",
        "%54%4F%4B%45%4E={s}",
        "%74icket={s}",
        "access_token={s}",
        "acc%65ss_token={s}",
        "Token={s}",
        "since=3&%74oken={s}&x=1",
        "+token={s}",
        "%20token%20={s}",
        "token={s}+and+more",
        "token=%20{s}",
        "x=1?token={s}",
        'x="&token={s}',
        "x=#&token={s}",
    ],
)
def test_every_spelling_is_redacted(query: str) -> None:
    line = f'127.0.0.1:5000 - "GET /ws?{query.format(s=SECRET)} HTTP/1.1" 101'
    redacted = redact(line)
    assert SECRET not in redacted
    assert "[redacted]" in redacted
    # The rest of the line survives.
    assert redacted.startswith('127.0.0.1:5000 - "GET /ws?') and redacted.endswith(' HTTP/1.1" 101')


def test_other_parameters_are_kept_as_they_were() -> None:
    assert redact("GET /notifications?before=10&limit=5") == "GET /notifications?before=10&limit=5"
    assert redact("/ws?since=4&%74oken=x") == "/ws?since=4&token=[redacted]"


def _record(name: str, msg: str, args: tuple, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_exceptions_and_arguments_are_redacted_in_both_formats(log_format: str) -> None:
    try:
        raise ValueError(f"cannot open /ws?%74oken={SECRET}")
    except ValueError:
        exc_info = sys.exc_info()
    records = [
        _record("uvicorn.error", "Exception in ASGI application", (), exc_info),
        _record(
            "uvicorn.error", '%s - "WebSocket %s" 403', ("1.2.3.4:1", f"/ws?%74icket={SECRET}")
        ),
        _record(
            "uvicorn.access",
            '%s - "%s %s HTTP/%s" %d',
            ("1.2.3.4:1", "GET", f"/?tok%65n={SECRET}", "1.1", 200),
        ),
    ]
    for record in records:
        assert RedactCredentials().filter(record)
        if log_format == "json":
            line = JsonFormatter().format(record)
            json.loads(line)
        elif record.name == "uvicorn.access":
            line = AccessFormatter("%(message)s").format(record)
        else:
            line = DefaultFormatter("%(message)s").format(record)
        assert SECRET not in line, line
        assert "[redacted]" in line, line


async def logged_traffic(api) -> tuple[str, str]:
    """Encoded credentials on a socket that works, one that is refused, and an HTTP path."""
    username, token = await api.user_with_token()
    response = await api.client.post("/ws-ticket", headers=bearer(token))
    ticket = response.json()["ticket"]
    async with websockets.connect(f"{api.server.ws_url}?%74icket={ticket}") as ws:
        await api.send(username, "through an encoded ticket")
        await recv_notification(ws)
    # NOTIFIER_WS_ALLOW_QUERY_TOKEN=false: refused, and still not logged.
    async with websockets.connect(f"{api.server.ws_url}?%74oken={token}") as ws:
        assert await expect_close(ws) == (1008, "query token not allowed")
    async with websockets.connect(f"{api.server.ws_url}?Access_Token={token}") as ws:
        assert await expect_close(ws) == (1008, "no token")
    listing = await api.client.get(f"/notifications?tok%65n={token}", headers=bearer(token))
    assert listing.status_code == 200
    return token, ticket


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_server_log_has_no_encoded_credentials(server_factory, api_for, log_format) -> None:
    proc = server_factory(NOTIFIER_LOG_FORMAT=log_format, NOTIFIER_WS_ALLOW_QUERY_TOKEN="false")
    async with api_for(proc) as api:
        token, ticket = await logged_traffic(api)
    marker = "socket.rejected" if log_format == "text" else '"event":"socket.rejected"'
    await wait_for_log(proc, marker)
    log = await wait_for_log(proc, "/notifications?token=[redacted]")
    assert token not in log and ticket not in log
    assert "/ws?ticket=[redacted]" in log
    assert "/ws?token=[redacted]" in log
    assert "/ws?Access_Token=[redacted]" in log
