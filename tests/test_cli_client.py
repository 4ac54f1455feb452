"""The real `notifier` console script as a client: login, send, broadcast, listen.

Each "person" gets their own config dir (XDG_CONFIG_HOME), as on their own machine.
"""

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from clients import inbox
from conftest import ADMIN_PASSWORD, ADMIN_USERNAME, TEST_SECRET, USER_PASSWORD
from jose import jwt

pytestmark = pytest.mark.integration

NOTIFIER = str(Path(sys.executable).parent / "notifier")
LINE_TIMEOUT = 20.0


def _env(config_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env["XDG_CONFIG_HOME"] = str(config_home)
    return env


async def run_cli(config_home: Path, *args: str, stdin: str | None = None):
    """Run `notifier ARGS...` to completion as the person owning `config_home`."""
    return await asyncio.to_thread(
        subprocess.run,
        [NOTIFIER, *args],
        env=_env(config_home),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def log_in(config_home: Path, server_url: str, username: str, password: str) -> None:
    result = await run_cli(
        config_home, "login", server_url, "-u", username, "--password-stdin", stdin=password
    )
    assert result.returncode == 0, result.stderr


def credentials_file(config_home: Path) -> Path:
    return config_home / "notifier" / "credentials.json"


class Listener:
    """A running `notifier listen`, read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr_lines: list[str] = []

    async def status_line(self, containing: str) -> str:
        """Status lines go to stderr; wait for one that contains `containing`."""
        assert self.process.stderr is not None
        async with asyncio.timeout(LINE_TIMEOUT):
            while True:
                line = (await self.process.stderr.readline()).decode()
                if not line:
                    pytest.fail(f"listen ended before {containing!r}: {self.stderr_lines}")
                self.stderr_lines.append(line)
                if containing in line:
                    return line

    async def notification(self) -> dict:
        """The next stdout line, which must be one notification as JSON."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), LINE_TIMEOUT)
        assert line.endswith(b"\n"), f"listen ended: {line!r} {self.stderr_lines}"
        return json.loads(line)


@asynccontextmanager
async def listening(config_home: Path, *args: str) -> AsyncIterator[Listener]:
    process = await asyncio.create_subprocess_exec(
        NOTIFIER,
        "listen",
        *args,
        env=_env(config_home),
        stdin=subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Listener(process)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGCONT)  # in case a test left it stopped
            process.kill()
        await process.wait()


async def send(config_home: Path, *args: str) -> dict:
    result = await run_cli(config_home, "send", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- login ------------------------------------------------------------------------------


async def test_login_keeps_one_token_per_server_readable_by_owner_only(tmp_path, api):
    username = await api.create_user()
    home = tmp_path / "config"
    server_url = api.server.base_url
    await log_in(home, server_url + "/", username, USER_PASSWORD)

    path = credentials_file(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert stored["default"] == server_url  # trailing slash dropped
    entry = stored["servers"][server_url]
    assert entry["username"] == username
    claims = jwt.decode(entry["access_token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == username
    assert USER_PASSWORD not in path.read_text()

    # Another server URL (here the same server by another name) gets its own entry and
    # becomes the default.
    other_url = server_url.replace("127.0.0.1", "localhost")
    await log_in(home, other_url, ADMIN_USERNAME, ADMIN_PASSWORD)
    stored = json.loads(path.read_text())
    assert set(stored["servers"]) == {server_url, other_url}
    assert stored["servers"][server_url]["username"] == username
    assert stored["servers"][other_url]["username"] == ADMIN_USERNAME
    assert stored["default"] == other_url
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # A wrong password changes nothing.
    before = path.read_text()
    wrong = await run_cli(
        home, "login", other_url, "-u", username, "--password-stdin", stdin="nope-nope-nope"
    )
    assert wrong.returncode == 1
    assert "incorrect username or password" in wrong.stderr
    assert path.read_text() == before

    # logout forgets one server only.
    out = await run_cli(home, "logout", "--server", other_url)
    assert out.returncode == 0, out.stderr
    assert set(json.loads(path.read_text())["servers"]) == {server_url}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("localhost:8000", "server URL must look like", id="no-scheme"),
        pytest.param("ftp://example.org", "server URL must look like", id="wrong-scheme"),
        pytest.param("http://127.0.0.1:9", "cannot reach", id="nothing-listening"),
    ],
)
async def test_login_to_a_bad_url_fails_clearly(tmp_path, url, message):
    result = await run_cli(tmp_path, "login", url, "-u", "x", "--password-stdin", stdin="y")
    assert result.returncode == 1
    assert message in result.stderr
    assert not credentials_file(tmp_path).exists()


async def test_commands_need_a_login(tmp_path):
    for args in (["send", "alice", "-t", "x"], ["broadcast", "-t", "x"], ["listen"]):
        result = await run_cli(tmp_path, *args)
        assert result.returncode == 1, args
        assert "not logged in" in result.stderr and "notifier login" in result.stderr


# --- send and broadcast -----------------------------------------------------------------


async def test_send_and_broadcast_call_the_api(tmp_path, server_factory, api_for):
    proc = server_factory()
    admin_home = tmp_path / "admin"
    await log_in(admin_home, proc.base_url, ADMIN_USERNAME, ADMIN_PASSWORD)
    async with api_for(proc) as api:
        alice, alice_token = await api.user_with_token()
        bob, bob_token = await api.user_with_token()

        one = await send(
            admin_home, alice, "--title", "Build", "--body", "green", "--data", '{"run": 42}'
        )
        assert (one["username"], one["title"], one["body"], one["data"]) == (
            alice,
            "Build",
            "green",
            {"run": 42},
        )
        several = await send(admin_home, alice, bob, "-t", "Deploy at 5pm")
        assert [n["username"] for n in several["notifications"]] == [alice, bob]

        result = await run_cli(
            admin_home, "broadcast", "-t", "Maintenance", "-d", '{"sev": "info"}'
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["recipients"] == 3  # admin, alice, bob

        titles = [n["title"] for n in (await inbox(api, alice_token))["items"]]
        assert titles == ["Maintenance", "Deploy at 5pm", "Build"]

        # All or nothing: one unknown name, and bob gets nothing.
        unknown = await run_cli(admin_home, "send", bob, "ghost-user", "-t", "nope")
        assert unknown.returncode == 1
        assert "unknown users: ghost-user" in unknown.stderr
        assert len((await inbox(api, bob_token))["items"]) == 2

        for data in ("[1]", "{not json"):
            bad = await run_cli(admin_home, "send", bob, "-t", "x", "--data", data)
            assert bad.returncode == 2, data
            assert "--data" in bad.stderr
        empty_title = await run_cli(admin_home, "send", bob, "-t", "")
        assert empty_title.returncode == 1
        assert "title" in empty_title.stderr
        assert len((await inbox(api, bob_token))["items"]) == 2

    # Users who are not admins are told so.
    user_home = tmp_path / "alice"
    await log_in(user_home, proc.base_url, alice, USER_PASSWORD)
    forbidden = await run_cli(user_home, "broadcast", "-t", "hi all")
    assert forbidden.returncode == 1
    assert "forbidden: admin only" in forbidden.stderr


# --- listen -----------------------------------------------------------------------------


async def test_listen_prints_what_send_sent_across_a_server_restart(
    tmp_path, server_factory, api_for
):
    proc = server_factory()
    async with api_for(proc) as api:
        alice = await api.create_user()
        earlier = await api.send(alice, "sent before listen started")
    admin_home, alice_home = tmp_path / "admin", tmp_path / "alice"
    await log_in(admin_home, proc.base_url, ADMIN_USERNAME, ADMIN_PASSWORD)
    await log_in(alice_home, proc.base_url, alice, USER_PASSWORD)

    async with listening(alice_home) as listener:
        await listener.status_line("connected")
        first = await send(admin_home, alice, "-t", "one", "-d", '{"n": 1}')
        assert await listener.notification() == first  # one line, the stored notification

        await asyncio.to_thread(proc.stop)
        await listener.status_line("reconnecting")
        # Frozen, the listener cannot come back before the test has sent what it must miss.
        listener.process.send_signal(signal.SIGSTOP)
        await asyncio.to_thread(proc.start)
        missed = [await send(admin_home, alice, "-t", title) for title in ("two", "three")]
        listener.process.send_signal(signal.SIGCONT)

        await listener.status_line("connected")
        assert [await listener.notification() for _ in missed] == missed
        # Live again, and nothing was printed twice in between.
        live = await send(admin_home, alice, "-t", "four")
        assert await listener.notification() == live
    assert earlier["id"] < first["id"]  # started after the newest one, as documented


async def test_listen_since_replays_first(tmp_path, api):
    alice = await api.create_user()
    sent = [await api.send(alice, f"n{i}") for i in range(3)]
    home = tmp_path / "alice"
    await log_in(home, api.server.base_url, alice, USER_PASSWORD)
    async with listening(home, "--since", str(sent[0]["id"])) as listener:
        assert [await listener.notification() for _ in sent[1:]] == sent[1:]


async def test_listen_exits_with_the_reason_when_the_server_refuses_the_token(
    tmp_path, server_factory
):
    proc = server_factory()
    home = tmp_path / "admin"
    await log_in(home, proc.base_url, ADMIN_USERNAME, ADMIN_PASSWORD)
    async with listening(home) as listener:
        await listener.status_line("connected")
        # The operator rotates the signing key: every token issued before is now invalid.
        proc.env_overrides["NOTIFIER_SECRET_KEY"] = "a-brand-new-secret-key-after-rotation-0000"
        await asyncio.to_thread(proc.restart)
        line = await listener.status_line("refused")
        code = await asyncio.wait_for(listener.process.wait(), LINE_TIMEOUT)
    assert code == 1
    assert "the server refused the connection: invalid token" in line
