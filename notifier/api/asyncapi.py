"""`GET /asyncapi.json`: the WebSocket protocol as an AsyncAPI 3.0 document.

Built from the code's own vocabulary so it cannot drift: the close codes and reasons from
`notifier/closes.py`, the message payloads from the pydantic models in `schemas.py`
(tests check real frames against them), the settings' names and defaults.
"""

from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from notifier import __version__, closes
from notifier.api import ws
from notifier.api.deps import COOKIE_NAME
from notifier.closes import Close
from notifier.schemas import (
    AuthMessage,
    AuthOkFrame,
    NotificationFrame,
    ReadFrame,
    TokenExpiringFrame,
)

PATH = "/asyncapi.json"
SCHEMA_REF = "#/components/schemas/{model}"

SERVER_MESSAGES: dict[str, type[BaseModel]] = {
    "notification": NotificationFrame,
    "read": ReadFrame,
    "token_expiring": TokenExpiringFrame,
    "auth_ok": AuthOkFrame,
}
"""Frames the server sends, by `type`."""
CLIENT_MESSAGES: dict[str, type[BaseModel]] = {"auth": AuthMessage}
"""Messages the server acts on, by `type` (others are ignored)."""

LOG_IN_AGAIN = "stop; log in again"
RECONNECT = "reconnect with `since`, with backoff"
FIX_CLIENT = "fix the client: retrying unchanged fails the same way"

CLOSE_MEANINGS: dict[Close, tuple[str, str]] = {
    closes.INVALID_TOKEN: (
        "malformed, bad signature, unknown `kid`, `alg: none`, missing claims",
        LOG_IN_AGAIN,
    ),
    closes.UNKNOWN_USER: ("the token's user no longer exists", LOG_IN_AGAIN),
    closes.INVALID_TICKET: (
        "the ticket is unknown, used or expired",
        "buy a new ticket, reconnect with `since`",
    ),
    closes.TOKEN_EXPIRED: (
        "the token's `exp` passed (also closes open sockets then, unless renewed with `auth`)",
        "refresh the token, reconnect with `since`",
    ),
    closes.ORIGIN_NOT_ALLOWED: (
        "cookie login from an origin that is not allowed, or a ticket used from another "
        "origin than it was bought from",
        "stop: a configuration problem",
    ),
    closes.NO_TOKEN: ("no ticket, token or cookie", "log in, then connect with credentials"),
    closes.INVALID_SINCE: ("`since` is not a non-negative integer", FIX_CLIENT),
    closes.TOKEN_REVOKED: (
        "the session was revoked (logout, POST /token/revoke, password change, admin, "
        "refresh-token reuse), also for open sockets",
        LOG_IN_AGAIN,
    ),
    closes.USER_DISABLED: ("an admin disabled the account, also for open sockets", LOG_IN_AGAIN),
    closes.WRONG_USER: ("an `auth` message carried another user's token", LOG_IN_AGAIN),
    closes.QUERY_TOKEN_NOT_ALLOWED: (
        "`?token=` while NOTIFIER_WS_ALLOW_QUERY_TOKEN=false",
        "use a ticket or the Authorization header",
    ),
    closes.TOO_MANY_SOCKETS: (
        "the user already holds NOTIFIER_WS_MAX_SOCKETS_PER_USER sockets",
        "close unused sockets; retry later with backoff",
    ),
    closes.TOO_MANY_MESSAGES: ("client messages faster than the rate limit", FIX_CLIENT),
    closes.INVALID_MESSAGE: (
        "a client message that is not a JSON object with a string `type`, or an `auth` "
        "without a token",
        FIX_CLIENT,
    ),
    closes.BINARY_NOT_SUPPORTED: ("a binary frame", FIX_CLIENT),
    closes.INTERNAL_ERROR: ("the server failed this socket", RECONNECT),
    closes.QUEUE_OVERFLOW: (
        "the client stopped reading for NOTIFIER_WS_STUCK_TIMEOUT seconds while frames waited",
        "reconnect with `since`: the store has everything",
    ),
}
"""What each close in `closes.py` means and what a client should do (a test checks that
every close there is described here)."""

SHUTDOWN_REASON_PATTERN = r"^server restarting; retry_after_ms=[0-9]+$"

PROTOCOL_CLOSES: list[dict[str, Any]] = [
    {
        "code": 1009,
        "reason": "",
        "meaning": "a client message over NOTIFIER_WS_MAX_MESSAGE_SIZE bytes",
        "action": FIX_CLIENT,
        "source": "protocol",
    },
    {
        "code": 1006,
        "reason": "",
        "meaning": "no close frame: network loss, or a client that did not answer pings",
        "action": RECONNECT,
        "source": "protocol",
    },
]
"""Closes made by the WebSocket layer itself rather than by Notifier's code."""


def close_codes() -> list[dict[str, Any]]:
    """Every close a client can see, with its meaning and the client's next step."""
    listed = []
    for close in closes.listed():
        meaning, action = CLOSE_MEANINGS[close]
        listed.append(
            {
                "code": close.code,
                "reason": close.reason,
                "meaning": meaning,
                "action": action,
                "source": "notifier",
            }
        )
    listed.append(
        {
            "code": 1012,
            "reason": "server restarting; retry_after_ms=<n>",
            "reasonPattern": SHUTDOWN_REASON_PATTERN,
            "meaning": "the server is shutting down (deploy, rolling restart)",
            "action": "wait <n> ms (random per socket), then reconnect with `since`",
            "source": "notifier",
        }
    )
    return listed + PROTOCOL_CLOSES


def _close_table(codes: list[dict[str, Any]]) -> str:
    rows = [
        f"| {item['code']} | {item['reason'] and '`' + item['reason'] + '`'} "
        f"| {item['meaning']} | {item['action']} |"
        for item in codes
    ]
    return "\n".join(["| Code | Reason | Meaning | Client action |", "|---|---|---|---|", *rows])


def _message(kind: str, model: type[BaseModel]) -> dict[str, Any]:
    return {
        "name": kind,
        "title": kind,
        "summary": (model.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "payload": {"$ref": SCHEMA_REF.format(model=model.__name__)},
    }


@cache  # the models do not change while the process runs
def _payload_schemas() -> dict[str, Any]:
    models = [*SERVER_MESSAGES.values(), *CLIENT_MESSAGES.values()]
    _, top = models_json_schema(
        [(model, "serialization") for model in models], ref_template=SCHEMA_REF
    )
    definitions: dict[str, Any] = top["$defs"]
    return definitions


def build_document(host: str, secure: bool) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for a server reached at `host` (`wss` when `secure`)."""
    codes = close_codes()
    messages = {
        **{kind: _message(kind, model) for kind, model in SERVER_MESSAGES.items()},
        **{kind: _message(kind, model) for kind, model in CLIENT_MESSAGES.items()},
    }
    channel_messages = {kind: {"$ref": f"#/components/messages/{kind}"} for kind in messages}
    security = [
        {"$ref": f"#/components/securitySchemes/{name}"}
        for name in ("ticket", "queryToken", "bearer", "cookie")
    ]
    return {
        "asyncapi": "3.0.0",
        "id": "urn:notifier:socket",
        "info": {
            "title": "Notifier live notifications",
            "version": __version__,
            "description": (
                "One WebSocket per device at `/ws`. The server sends JSON text frames with a "
                "`type`; clients ignore types they do not know. A closed socket gets a code "
                "and a reason from a fixed list (`x-close-codes` on the channel).\n\n"
                "Credentials, in this order of precedence: `?ticket=` (from POST /ws-ticket), "
                "`?token=`, `Authorization: Bearer`, the `access_token` cookie (only from an "
                "allowed Origin)."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "notifier": {
                "host": host,
                "protocol": "wss" if secure else "ws",
                "description": "This server.",
                "security": security,
            }
        },
        "channels": {
            "socket": {
                "address": ws.PATH,
                "title": "A user's socket",
                "description": "Close codes and reasons:\n\n" + _close_table(codes),
                "servers": [{"$ref": "#/servers/notifier"}],
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "since": {
                                    "type": "string",
                                    "pattern": "^[0-9]{1,18}$",
                                    "description": "Replay every stored notification with a "
                                    "greater id first, then go live (1008 `invalid since` "
                                    "otherwise).",
                                },
                                "ticket": {
                                    "type": "string",
                                    "description": "A single-use ticket from POST /ws-ticket.",
                                },
                                "token": {
                                    "type": "string",
                                    "description": "An access token (refused with 1008 `query "
                                    "token not allowed` when "
                                    "NOTIFIER_WS_ALLOW_QUERY_TOKEN=false).",
                                },
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
                "x-close-codes": codes,
            }
        },
        "operations": {
            "sendServerMessages": {
                "action": "send",
                "channel": {"$ref": "#/channels/socket"},
                "summary": "Frames the server sends to a socket.",
                "messages": [
                    {"$ref": f"#/channels/socket/messages/{kind}"} for kind in SERVER_MESSAGES
                ],
            },
            "receiveClientMessages": {
                "action": "receive",
                "channel": {"$ref": "#/channels/socket"},
                "summary": "Messages a client may send (optional; others are ignored). Rate "
                "limited (NOTIFIER_WS_CLIENT_MESSAGE_BURST at once, refilled at "
                "NOTIFIER_WS_CLIENT_MESSAGE_RATE per second), text only.",
                "messages": [
                    {"$ref": f"#/channels/socket/messages/{kind}"} for kind in CLIENT_MESSAGES
                ],
            },
        },
        "components": {
            "schemas": _payload_schemas(),
            "messages": messages,
            "securitySchemes": {
                "ticket": {
                    "type": "httpApiKey",
                    "name": "ticket",
                    "in": "query",
                    "description": "Single use, valid NOTIFIER_WS_TICKET_TTL seconds, bound to "
                    "the Origin it was bought from (1008 `invalid ticket`).",
                },
                "queryToken": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "An access token in the URL (logged as [redacted]).",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "`Authorization: Bearer <access token>` (native apps).",
                },
                "cookie": {
                    "type": "httpApiKey",
                    "name": COOKIE_NAME,
                    "in": "cookie",
                    "description": "Set by POST /session; accepted only when Origin is this "
                    "host or in NOTIFIER_ALLOWED_ORIGINS (1008 `origin not allowed`).",
                },
            },
        },
    }


router = APIRouter(include_in_schema=False)


@router.get(PATH)
async def asyncapi_document(request: Request) -> JSONResponse:
    """The socket protocol for clients and tools (AsyncAPI Studio, code generators)."""
    url = request.base_url
    return JSONResponse(build_document(url.netloc, secure=url.scheme == "https"))
