"""The real `notifier` console script: migrate, create-user, init-env, serve's settings check."""

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_SECRET, free_port
from jose import jwt

pytestmark = pytest.mark.integration

# The console script installed next to the interpreter running the tests (.venv/bin).
NOTIFIER = str(Path(sys.executable).parent / "notifier")
PASSWORD = "bobs-password-123"


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}


def _db_url(workdir: Path) -> str:
    return f"sqlite+aiosqlite:///{workdir / 'n.db'}"


def _env(workdir: Path, **extra: str) -> dict[str, str]:
    return {
        **_base_env(),
        "NOTIFIER_SECRET_KEY": TEST_SECRET,
        "NOTIFIER_DATABASE_URL": _db_url(workdir),
        **extra,
    }


def run(
    workdir: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NOTIFIER, *args],
        cwd=workdir,
        env=_env(workdir) if env is None else env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def _users(db: Path) -> dict[str, bool]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT username, is_admin FROM users")
        return {name: bool(is_admin) for name, is_admin in rows}


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def test_migrate_creates_tables(tmp_path: Path) -> None:
    result = run(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    db = tmp_path / "n.db"
    assert db.exists()
    assert {"users", "messages", "notifications", "alembic_version"} <= _tables(db)
    # Running it again is a no-op that still succeeds.
    again = run(tmp_path, "migrate")
    assert again.returncode == 0, again.stderr
    assert _users(db) == {}


def test_create_user_then_duplicate(tmp_path: Path) -> None:
    created = run(tmp_path, "create-user", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    assert "bob" in created.stdout
    assert _users(tmp_path / "n.db") == {"bob": False}
    with sqlite3.connect(tmp_path / "n.db") as connection:
        [(password_hash,)] = connection.execute("SELECT password_hash FROM users").fetchall()
    assert PASSWORD not in password_hash
    assert password_hash.startswith("$argon2")

    again = run(tmp_path, "create-user", "bob", "--password-stdin", stdin="other-password\n")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert _users(tmp_path / "n.db") == {"bob": False}


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("bob", "short\n", id="short-password"),
        pytest.param("has space", PASSWORD + "\n", id="bad-username"),
    ],
)
def test_invalid_input_exits_2(tmp_path: Path, username: str, password: str) -> None:
    result = run(tmp_path, "create-user", username, "--password-stdin", stdin=password)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.strip()
    db = tmp_path / "n.db"
    assert not db.exists() or _users(db) == {}


def test_init_env(tmp_path: Path) -> None:
    env = _base_env()
    first = run(tmp_path, "init-env", env=env)
    assert first.returncode == 0, first.stderr
    path = tmp_path / ".env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = _read_env_file(path)
    assert len(values["NOTIFIER_SECRET_KEY"]) >= 32
    assert values["NOTIFIER_ADMIN_USERNAME"] == "admin"
    assert len(values["NOTIFIER_ADMIN_PASSWORD"]) >= 8
    # The generated admin password is shown once so the operator can log in.
    assert values["NOTIFIER_ADMIN_PASSWORD"] in first.stderr

    content = path.read_text()
    second = run(tmp_path, "init-env", env=env)
    assert second.returncode == 0, second.stderr
    assert path.read_text() == content
    assert _read_env_file(path)["NOTIFIER_SECRET_KEY"] == values["NOTIFIER_SECRET_KEY"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # Commands run in that directory now need no secret in the environment.
    env = {**_base_env(), "NOTIFIER_DATABASE_URL": _db_url(tmp_path)}
    migrated = run(tmp_path, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "users" in _tables(tmp_path / "n.db")


def test_init_env_keeps_existing_values(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("NOTIFIER_SECRET_KEY=my-own-secret-key-that-is-long-enough-here\nOTHER=1\n")
    result = run(tmp_path, "init-env", env=_base_env())
    assert result.returncode == 0, result.stderr
    values = _read_env_file(path)
    assert values["NOTIFIER_SECRET_KEY"] == "my-own-secret-key-that-is-long-enough-here"
    assert values["OTHER"] == "1"
    assert values["NOTIFIER_ADMIN_USERNAME"] == "admin"
    assert "NOTIFIER_ADMIN_PASSWORD" in values


def test_serve_without_secret_key(tmp_path: Path) -> None:
    env = {**_base_env(), "NOTIFIER_DATABASE_URL": _db_url(tmp_path)}
    result = run(tmp_path, "serve", "--port", str(free_port()), env=env)
    assert result.returncode != 0
    assert "NOTIFIER_SECRET_KEY" in result.stderr


def test_serve_with_short_secret_key(tmp_path: Path) -> None:
    env = _env(tmp_path, NOTIFIER_SECRET_KEY="too-short")
    result = run(tmp_path, "serve", "--port", str(free_port()), env=env)
    assert result.returncode != 0
    assert "NOTIFIER_SECRET_KEY" in result.stderr


async def test_cli_user_logs_in_to_server(tmp_path: Path, server_factory, api_for) -> None:
    created = run(tmp_path, "create-user", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    made_admin = run(
        tmp_path, "create-user", "carol", "--admin", "--password-stdin", stdin=PASSWORD
    )
    assert made_admin.returncode == 0, made_admin.stderr
    assert _users(tmp_path / "n.db") == {"bob": False, "carol": True}

    proc = server_factory(NOTIFIER_DATABASE_URL=_db_url(tmp_path))
    async with api_for(proc) as api:
        bob = jwt.decode(await api.login("bob", PASSWORD), TEST_SECRET, algorithms=["HS256"])
        assert bob["sub"] == "bob"
        assert "admin" not in bob.get("scope", "").split()
        carol = jwt.decode(await api.login("carol", PASSWORD), TEST_SECRET, algorithms=["HS256"])
        assert "admin" in carol["scope"].split()

        wrong = await api.client.post("/token", data={"username": "bob", "password": "nope"})
        assert wrong.status_code == 401

        # Created by another process while the server runs: the server's credential
        # reads (inline, on one connection kept open) see it at once.
        late = run(tmp_path, "create-user", "dave", "--password-stdin", stdin=PASSWORD + "\n")
        assert late.returncode == 0, late.stderr
        dave = jwt.decode(await api.login("dave", PASSWORD), TEST_SECRET, algorithms=["HS256"])
        assert dave["sub"] == "dave"
