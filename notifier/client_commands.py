"""The `notifier` client commands: login, logout, send, broadcast, listen.

They talk to a running server over HTTP and the socket; `notifier.cli` registers them on
the same typer app as `serve`.
"""

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from notifier.client import (
    ClientError,
    CredentialStore,
    Rejected,
    call,
    log_in,
    newest_id,
    normalize_server,
)
from notifier.client import listen as listen_loop

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        "-s",
        help="Server URL; default: the one you logged in to last.",
        show_default=False,
    ),
]
TitleOption = Annotated[str, typer.Option("--title", "-t", help="Title, 1-200 characters.")]
BodyOption = Annotated[str, typer.Option("--body", "-b", help="Body text.")]
DataOption = Annotated[
    str, typer.Option("--data", "-d", help="Extra data as a JSON object, e.g. '{\"run\": 42}'.")
]


def _credentials() -> CredentialStore:
    return CredentialStore(Path(typer.get_app_dir("notifier")))


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"notifier: {message}", err=True)
    return typer.Exit(code)


def _content(title: str, body: str, data: str) -> dict[str, object]:
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise _fail(f"--data is not valid JSON: {exc}", 2) from exc
    if not isinstance(parsed, dict):
        raise _fail("--data must be a JSON object, like '{\"run\": 42}'", 2)
    return {"title": title, "body": body, "data": parsed}


def _print_json(value: object) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False))


def login(
    server: Annotated[str, typer.Argument(help="Server URL.")] = "http://127.0.0.1:8000",
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Prompted for when missing.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Log in and keep the token for SERVER in your config dir (file mode 0600)."""
    try:
        url = normalize_server(server)
        name = username or typer.prompt("Username")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True)
        session = log_in(url, name, password)
        store = _credentials()
        store.save(session)
    except ClientError as exc:
        raise _fail(str(exc)) from exc
    minutes = max(0, session.expires_at - int(time.time())) // 60
    typer.echo(f"Logged in to {url} as {name}; the token is valid for {minutes} min.", err=True)
    typer.echo(f"Saved in {store.path}.", err=True)


def logout(server: ServerOption = None) -> None:
    """Forget the stored token for a server."""
    store = _credentials()
    try:
        url = normalize_server(server) if server else store.load(None).server
    except ClientError as exc:
        raise _fail(str(exc)) from exc
    if not store.remove(url):
        raise _fail(f"not logged in to {url}")
    typer.echo(f"Logged out of {url}.", err=True)


def send(
    usernames: Annotated[list[str], typer.Argument(help="One or more recipients.")],
    title: TitleOption,
    body: BodyOption = "",
    data: DataOption = "{}",
    server: ServerOption = None,
) -> None:
    """Send a notification to one or more users (admins). Prints what was stored, as JSON."""
    content = _content(title, body, data)
    try:
        session = _credentials().load(server)
        if len(usernames) == 1:
            path = f"/users/{quote(usernames[0], safe='')}/notifications"
            _print_json(call(session, "POST", path, content))
        else:
            _print_json(
                call(session, "POST", "/notifications", {**content, "usernames": usernames})
            )
    except ClientError as exc:
        raise _fail(str(exc)) from exc


def broadcast(
    title: TitleOption, body: BodyOption = "", data: DataOption = "{}", server: ServerOption = None
) -> None:
    """Send a notification to every user (admins). Prints the result as JSON."""
    content = _content(title, body, data)
    try:
        _print_json(call(_credentials().load(server), "POST", "/notifications/broadcast", content))
    except ClientError as exc:
        raise _fail(str(exc)) from exc


def listen(
    server: ServerOption = None,
    since: Annotated[
        int | None,
        typer.Option(min=0, help="Replay what came after this id first (0: everything)."),
    ] = None,
) -> None:
    """Print each of your notifications as one JSON line, live, until interrupted.

    Reconnects by itself (resuming after the last id printed, so nothing is missed or
    printed twice) and exits with status 1 when the server refuses the token (1008).
    """
    try:
        session = _credentials().load(server)
        start = since if since is not None else newest_id(session)
    except ClientError as exc:
        raise _fail(str(exc)) from exc

    def status(message: str) -> None:
        typer.echo(f"notifier: {message}", err=True)

    try:
        asyncio.run(listen_loop(session, start, _print_json, status))
    except Rejected as exc:
        raise _fail(f"the server refused the connection: {exc.reason}") from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


COMMANDS = (login, logout, send, broadcast, listen)
