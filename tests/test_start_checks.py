"""`notifier serve` refuses guessable secrets before it binds: exit 2 and one line saying
which setting and why (the .env.example placeholder, a low-entropy key, a common admin
password). Keys from `notifier init-env` and the tests' own settings pass."""

import re
import secrets
from pathlib import Path

import pytest
from conftest import ADMIN_PASSWORD, TEST_SECRET, free_port
from test_cli import _env, _read_env_file, run

from notifier.auth.strength import (
    MIN_SECRET_KEY_BITS,
    SECRET_KEY_PLACEHOLDER,
    estimated_bits,
    is_common_password,
)

pytestmark = pytest.mark.integration

ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def env_example_placeholder() -> str:
    match = re.search(r"^# NOTIFIER_SECRET_KEY=(\S+)$", ENV_EXAMPLE.read_text(), re.M)
    assert match, ".env.example shows no NOTIFIER_SECRET_KEY placeholder"
    return match.group(1)


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("NOTIFIER_SECRET_KEY", "a" * 32, "NOTIFIER_SECRET_KEY has too little entropy"),
        ("NOTIFIER_SECRET_KEY", None, "NOTIFIER_SECRET_KEY is the placeholder from .env.example"),
        ("NOTIFIER_ADMIN_PASSWORD", "password", "NOTIFIER_ADMIN_PASSWORD is one of the most"),
        ("NOTIFIER_ADMIN_PASSWORD", "Password123!", "NOTIFIER_ADMIN_PASSWORD is one of the most"),
    ],
    ids=["32-a", "placeholder", "password", "decorated"],
)
def test_serve_refuses_weak_secrets(tmp_path: Path, setting: str, value: str | None, says: str):
    value = env_example_placeholder() if value is None else value
    env = _env(tmp_path, NOTIFIER_ADMIN_USERNAME="admin", NOTIFIER_ADMIN_PASSWORD=ADMIN_PASSWORD)
    env[setting] = value
    result = run(tmp_path, "serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(says), result.stderr
    if setting == "NOTIFIER_SECRET_KEY":
        assert value not in result.stderr  # the key itself is never printed
    # Refused before anything ran: no database was created.
    assert not (tmp_path / "n.db").exists()


def test_the_placeholder_is_the_one_refused() -> None:
    assert env_example_placeholder() == SECRET_KEY_PLACEHOLDER


def test_estimates() -> None:
    assert estimated_bits("a" * 32) == 0
    assert estimated_bits("") == 0
    assert estimated_bits("ab" * 24) < MIN_SECRET_KEY_BITS
    assert estimated_bits(TEST_SECRET) >= MIN_SECRET_KEY_BITS
    for _ in range(20):
        assert estimated_bits(secrets.token_urlsafe(48)) >= MIN_SECRET_KEY_BITS  # init-env's
        assert estimated_bits(secrets.token_hex(32)) >= MIN_SECRET_KEY_BITS
    assert is_common_password("password") and is_common_password("PASSWORD")
    assert is_common_password("admin123") and is_common_password("!Welcome1")
    assert is_common_password("qwertyuiop")
    assert not is_common_password(ADMIN_PASSWORD)
    assert not is_common_password(secrets.token_urlsafe(18))


async def test_init_env_secrets_start_the_server(tmp_path: Path, server_factory, api_for) -> None:
    made = run(tmp_path, "init-env", env=_env(tmp_path))
    assert made.returncode == 0, made.stderr
    values = _read_env_file(tmp_path / ".env")
    proc = server_factory(
        NOTIFIER_SECRET_KEY=values["NOTIFIER_SECRET_KEY"],
        NOTIFIER_ADMIN_PASSWORD=values["NOTIFIER_ADMIN_PASSWORD"],
    )
    async with api_for(proc) as api:
        assert await api.login("admin", values["NOTIFIER_ADMIN_PASSWORD"])
