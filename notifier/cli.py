"""The `notifier` command: serve, migrate, create-user, init-env (and the client commands)."""

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from notifier import client_commands
from notifier.settings import Settings

if TYPE_CHECKING:
    from notifier.auth.accounts import Accounts

app = typer.Typer(help="Notifier: authenticated live notifications.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        fields = [".".join(map(str, e["loc"])) for e in exc.errors() if e["loc"]]
        problems = [e["msg"].removeprefix("Value error, ") for e in exc.errors() if not e["loc"]]
        if fields:
            problems.insert(
                0,
                "Invalid or missing settings: "
                + ", ".join(f"NOTIFIER_{name.upper()}" for name in fields),
            )
        typer.echo(
            "\n".join(problems)
            + "\nSet them in the environment or in .env (run `notifier init-env` to create one).",
            err=True,
        )
        raise typer.Exit(2) from exc


def _check_keys(settings: Settings) -> None:
    from notifier.auth.setup import key_set
    from notifier.errors import KeyConfigError

    try:
        key_set(settings)
    except KeyConfigError as exc:
        typer.echo(f"Token signing keys: {exc}", err=True)
        raise typer.Exit(2) from exc


def _check_secrets(settings: Settings) -> None:
    """Refuse a guessable signing key or a well-known admin password (exit 2, one line)."""
    from notifier.auth.strength import is_common_password, secret_key_problem

    problem = secret_key_problem(settings.secret_key.get_secret_value())
    if problem is not None:
        typer.echo(
            f"NOTIFIER_SECRET_KEY {problem}: run `notifier init-env` to generate one.", err=True
        )
        raise typer.Exit(2)
    password = settings.admin_password
    if password is not None and is_common_password(password.get_secret_value()):
        typer.echo(
            "NOTIFIER_ADMIN_PASSWORD is one of the most common passwords: choose another.",
            err=True,
        )
        raise typer.Exit(2)


@asynccontextmanager
async def _accounts(settings: Settings) -> AsyncIterator["Accounts"]:
    from notifier.db.store import Store
    from notifier.runtime import build_accounts, pool_options

    store = Store(settings.database_url, pool_options(settings))
    try:
        yield build_accounts(settings, store)
    finally:
        await store.close()


async def _ensure_admin(settings: Settings) -> None:
    from notifier.errors import PasswordTooShortError

    if not settings.admin_username or settings.admin_password is None:
        return
    try:
        async with _accounts(settings) as accounts:
            created = await accounts.ensure_user(
                settings.admin_username, settings.admin_password.get_secret_value(), is_admin=True
            )
    except PasswordTooShortError as exc:
        typer.echo(f"NOTIFIER_ADMIN_PASSWORD: {exc}", err=True)
        raise typer.Exit(2) from exc
    if created:
        typer.echo(f"Created admin user {settings.admin_username!r}.", err=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (NOTIFIER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (NOTIFIER_PORT).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes (NOTIFIER_WORKERS); more than 1 needs Redis."),
    ] = None,
) -> None:
    """Apply pending migrations, create the first admin if configured, then serve.

    Migrations run here, once, before any worker starts.
    """
    # prometheus-client's multiprocess directory is serve's own (server.py): one inherited
    # from the environment would mix in other processes' counts. Dropped before anything
    # imports prometheus-client, which reads it once, at import.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from notifier.migrate import upgrade
    from notifier.server import serve as run_server

    settings = _settings()
    _check_keys(settings)
    _check_secrets(settings)
    workers = workers or settings.workers
    if workers > 1 and settings.uses_memory_broker:
        typer.echo(
            f"Refusing to start {workers} workers with the in-process broker: each worker "
            "would only reach its own sockets. Set NOTIFIER_BROKER_URL=redis://host:6379/0 "
            "or run one worker.",
            err=True,
        )
        raise typer.Exit(2)
    upgrade(settings.database_url, pgbouncer=settings.database_pgbouncer)
    asyncio.run(_ensure_admin(settings))
    run_server(settings, host or settings.host, port or settings.port, workers)


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from notifier.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url, pgbouncer=settings.database_pgbouncer)


@app.command("create-user")
def create_user(
    username: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user. The password comes from a prompt, or stdin with --password-stdin."""
    from notifier.errors import UsernameTakenError
    from notifier.migrate import upgrade
    from notifier.schemas import UserCreate

    settings = _settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        body = UserCreate(username=username, password=password, is_admin=admin)
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"{error['loc'][0]}: {error['msg']}", err=True)
        raise typer.Exit(2) from exc
    if len(body.password) < settings.password_min_length:
        typer.echo(
            f"password: must be at least {settings.password_min_length} characters"
            " (NOTIFIER_PASSWORD_MIN_LENGTH)",
            err=True,
        )
        raise typer.Exit(2)

    upgrade(settings.database_url, pgbouncer=settings.database_pgbouncer)

    async def create() -> None:
        async with _accounts(settings) as accounts:
            await accounts.create_user(body.username, body.password, body.is_admin)

    try:
        asyncio.run(create())
    except UsernameTakenError:
        typer.echo(f"User {username!r} already exists.", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Created {'admin' if admin else 'user'} {username!r}.")


@app.command("init-env")
def init_env(
    path: Annotated[Path, typer.Option(help="The env file to create or complete.")] = Path(".env"),
) -> None:
    """Create .env with a generated secret key and admin password, keeping what is set."""
    lines = path.read_text().splitlines() if path.exists() else []
    present = {line.split("=", 1)[0].strip() for line in lines if "=" in line}
    added: list[str] = []
    if "NOTIFIER_SECRET_KEY" not in present:
        added.append(f"NOTIFIER_SECRET_KEY={secrets.token_urlsafe(48)}")
    if "NOTIFIER_ADMIN_USERNAME" not in present:
        added.append("NOTIFIER_ADMIN_USERNAME=admin")
    if "NOTIFIER_ADMIN_PASSWORD" not in present:
        password = secrets.token_urlsafe(18)
        added.append(f"NOTIFIER_ADMIN_PASSWORD={password}")
        typer.echo(f"Admin login: admin / {password} (kept in {path})", err=True)
    if added:
        # Created 0600 from the start: the file holds the signing key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as env_file:
            env_file.write("\n".join([*lines, *added]) + "\n")
        path.chmod(0o600)


# The client side (login, logout, send, broadcast, listen) lives in its own module.
for _command in client_commands.COMMANDS:
    app.command()(_command)
