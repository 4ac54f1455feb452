"""Unit tests of `BodySizeLimitMiddleware` on a tiny Starlette app that echoes body sizes."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from notifier.middleware import BodySizeLimitMiddleware

pytestmark = pytest.mark.unit

LIMIT = 1024


def build_app(limit: int = LIMIT) -> tuple[Starlette, dict[str, object]]:
    seen: dict[str, object] = {"lifespan": [], "echo_calls": 0}

    async def echo(request: Request) -> JSONResponse:
        seen["echo_calls"] = int(seen["echo_calls"]) + 1  # type: ignore[call-overload]
        body = await request.body()
        return JSONResponse({"length": len(body)})

    async def swallowing_echo(request: Request) -> JSONResponse:
        # Like FastAPI's body parsing: any error while reading becomes a 400 of its own.
        try:
            body = await request.body()
        except Exception:
            return JSONResponse({"detail": "There was an error parsing the body"}, 400)
        return JSONResponse({"length": len(body)})

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"echo:{len(text)}")
        await websocket.close()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        seen["lifespan"].append("startup")  # type: ignore[union-attr]
        yield
        seen["lifespan"].append("shutdown")  # type: ignore[union-attr]

    app = Starlette(
        routes=[
            Route("/echo", echo, methods=["POST"]),
            Route("/swallow", swallowing_echo, methods=["POST"]),
            WebSocketRoute("/ws", socket),
        ],
        middleware=[Middleware(BodySizeLimitMiddleware, max_bytes=limit)],
        lifespan=lifespan,
    )
    return app, seen


@pytest.fixture
def app_and_seen() -> tuple[Starlette, dict[str, object]]:
    return build_app()


@pytest.fixture
def client(app_and_seen) -> Iterator[TestClient]:
    app, _seen = app_and_seen
    with TestClient(app) as test_client:
        yield test_client


def chunks(total: int, size: int = 100) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        sent += part
        yield b"x" * part


def test_body_under_limit_passes(client):
    response = client.post("/echo", content=b"a" * 10)
    assert response.status_code == 200
    assert response.json() == {"length": 10}


def test_body_exactly_at_limit_passes(client):
    response = client.post("/echo", content=b"a" * LIMIT)
    assert response.status_code == 200
    assert response.json() == {"length": LIMIT}


def test_empty_body_passes(client):
    response = client.post("/echo")
    assert response.status_code == 200
    assert response.json() == {"length": 0}


def test_content_length_over_limit_is_413_without_reaching_app(client, app_and_seen):
    _app, seen = app_and_seen
    response = client.post("/echo", content=b"a" * (LIMIT + 1))
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["detail"]
    assert seen["echo_calls"] == 0


def test_chunked_body_under_limit_passes(client):
    response = client.post("/echo", content=chunks(LIMIT))
    assert "content-length" not in response.request.headers
    assert response.status_code == 200
    assert response.json() == {"length": LIMIT}


def test_chunked_body_over_limit_is_413(client):
    response = client.post("/echo", content=chunks(LIMIT + 1))
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["detail"]


def test_chunked_overflow_answered_by_the_app_is_still_413(client):
    # The app catches the overflow and answers 400; the middleware answers 413 instead.
    response = client.post("/swallow", content=chunks(LIMIT + 1))
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["detail"]
    ok = client.post("/swallow", content=chunks(LIMIT))
    assert ok.status_code == 200
    assert ok.json() == {"length": LIMIT}


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", " 12", ""])
def test_non_numeric_content_length_is_413(client, value):
    response = client.post("/echo", content=b"abc", headers={"Content-Length": value})
    assert response.status_code == 413


def test_still_serves_after_rejection(client):
    assert client.post("/echo", content=b"a" * (LIMIT + 5)).status_code == 413
    response = client.post("/echo", content=b"ok")
    assert response.status_code == 200
    assert response.json() == {"length": 2}


def test_websocket_scope_passes_through(client):
    # A websocket message bigger than the HTTP body limit is not the middleware's business.
    with client.websocket_connect("/ws") as ws:
        ws.send_text("y" * (LIMIT * 4))
        assert ws.receive_text() == f"echo:{LIMIT * 4}"


def test_lifespan_scope_passes_through(app_and_seen):
    app, seen = app_and_seen
    with TestClient(app):
        assert seen["lifespan"] == ["startup"]
    assert seen["lifespan"] == ["startup", "shutdown"]


async def _run_raw(
    middleware: BodySizeLimitMiddleware, headers: list[tuple[bytes, bytes]], parts: list[bytes]
) -> tuple[list[Message], int]:
    """Drive the middleware with raw ASGI messages; returns what it sent and parts consumed."""
    consumed = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal consumed
        if consumed < len(parts):
            consumed += 1
            return {
                "type": "http.request",
                "body": parts[consumed - 1],
                "more_body": consumed < len(parts),
            }
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    await middleware(scope, receive, send)
    return sent, consumed


async def test_raw_chunked_stream_stops_reading_once_over_limit():
    app, _seen = build_app()
    middleware = BodySizeLimitMiddleware(app.router, max_bytes=LIMIT)
    parts = [b"z" * 400] * 10  # 4000 bytes in all, each part under the limit
    sent, consumed = await _run_raw(middleware, [(b"transfer-encoding", b"chunked")], parts)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 413
    # 3 parts (1200 bytes) cross the limit; the rest of the upload is never read.
    assert consumed == 3


async def test_raw_multi_part_body_under_limit_passes():
    app, _seen = build_app()
    middleware = BodySizeLimitMiddleware(app.router, max_bytes=LIMIT)
    sent, consumed = await _run_raw(middleware, [], [b"q" * 256] * 4)
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b'{"length":1024}'
    assert consumed == 4


async def test_raw_other_scope_types_reach_the_app_untouched():
    calls: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])

    middleware = BodySizeLimitMiddleware(inner, max_bytes=1)

    async def receive() -> Message:  # pragma: no cover - never called
        raise AssertionError("middleware must not read non-http scopes")

    async def send(message: Message) -> None:  # pragma: no cover - never called
        raise AssertionError("middleware must not answer non-http scopes")

    await middleware({"type": "websocket", "headers": [(b"content-length", b"999")]}, receive, send)
    await middleware({"type": "lifespan"}, receive, send)
    assert calls == ["websocket", "lifespan"]
