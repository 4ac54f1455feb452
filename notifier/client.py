"""The client side of the CLI: stored logins, HTTP calls, and a socket that resumes.

`listen` is the command-line twin of the page's NotificationSocket (static/socket.js):
it resumes with `since`, backs off with jitter, honours `retry_after_ms` on 1012, and
stops on 1008 because the same credentials cannot succeed again.
"""

import asyncio
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

CREDENTIALS_FILE = "credentials.json"
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
_RETRY_AFTER = re.compile(r"retry_after_ms=(\d+)")


class ClientError(Exception):
    """Something the user must fix; the message says what."""


def normalize_server(url: str) -> str:
    """`http://host:port` with no trailing slash; refuses anything that is not http(s)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError(
            f"server URL must look like http://host:port or https://host, not {url!r}"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def socket_url(server: str) -> str:
    parts = urlsplit(server)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path + "/ws", "", ""))


@dataclass(frozen=True)
class Login:
    server: str
    username: str
    access_token: str
    expires_at: int

    @property
    def expired(self) -> bool:
        return self.expires_at <= time.time()


class CredentialStore:
    """Tokens per server URL in one JSON file, readable by its owner only (0600)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / CREDENTIALS_FILE

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"default": None, "servers": {}}
        except (OSError, ValueError) as exc:
            raise ClientError(f"cannot read {self.path}: {exc}") from exc
        return data if isinstance(data, dict) else {"default": None, "servers": {}}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # A temporary file created 0600 and renamed over the old one: the token is never
        # readable by others, not even for a moment, and a crash leaves the old file whole.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".credentials-")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, indent=2)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def save(self, login: Login) -> None:
        data = self._read()
        data.setdefault("servers", {})[login.server] = {
            "username": login.username,
            "access_token": login.access_token,
            "expires_at": login.expires_at,
        }
        data["default"] = login.server
        self._write(data)

    def remove(self, server: str) -> bool:
        data = self._read()
        removed = data.get("servers", {}).pop(server, None) is not None
        if data.get("default") == server:
            data["default"] = next(iter(data.get("servers", {})), None)
        self._write(data)
        return removed

    def load(self, server: str | None) -> Login:
        """The login for `server`, or for the server logged in to last."""
        data = self._read()
        server = normalize_server(server) if server else data.get("default")
        entry = data.get("servers", {}).get(server) if server else None
        if not server or not isinstance(entry, dict):
            target = server or "a server"
            raise ClientError(f"not logged in to {target}; run `notifier login URL` first")
        login = Login(server, entry["username"], entry["access_token"], int(entry["expires_at"]))
        if login.expired:
            raise ClientError(
                f"your token for {server} expired; run `notifier login {server}` again"
            )
        return login


# --- HTTP --------------------------------------------------------------------------------


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("usernames"), list):
        return f"{detail}: {', '.join(body['usernames'])}"
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'request'}: {e.get('msg')}"
            for e in detail
        )
    return str(detail or response.reason_phrase)


def _check(response: httpx.Response) -> Any:
    if response.status_code == 401:
        raise ClientError(f"not authorized ({_detail(response)}); run `notifier login` again")
    if response.status_code == 403:
        raise ClientError(f"forbidden: {_detail(response)}")
    if response.is_error:
        raise ClientError(f"{response.status_code}: {_detail(response)}")
    return response.json()


def _request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return httpx.request(method, url, timeout=30, **kwargs)
    except httpx.TransportError as exc:
        raise ClientError(f"cannot reach {url}: {exc}") from exc


def log_in(server: str, username: str, password: str) -> Login:
    response = _request(
        "POST", f"{server}/token", data={"username": username, "password": password}
    )
    if response.status_code == 401:
        raise ClientError("incorrect username or password")
    body = _check(response)
    return Login(server, username, body["access_token"], int(time.time()) + body["expires_in"])


def call(login: Login, method: str, path: str, json_body: Any = None) -> Any:
    """An authenticated API call; the decoded JSON answer, or ClientError."""
    headers = {"Authorization": f"Bearer {login.access_token}"}
    return _check(_request(method, f"{login.server}{path}", json=json_body, headers=headers))


def newest_id(login: Login) -> int:
    """The id of the user's newest notification (0 for none): where a fresh listener starts."""
    items = call(login, "GET", "/notifications?limit=1")["items"]
    return items[0]["id"] if items else 0


# --- The socket --------------------------------------------------------------------------


class Rejected(Exception):
    """The server closed the socket with 1008: these credentials will not do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def retry_delay(code: int | None, reason: str, attempt: int) -> float:
    """Seconds to wait before reconnect number `attempt` (0-based) after a close."""
    match = _RETRY_AFTER.search(reason)
    if match:
        return int(match.group(1)) / 1000
    if code == 1012 and attempt == 0:
        return random.uniform(1.0, 5.0)  # a restarting server that named no delay
    step = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)
    return step / 2 + random.uniform(0, step / 2)  # exponential backoff, "equal jitter"


async def listen(
    login: Login,
    since: int,
    on_notification: Callable[[dict[str, Any]], None],
    on_status: Callable[[str], None],
) -> None:
    """Print-agnostic listen loop: returns never; raises `Rejected` on 1008."""
    last_id = since
    attempt = 0
    headers = {"Authorization": f"Bearer {login.access_token}"}
    while True:
        url = f"{socket_url(login.server)}?{urlencode({'since': last_id})}"
        code: int | None = None
        reason = ""
        try:
            async with websockets.connect(url, additional_headers=headers) as ws:
                attempt = 0
                on_status(f"connected to {socket_url(login.server)} as {login.username}")
                last_id = await _receive(ws, last_id, on_notification)
                code, reason = ws.close_code, ws.close_reason or ""
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if code == 1008:
            raise Rejected(reason)
        delay = retry_delay(code, reason, attempt)
        attempt += 1
        closed = f"closed ({code} {reason})".replace(" )", ")") if code else reason
        on_status(f"{closed}; reconnecting in {delay:.1f} s")
        await asyncio.sleep(delay)


async def _receive(
    ws: ClientConnection, last_id: int, on_notification: Callable[[dict[str, Any]], None]
) -> int:
    """Hand over each new notification until the socket closes; the last id handed over."""
    try:
        async for raw in ws:
            try:
                frame = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(frame, dict) or frame.get("type") != "notification":
                continue  # read-state frames and unknown types are not printed
            notification = frame["notification"]
            if notification["id"] <= last_id:
                continue  # already handed over (replayed and also queued live)
            last_id = notification["id"]
            on_notification(notification)
    except ConnectionClosed:
        pass  # close_code / close_reason on the connection say how
    return last_id
