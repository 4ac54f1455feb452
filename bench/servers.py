"""Starting the servers under test: the real `notifier serve` and the tutorial baseline.

Each scenario gets a fresh server process in its own temporary directory, pinned to one
core (where `taskset` exists) while the load generator runs on another.
"""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "bench" / "baselines" / "naive_fastapi.py"
ADMIN = "admin"
USER_PREFIX = "user"
USER_PASSWORD = "bench-password-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinning() -> tuple[list[str], list[str]]:
    """`taskset` prefixes for the server and the load generator, or none on one core."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return [], []
    return ["taskset", "-c", "0"], ["taskset", "-c", "1"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFIER_", "BENCH_"))}
    env.update(extra)
    return env


@dataclass
class Template:
    """A migrated Notifier database with the admin, copied for every scenario."""

    directory: Path
    secret_key: str
    password_hash: str = ""

    def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / ".env").write_text(
            f"NOTIFIER_SECRET_KEY={self.secret_key}\n"
            "NOTIFIER_DATABASE_URL=sqlite+aiosqlite:///./notifier.db\n"
            "NOTIFIER_LOG_LEVEL=warning\n"
        )
        # The real CLI: migrations, then the admin the load generator sends as.
        subprocess.run(
            [sys.executable, "-m", "notifier", "create-user", ADMIN, "--admin", "--password-stdin"],
            cwd=self.directory,
            env=clean_env(),
            input=b"bench-admin-password\n",
            check=True,
            capture_output=True,
        )
        from notifier.auth.passwords import PasswordHasher

        # One real argon2 hash shared by every bench user: hashing 10,000 passwords one by
        # one (as POST /users must) would take minutes; every user can still log in.
        self.password_hash = asyncio.run(PasswordHasher().hash(USER_PASSWORD))

    def copy(self, directory: Path, users: int) -> None:
        shutil.copytree(self.directory, directory)
        from sqlalchemy import create_engine, insert

        from notifier.db.models import User

        engine = create_engine(f"sqlite:///{directory / 'notifier.db'}")
        with engine.begin() as connection:
            connection.execute(
                insert(User),
                [
                    {
                        "username": f"{USER_PREFIX}{i:05d}",
                        "password_hash": self.password_hash,
                        "is_admin": False,
                    }
                    for i in range(users)
                ],
            )
        engine.dispose()


@dataclass
class ServerProcess:
    kind: str  # "notifier" | "baseline"
    label: str
    directory: Path
    command: list[str]
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.command, "--port", str(self.port)],
                cwd=self.directory,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited at start:\n{self.log_tail()}")
            if self._answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.label} did not start within {timeout} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/openapi.json", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def login(self, username: str, password: str) -> int:
        """POST /token as a seeded user: proves the seeded accounts are real ones."""
        body = urllib.parse.urlencode({"username": username, "password": password}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/token", data=body)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code


def notifier_server(
    template: Template,
    directory: Path,
    users: int,
    label: str,
    env: dict[str, str],
    args: tuple[str, ...] = (),
) -> ServerProcess:
    template.copy(directory, users)
    # Several workers share core 0 if pinned: leave them to the scheduler instead.
    server_pin = pinning()[0] if "--workers" not in args else []
    return ServerProcess(
        kind="notifier",
        label=label,
        directory=directory,
        command=[*server_pin, sys.executable, "-m", "notifier", "serve", *args],
        env=clean_env(**env),
    )


def baseline_server(
    secret_key: str, directory: Path, label: str, per_message_deflate: bool
) -> ServerProcess:
    directory.mkdir(parents=True)
    server_pin, _ = pinning()
    command = [*server_pin, sys.executable, str(BASELINE)]
    if per_message_deflate:
        command.append("--ws-per-message-deflate")
    return ServerProcess(
        kind="baseline",
        label=label,
        directory=directory,
        command=command,
        env=clean_env(BENCH_SECRET_KEY=secret_key),
    )
