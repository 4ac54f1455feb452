"""Shared fixtures: real `notifier serve` processes on free ports, and real clients.

Each server runs in its own temporary directory (so no `.env` of the checkout leaks in)
with its own SQLite database. Tests isolate themselves from each other by creating
their own users with unique names.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from jose import jwt

# Helpers in clients.py assert too: give their failures pytest's detailed messages.
pytest.register_assert_rewrite("clients")
from clients import bearer  # noqa: E402

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"
USER_PASSWORD = "user-password-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """A real `notifier serve` subprocess."""

    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # One admin login per server (argon2 makes logins slow). It outlives restart():
    # the secret key and the admin user persist.
    admin_token: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
        env.update(
            NOTIFIER_DATABASE_URL=f"sqlite+aiosqlite:///{self.workdir / 'notifier.db'}",
            NOTIFIER_SECRET_KEY=TEST_SECRET,
            NOTIFIER_ADMIN_USERNAME=ADMIN_USERNAME,
            NOTIFIER_ADMIN_PASSWORD=ADMIN_PASSWORD,
            NOTIFIER_LOG_LEVEL="info",
        )
        env.update(self.env_overrides)
        return env

    def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "notifier", "serve", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig` and wait for exit; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server shared by the tests that need no special settings."""
    proc = ServerProcess(tmp_path_factory.mktemp("server"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Start servers with extra settings: `server_factory(NOTIFIER_WS_QUEUE_SIZE="4")`."""
    started: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        proc = ServerProcess(tmp_path_factory.mktemp("server"), env_overrides=env)
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.process and proc.process.poll() is None:
            proc.stop(signal.SIGKILL)


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_token(
    sub: str,
    expires_in: float = 3600,
    key: str = TEST_SECRET,
    algorithm: str = "HS256",
    **claims: object,
) -> str:
    """Craft a token the way the server signs them (or deliberately not)."""
    now = int(time.time())
    payload = {"sub": sub, "iat": now, "exp": int(now + expires_in), "jti": uuid.uuid4().hex}
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=algorithm)


@dataclass
class Api:
    """An httpx client bound to one server, with login helpers."""

    server: ServerProcess
    client: httpx.AsyncClient

    async def login(self, username: str, password: str) -> str:
        response = await self.client.post(
            "/token", data={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    async def admin_token(self) -> str:
        return await self.login(ADMIN_USERNAME, ADMIN_PASSWORD)

    async def create_user(self, username: str | None = None, is_admin: bool = False) -> str:
        username = username or unique_name()
        response = await self.client.post(
            "/users",
            json={"username": username, "password": USER_PASSWORD, "is_admin": is_admin},
            headers=await self.admin_headers(),
        )
        assert response.status_code == 201, response.text
        return username

    async def user_with_token(self, is_admin: bool = False) -> tuple[str, str]:
        username = await self.create_user(is_admin=is_admin)
        return username, await self.login(username, USER_PASSWORD)

    async def admin_headers(self) -> dict[str, str]:
        """Admin credentials, logging in only once per server."""
        if self.server.admin_token is None:
            self.server.admin_token = await self.admin_token()
        return bearer(self.server.admin_token)

    async def send(self, username: str, title: str = "hello", **fields: object) -> dict:
        response = await self.client.post(
            f"/users/{username}/notifications",
            json={"title": title, **fields},
            headers=await self.admin_headers(),
        )
        assert response.status_code == 201, response.text
        return response.json()


async def _api_for(proc: ServerProcess) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=30) as client:
        yield Api(proc, client)


@pytest.fixture
async def api(server: ServerProcess) -> AsyncIterator[Api]:
    async for value in _api_for(server):
        yield value


@pytest.fixture
def api_for():
    """`async with api_for(proc) as api:` for servers started by `server_factory`."""
    from contextlib import asynccontextmanager

    return asynccontextmanager(_api_for)
