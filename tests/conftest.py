"""Shared fixtures: real `notifier serve` processes on free ports, and real clients.

Each server runs in its own temporary directory (so no `.env` of the checkout leaks in)
with its own database. Tests isolate themselves from each other by creating their own
users with unique names.

Backends: by default a server uses SQLite and the in-process broker. Test modules marked
`pytest.mark.backends` run every test twice, the second time on PostgreSQL and Redis
(the services on 127.0.0.1). Each test run creates its own PostgreSQL databases and
Redis channel prefix, so runs never see each other's rows or messages. Off CI, a missing
service skips those tests with the reason; with CI=true it fails them.
"""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from jose import jwt

# Helpers in clients.py assert too: give their failures pytest's detailed messages.
pytest.register_assert_rewrite("clients")
from clients import bearer  # noqa: E402

from notifier.db.store import Store  # noqa: E402
from notifier.migrate import upgrade  # noqa: E402

# Every answer the tests get from a real server is checked against its /openapi.json.
pytest_plugins = ["openapi_conformance"]

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"
USER_PASSWORD = "user-password-123"


ON_CI = os.environ.get("CI") == "true"
POSTGRES_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PortTakenError(RuntimeError):
    """The server could not bind its port: another process took it first."""


@dataclass
class ServerProcess:
    """A real `notifier serve` subprocess."""

    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    serve_args: list[str] = field(default_factory=list)
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
        for _attempt in range(3):
            try:
                self._start_once(timeout)
                return
            except PortTakenError:
                # free_port() released the port before the server bound it, and another
                # process (another xdist worker's server) took it meanwhile: take another.
                self.port = free_port()
        self._start_once(timeout)

    def _start_once(self, timeout: float) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "notifier", "serve", "--port", str(self.port), *self.serve_args],
            cwd=self.workdir,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.log_path.read_text()
                if "address already in use" in output.lower():
                    raise PortTakenError(self.port)
                raise RuntimeError(f"server exited early:\n{output}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        # Not left running: nothing would stop a server that never joined a fixture.
        self.process.kill()
        self.process.wait()
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


def service_missing(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({exc!r}); it runs on 127.0.0.1 on CI machines"
    if ON_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class PostgresDatabases:
    """Creates uniquely named databases for this test run and drops them at the end."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._created: list[str] = []

    async def _run(self, statement: str) -> None:
        connection = await asyncpg.connect(self._dsn, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def _execute(self, statement: str) -> None:
        # In a thread of its own: async tests call this with their loop running.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self._run(statement)).result()

    def create(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"notifier_test_{RUN_ID}_{len(self._created)}"
        self._execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        base = self._dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return f"{base}/{name}"

    def drop_all(self) -> None:
        for name in self._created:
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(POSTGRES_DSN)
    try:
        databases._execute("SELECT 1")
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing("PostgreSQL", exc)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        service_missing("Redis", exc)
    return REDIS_URL


KIND_MARKERS = ("unit", "integration")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test is either `unit` or `integration`, exactly one: stop the run otherwise.

    Runs before `-m` deselects anything, so `make test-fast` (`-m unit`) cannot silently
    skip a file that forgot its `pytestmark`.
    """
    wrong: dict[str, str] = {}
    for item in items:
        kinds = {mark.name for mark in item.iter_markers() if mark.name in KIND_MARKERS}
        if len(kinds) != 1:
            wrong.setdefault(item.nodeid.split("::")[0], ", ".join(sorted(kinds)) or "none")
    if wrong:
        listed = "\n".join(f"  {path}: {kinds}" for path, kinds in sorted(wrong.items()))
        raise pytest.UsageError(
            "each test needs exactly one of the markers unit / integration "
            f"(set `pytestmark` in the file):\n{listed}"
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("backends"):
        metafunc.parametrize("backend", ["sqlite", "postgres"], indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite" (SQLite + in-process broker) or "postgres" (PostgreSQL + Redis)."""
    return getattr(request, "param", "sqlite")


def backend_env(request: pytest.FixtureRequest, backend: str) -> dict[str, str]:
    """Settings for a server on `backend`, with a database and channels of its own."""
    if backend == "sqlite":
        return {}
    return {
        "NOTIFIER_DATABASE_URL": request.getfixturevalue("postgres").create(),
        "NOTIFIER_BROKER_URL": request.getfixturevalue("redis_url"),
        "NOTIFIER_BROKER_CHANNEL_PREFIX": f"notifier-test-{uuid.uuid4().hex[:12]}",
    }


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path_factory) -> str:
    """A database of the module's backend of its own, migrated to the newest revision."""
    env = backend_env(request, backend)
    url = env.get(
        "NOTIFIER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'n.db'}"
    )
    upgrade(url)
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A `Store` on `database_url`, closed after the test."""
    store = Store(database_url)
    yield store
    await store.close()


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server per backend, shared by the tests that need no special settings."""
    proc = ServerProcess(
        tmp_path_factory.mktemp(f"server-{backend}"), env_overrides=backend_env(request, backend)
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def server_factory(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator:
    """Start servers with extra settings: `server_factory(NOTIFIER_WS_QUEUE_SIZE="4")`.

    Servers get the test's backend, or `backend=`; `like=proc` starts another process on
    the same database and broker channels as `proc` (a second worker or host).
    """
    started: list[ServerProcess] = []

    def start(
        *,
        backend_name: str | None = None,
        like: ServerProcess | None = None,
        args: list[str] | None = None,
        **env: str,
    ) -> ServerProcess:
        if like is not None:
            shared = (
                "NOTIFIER_DATABASE_URL",
                "NOTIFIER_BROKER_URL",
                "NOTIFIER_BROKER_CHANNEL_PREFIX",
            )
            overrides = {key: like.env()[key] for key in shared if key in like.env()}
        else:
            overrides = backend_env(request, backend_name or backend)
        proc = ServerProcess(
            tmp_path_factory.mktemp("server"),
            env_overrides={**overrides, **env},
            serve_args=args or [],
        )
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.process and proc.process.poll() is None:
            proc.stop(signal.SIGKILL)


@dataclass
class RedisServer:
    """A private `redis-server` on a free port, for tests that break the broker."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        service_missing("redis-server", FileNotFoundError("redis-server"))
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.kill()


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


@pytest.fixture(scope="module")
def module_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server for a test module, started with the module's `SERVER_SETTINGS`
    (a dict of `NOTIFIER_*` variables), on SQLite and the in-process broker."""
    settings: dict[str, str] = request.module.SERVER_SETTINGS
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    proc = ServerProcess(tmp_path_factory.mktemp(name), env_overrides=dict(settings))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def module_api(module_server: ServerProcess) -> AsyncIterator[Api]:
    """An `Api` client of the module's `module_server`."""
    async for value in _api_for(module_server):
        yield value


@pytest.fixture
async def api(server: ServerProcess) -> AsyncIterator[Api]:
    async for value in _api_for(server):
        yield value


@pytest.fixture
def api_for():
    """`async with api_for(proc) as api:` for servers started by `server_factory`."""
    from contextlib import asynccontextmanager

    return asynccontextmanager(_api_for)
