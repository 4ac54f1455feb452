"""The README's Python client example (Authlib + websockets), run as written against a real
server, so it cannot rot: it logs in, reads /users/me, opens the socket with the token,
renews it in place when `token_expiring` arrives (a refresh through Authlib's
`update_token`) and prints the notifications it receives."""

import asyncio
import contextlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import USER_PASSWORD, Api

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- python-client-example -->"
ACCESS_TOKEN_TTL = 63
"""Authlib refreshes within 60 s of expiry, and the server warns 60 s before it: both
happen about 3 s after the login."""


def readme_example() -> tuple[str, str]:
    """The example's code without its last line, and that line (`asyncio.run(...)`)."""
    text = README.read_text()
    block = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.DOTALL)
    assert block is not None, "the README lost its Python client example"
    *body, run = block.group(1).rstrip("\n").split("\n")
    return "\n".join(body), run


SERVER_SETTINGS = {"NOTIFIER_ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL)}


@pytest.fixture
def api(module_api: Api) -> Api:
    """The tests here talk to the module's own server."""
    return module_api


async def _printed(lines: list[str], wanted: Callable[[str], bool], within: float) -> str:
    async with asyncio.timeout(within):
        while True:
            found = [line for line in lines if wanted(line)]
            if found:
                return found[0]
            await asyncio.sleep(0.05)


async def test_the_readme_python_client_logs_in_refreshes_and_listens(api) -> None:
    code, run = readme_example()
    assert run == 'asyncio.run(listen("alice", "correct-horse"))'
    lines: list[str] = []
    namespace = {
        "__name__": "readme_example",
        "print": lambda *args: lines.append(" ".join(map(str, args))),
    }
    exec(compile(code, str(README), "exec"), namespace)
    namespace["BASE_URL"] = api.server.base_url

    username = await api.create_user()
    listening = asyncio.create_task(namespace["listen"](username, USER_PASSWORD))
    try:
        assert await _printed(lines, lambda line: line == f"logged in as {username}", 15)
        # token_expiring arrives; the example refreshes through Authlib and renews the socket.
        await _printed(lines, lambda line: line.startswith("new token pair"), 15)
        sent = await api.send(username, "from the README")
        await _printed(lines, lambda line: line == f"notification: {sent['title']}", 10)
        assert not listening.done(), listening
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
