"""The tutorial notification server: the FastAPI code people write today.

A dict of user -> open sockets, the token checked once per connection (same secret and
claims as Notifier, so the same load generator drives both), and `POST /send/{user}` /
`POST /broadcast` awaiting `send_json` socket by socket. Nothing is stored: a socket that
is away misses what was sent meanwhile. Kept deliberately as written in tutorials; it is
the baseline `make bench` compares Notifier against, not code to copy.

    python bench/baselines/naive_fastapi.py --port 8001 [--ws-per-message-deflate]

reads the signing key from BENCH_SECRET_KEY (at least 32 characters).
"""

import argparse
import os
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from jose import JWTError, jwt

SECRET_KEY = os.environ.get("BENCH_SECRET_KEY", "")
ALGORITHM = "HS256"

app = FastAPI(title="Tutorial notifications")


class ConnectionManager:
    def __init__(self) -> None:
        self.active: dict[str, list[WebSocket]] = {}

    async def connect(self, user: str, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active.setdefault(user, []).append(websocket)

    def disconnect(self, user: str, websocket: WebSocket) -> None:
        sockets = self.active.get(user, [])
        if websocket in sockets:
            sockets.remove(websocket)
        if not sockets:
            self.active.pop(user, None)

    async def send_personal(self, user: str, message: dict[str, Any]) -> int:
        sockets = list(self.active.get(user, []))
        for websocket in sockets:
            await websocket.send_json(message)
        return len(sockets)

    async def broadcast(self, message: dict[str, Any]) -> int:
        sent = 0
        for sockets in list(self.active.values()):
            for websocket in list(sockets):
                await websocket.send_json(message)
                sent += 1
        return sent


manager = ConnectionManager()


def user_from_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        claims = jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM])
    except JWTError:
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) and subject else None


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket, token: str | None = None) -> None:
    user = user_from_token(token)
    if user is None:
        await websocket.close(code=1008)
        return
    await manager.connect(user, websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        manager.disconnect(user, websocket)


def notification(user: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "notification",
        "notification": {
            "username": user,
            "title": payload.get("title", ""),
            "body": payload.get("body", ""),
            "data": payload.get("data", {}),
            "created_at": datetime.now(UTC).isoformat(),
        },
    }


@app.post("/send/{user}")
async def send(user: str, payload: dict[str, Any]) -> dict[str, int]:
    return {"sockets": await manager.send_personal(user, notification(user, payload))}


@app.post("/broadcast")
async def broadcast(payload: dict[str, Any]) -> dict[str, int]:
    return {"sockets": await manager.broadcast(notification("*", payload))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--ws-per-message-deflate", action="store_true")
    args = parser.parse_args()
    if len(SECRET_KEY) < 32:
        parser.error("set BENCH_SECRET_KEY (at least 32 characters)")
    # The same uvicorn options Notifier's server uses (notifier/server.py).
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        ws_per_message_deflate=args.ws_per_message_deflate,
        ws_max_size=64 * 1024,
    )


if __name__ == "__main__":
    main()
